"""Server-rendered HTML shells of the console (login, agent console, supervisor) and the UI strings.

Everything dynamic is rendered by `static/console.js` with `textContent`, never `innerHTML`,
so customer text shows as text; the few values interpolated here go through `html.escape`
and JSON blocks escape `<`, `>` and `&`. The Content-Security-Policy allows scripts from
'self' only, so even a missed escape cannot run inline script.
"""

from __future__ import annotations

import html
import json
from typing import Any, Optional, Sequence

LANGUAGES = ("zh", "en")

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "客服工作台", "login": "登录", "name": "用户名", "password": "密码", "logout": "退出",
        "bad_login": "用户名或密码错误", "queues": "队列", "supervisor": "主管视图", "console": "工作台",
        "claim": "接入", "claimed_by_other": "已被其他坐席接入", "waiting": "等待", "assigned": "处理中",
        "priority": "优先级", "wait_time": "等待时长", "reason": "原因", "language": "语言", "agent": "坐席",
        "sentiment": "情绪", "status": "状态", "send": "发送", "transfer": "转接", "close": "结束",
        "disposition": "结束原因", "history": "客户历史", "routing": "路由依据", "chat": "对话",
        "suggestions": "知识建议",
        "insert": "插入", "no_tickets": "暂无工单", "select_ticket": "请选择左侧工单", "metrics": "实时指标",
        "open_tickets": "进行中", "closed_today": "今日已结束", "avg_rating": "今日平均评分",
        "oldest_wait": "最长等待", "agents_online": "在线坐席", "type_reply": "输入回复…", "conversation": "会话",
        "channel": "渠道", "closed": "已结束", "error": "出错了", "seconds": "秒",
        "resolved": "已解决", "follow_up": "需跟进", "escalated": "已升级", "no_response": "客户无响应",
        "spam": "垃圾信息", "duplicate": "重复",
        "live_window": "统计窗口", "automation_rate": "自动化率", "escalation_rate": "转人工率",
        "fallback_rate": "兜底率", "aht_bot": "平均处理时长·机器人", "aht_human": "平均处理时长·人工",
        "csat_mean": "满意度均分", "csat_response_rate": "评价率", "conversations": "会话数",
        "escalations_by_queue": "各队列转人工", "count": "数量", "rate": "比率", "queue": "队列",
        "now_waiting": "当前等待", "now_assigned": "当前处理中", "corrected_intent": "正确意图",
        "no_correction": "（不修改意图）",
        "th_title": "路由阈值", "th_none": "当前模型没有阈值信息", "th_model": "模型", "th_updated": "更新于",
        "th_mode_targets": "按目标精度选定", "th_mode_numbers": "固定数值",
        "th_numbers_live": "固定数值模式下以 routing.yml 中的数值为准（实时生效），此处为训练时的数值。",
        "th_target_auto": "自动回答目标精度", "th_target_specialist": "专员目标精度",
        "th_min_support": "每区间最少样本", "th_band": "区间", "th_threshold": "阈值", "th_source": "来源",
        "th_coverage": "覆盖率", "th_accuracy": "准确率", "th_support": "样本数",
        "th_band_auto": "机器人自动回答", "th_band_specialist": "技能组专员",
        "th_band_below": "低于阈值（澄清）", "th_src_target": "达到目标", "th_src_fallback": "未达目标，用默认值",
        "th_src_number": "固定数值", "th_intents": "按意图设置", "th_intent": "意图", "th_auto": "自动回答",
        "th_specialist": "专员", "th_oos": "超出范围阈值", "th_in_scope_recall": "范围内召回率",
        "th_calibration": "置信度校准", "th_examples": "样本", "th_warnings": "警告",
    },
    "en": {
        "title": "Agent console", "login": "Log in", "name": "User name", "password": "Password", "logout": "Log out",
        "bad_login": "Wrong user name or password", "queues": "Queues", "supervisor": "Supervisor view",
        "console": "Console", "claim": "Claim", "claimed_by_other": "Another agent claimed it first",
        "waiting": "waiting", "assigned": "assigned", "priority": "Priority", "wait_time": "Waiting",
        "reason": "Reason", "language": "Language", "agent": "Agent", "sentiment": "Sentiment", "status": "Status",
        "send": "Send", "transfer": "Transfer", "close": "Close", "disposition": "Disposition",
        "history": "Customer history", "routing": "Routing", "chat": "Chat", "suggestions": "Knowledge suggestions",
        "insert": "Insert",
        "no_tickets": "No tickets", "select_ticket": "Select a ticket on the left", "metrics": "Live metrics",
        "open_tickets": "Open", "closed_today": "Closed today", "avg_rating": "Average rating today",
        "oldest_wait": "Longest wait", "agents_online": "Agents online", "type_reply": "Type a reply…",
        "conversation": "Conversation", "channel": "Channel", "closed": "closed", "error": "Something went wrong",
        "seconds": "s", "resolved": "Resolved", "follow_up": "Follow-up needed", "escalated": "Escalated",
        "no_response": "No response", "spam": "Spam", "duplicate": "Duplicate",
        "live_window": "Window", "automation_rate": "Automation rate", "escalation_rate": "Escalation rate",
        "fallback_rate": "Fallback rate", "aht_bot": "AHT bot", "aht_human": "AHT human",
        "csat_mean": "CSAT mean", "csat_response_rate": "CSAT response rate", "conversations": "Conversations",
        "escalations_by_queue": "Escalations by queue", "count": "Count", "rate": "Rate", "queue": "Queue",
        "now_waiting": "Waiting now", "now_assigned": "Assigned now",
        "corrected_intent": "Correct intent", "no_correction": "(intent was right)",
        "th_title": "Routing thresholds", "th_none": "No threshold plan for the current model", "th_model": "Model",
        "th_updated": "updated", "th_mode_targets": "chosen by precision targets", "th_mode_numbers": "fixed numbers",
        "th_numbers_live": "In numbers mode the values in routing.yml apply (re-read live); these are the values at"
        " training time.",
        "th_target_auto": "Auto precision target", "th_target_specialist": "Specialist precision target",
        "th_min_support": "Min. band support", "th_band": "Band", "th_threshold": "Threshold", "th_source": "Source",
        "th_coverage": "Coverage", "th_accuracy": "Accuracy", "th_support": "Predictions",
        "th_band_auto": "Bot answers", "th_band_specialist": "Skill-group specialists",
        "th_band_below": "Below (clarifying question)", "th_src_target": "target met",
        "th_src_fallback": "target not met: default", "th_src_number": "fixed number", "th_intents": "Per intent",
        "th_intent": "Intent", "th_auto": "Auto", "th_specialist": "Specialist", "th_oos": "Out-of-scope threshold",
        "th_in_scope_recall": "in-scope recall", "th_calibration": "Calibration", "th_examples": "examples",
        "th_warnings": "Warnings",
    },
}

DISPOSITIONS = ("resolved", "follow_up", "escalated", "no_response", "spam", "duplicate")


def pick_language(query: Optional[str], cookie: Optional[str], accept: Optional[str]) -> str:
    """?lang= over the kefu_lang cookie over Accept-Language; Chinese unless English is asked for."""
    for value in (query, cookie):
        if value in LANGUAGES:
            return value
    if accept and accept.lower().lstrip().startswith("en"):
        return "en"
    return "zh"


def json_block(element_id: str, value: Any) -> str:
    """A non-executed JSON data block that cannot close its <script> element."""
    text = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    text = text.replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _layout(lang: str, title: str, nav: str, main: str, data: dict[str, Any]) -> str:
    t = STRINGS[lang]
    switch = "en" if lang == "zh" else "zh"
    label = "English" if lang == "zh" else "中文"
    return f"""<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · {html.escape(t["title"])}</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body>
<header class="top"><span class="brand">Kefu · {html.escape(t["title"])}</span>
<nav>{nav}<a href="?lang={switch}" id="lang-switch" data-lang="{switch}">{label}</a></nav>
</header>
{main}
{json_block("kefu-data", {**data, "lang": lang, "strings": t, "dispositions": DISPOSITIONS})}
<script src="/static/console.js"></script>
</body></html>"""


def login_page(lang: str, csrf: str, failed: bool = False) -> str:
    t = STRINGS[lang]
    error = f'<p class="error" role="alert">{html.escape(t["bad_login"])}</p>' if failed else ""
    body = f"""<main class="login"><h1>{html.escape(t["login"])}</h1>{error}
<form method="post" action="/login" id="login-form">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<label>{html.escape(t["name"])} <input name="name" id="name" autocomplete="username" required maxlength="64"></label>
<label>{html.escape(t["password"])} <input name="password" id="password" type="password"
 autocomplete="current-password" required maxlength="1024"></label>
<button type="submit" id="login">{html.escape(t["login"])}</button>
</form></main>"""
    return _layout(lang, t["login"], "", body, {"page": "login"})


def _nav(lang: str, agent: dict[str, Any], csrf: str) -> str:
    t = STRINGS[lang]
    links = f'<a href="/console">{html.escape(t["console"])}</a>'
    if agent["role"] == "supervisor":
        links += f' <a href="/supervisor" id="supervisor-link">{html.escape(t["supervisor"])}</a>'
    who = f'<span class="who">{html.escape(agent["name"])} ({html.escape(agent["role"])})</span>'
    logout = (
        f'<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" '
        f'value="{html.escape(csrf)}"><button id="logout">{html.escape(t["logout"])}</button></form>'
    )
    return f"{links} {who} {logout} "


def console_page(lang: str, agent: dict[str, Any], csrf: str, intents: Sequence[str] = ()) -> str:
    t = STRINGS[lang]
    body = f"""<main class="console">
<section class="queues" aria-label="{html.escape(t["queues"])}"><h2>{html.escape(t["queues"])}</h2>
<div id="queues"></div></section>
<section class="ticket" id="ticket"><p class="hint">{html.escape(t["select_ticket"])}</p></section>
</main>"""
    data = {"page": "console", "agent": agent, "csrf": csrf, "intents": list(intents)}
    return _layout(lang, t["console"], _nav(lang, agent, csrf), body, data)


def supervisor_page(lang: str, agent: dict[str, Any], csrf: str, intents: Sequence[str] = ()) -> str:
    t = STRINGS[lang]
    body = f"""<main class="supervisor">
<section><h2>{html.escape(t["metrics"])}</h2><div id="metrics"></div>
<div class="live-head"><label>{html.escape(t["live_window"])} <select id="live-window">
<option value="today">today</option><option value="1h">1h</option><option value="24h" selected>24h</option>
<option value="7d">7d</option></select></label></div><div id="live-metrics"></div></section>
<section id="thresholds-panel"><h2>{html.escape(t["th_title"])}</h2><div id="thresholds"></div></section>
<div class="console"><section><h2>{html.escape(t["queues"])}</h2><div id="queues"></div></section>
<section class="ticket" id="ticket"><p class="hint">{html.escape(t["select_ticket"])}</p></section></div>
</main>"""
    data = {"page": "supervisor", "agent": agent, "csrf": csrf, "intents": list(intents)}
    return _layout(lang, t["supervisor"], _nav(lang, agent, csrf), body, data)
