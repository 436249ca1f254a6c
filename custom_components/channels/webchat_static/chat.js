/* Kefu web chat (full page at /chat/, widget iframe at /chat/embed).
 * - socket.io with session persistence: the session id, transcript and handoff state live in
 *   localStorage, so a reload or a second tab continues the conversation; after a server
 *   restart socket.io reconnects and `session_request` rejoins the session's room.
 * - Bot and agent text is Markdown rendered by marked and sanitised by DOMPurify (never
 *   inserted unsanitised); customer text and button titles are inserted as text.
 * - Server events: bot_uttered, kefu_typing, kefu_handoff, kefu_error (see socketio.py). */
(function () {
  "use strict";
  var STRINGS = {
    zh: { title: "Kefu 智能客服", typing: "客服助手正在输入…", label: "输入消息", placeholder: "请输入您的问题，例如：我的卡丢了",
          send: "发送", connecting: "连接中…", online: "在线", offline: "已断开，正在重连…", log: "对话记录",
          switchTo: "English", switchLabel: "Switch to English", close: "关闭对话窗口", choices: "可选回复",
          user: "我", bot: "智能助手", agent: "人工客服", system: "系统消息",
          queued: "正在为您转接人工客服，请稍候…", started: "已接通人工客服", ended: "人工客服已结束服务，智能助手继续为您服务",
          queue: "队列", error: "消息未能发送：" },
    en: { title: "Kefu Assistant", typing: "Kefu is typing…", label: "Type a message", placeholder: "Ask a question, e.g. I lost my card",
          send: "Send", connecting: "Connecting…", online: "Online", offline: "Disconnected, reconnecting…", log: "Conversation",
          switchTo: "中文", switchLabel: "切换到中文", close: "Close the chat", choices: "Suggested replies",
          user: "You", bot: "Assistant", agent: "Agent", system: "Notice",
          queued: "Connecting you to an agent, please wait…", started: "Connected to an agent",
          ended: "The agent has left; the assistant is back", queue: "queue", error: "Message not sent: " }
  };
  var LANG_KEY = "kefu.lang", SESSION_KEY = "kefu.session";
  var HANDOFF_STATES = ["queued", "started", "ended"];
  var ALLOWED_TAGS = ["p", "br", "strong", "em", "b", "i", "del", "a", "ul", "ol", "li", "code", "pre", "blockquote",
                      "hr", "table", "thead", "tbody", "tr", "th", "td"];
  var embedded = /\/chat\/embed\/?$/.test(location.pathname);

  // Storage: our own localStorage, or, in an iframe whose third-party storage the browser blocks,
  // a copy kept by the host page's widget.js (first-party storage) and synced by postMessage.
  var local = (function () {
    try { localStorage.setItem("kefu.probe", "1"); localStorage.removeItem("kefu.probe"); return localStorage; }
    catch (e) { return null; }
  })();
  // The host page's origin, which widget.js passes as ?host=: every message to the parent goes to it
  // only (never "*": the session id and transcript travel in them), and only its messages are read.
  var hostOrigin = (function () {
    var asked = new URLSearchParams(location.search).get("host");
    try { return asked && new URL(asked).origin === asked && /^https?:$/.test(new URL(asked).protocol) ? asked : null; }
    catch (e) { return null; }
  })();
  var framed = embedded && !!hostOrigin && window.parent !== window;
  var bridged = !local && framed;
  var memory = {};
  function stored(key) {
    if (local) { return local.getItem(key); }
    return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
  }
  function store(key, value) {
    if (local) { try { local.setItem(key, value); } catch (e) { /* quota */ } return; }
    memory[key] = value;
    if (bridged) { tellParent({ type: "store", key: key, value: value }); }
  }
  function pickLang() {
    var saved = stored(LANG_KEY);
    if (saved === "zh" || saved === "en") { return saved; }
    var asked = new URLSearchParams(location.search).get("lang");
    if (asked === "zh" || asked === "en") { return asked; }
    return (navigator.language || "zh").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  }

  var chat = document.getElementById("chat");
  var log = document.getElementById("log");
  var input = document.getElementById("input");
  var form = document.getElementById("composer");
  var statusEl = document.getElementById("status");
  var typing = document.getElementById("typing");
  var banner = document.getElementById("handoff");
  var langButton = document.getElementById("lang-switch");
  var closeButton = document.getElementById("close");
  var lang = "zh", t = STRINGS.zh, sessionId = null, socket = null;
  var handoff = null, ready = false, pending = [], rendered = {}, typingTimer = null;

  DOMPurify.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  function markdown(text) {
    var html = marked.parse(String(text), { gfm: true, breaks: true, async: false });
    return DOMPurify.sanitize(html, { ALLOWED_TAGS: ALLOWED_TAGS, ALLOWED_ATTR: ["href", "title"],
                                      RETURN_DOM_FRAGMENT: true });
  }
  function newId() { return Date.now().toString(36) + Math.random().toString(36).slice(2, 10); }

  function historyKey() { return "kefu.history." + sessionId; }
  function handoffKey() { return "kefu.handoff." + sessionId; }
  function loadHistory() {
    try { var items = JSON.parse(stored(historyKey()) || "[]"); return Array.isArray(items) ? items : []; }
    catch (e) { return []; }
  }
  function saveEntry(entry) {
    var items = loadHistory();
    if (items.some(function (i) { return i && i.id === entry.id; })) { return; }
    items.push(entry);
    store(historyKey(), JSON.stringify(items.slice(-200)));
  }

  function systemText(entry) {
    if (entry.state === "started") { return t.started + (entry.agent ? "：" + entry.agent : ""); }
    return t[entry.state] || "";
  }
  function disableOldButtons() {
    log.querySelectorAll(".msg__buttons button").forEach(function (b) { b.disabled = true; });
  }
  function render(entry) {
    if (!entry || typeof entry !== "object" || (entry.id && rendered[entry.id])) { return; }
    var who = ["user", "bot", "agent", "system"].indexOf(entry.who) >= 0 ? entry.who : "bot";
    if (entry.id) { rendered[entry.id] = true; }
    var li = document.createElement("li");
    li.className = "msg msg--" + who;
    var from = document.createElement("span");
    from.className = who === "agent" ? "msg__from" : "msg__from visually-hidden";
    from.textContent = t[who] + (who === "agent" && entry.agent ? " " + String(entry.agent) : "") + ":";
    li.appendChild(from);
    var bubble = document.createElement("div");
    bubble.className = "msg__bubble";
    if (who === "bot" || who === "agent") { bubble.appendChild(markdown(entry.text || "")); }
    else if (who === "system") { bubble.textContent = systemText(entry); }
    else { bubble.textContent = String(entry.text || ""); }
    var buttons = Array.isArray(entry.buttons) ? entry.buttons : [];
    if (who === "user" || buttons.length) { disableOldButtons(); }
    if (buttons.length) {
      var row = document.createElement("div");
      row.className = "msg__buttons";
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", t.choices);
      buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = String((b && b.title) || "");
        btn.addEventListener("click", function () {
          send(String(b.payload || b.title || ""), String(b.title || ""));
          input.focus();
        });
        row.appendChild(btn);
      });
      bubble.appendChild(row);
    }
    li.appendChild(bubble);
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }
  function rerender() {
    log.textContent = "";
    rendered = {};
    loadHistory().forEach(render);
  }

  function applyStrings() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t.title;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t[el.getAttribute("data-i18n")]; });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      el.placeholder = t[el.getAttribute("data-i18n-placeholder")];
    });
    log.setAttribute("aria-label", t.log);
    langButton.textContent = t.switchTo;
    langButton.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
    langButton.setAttribute("aria-label", t.switchLabel);
    closeButton.setAttribute("aria-label", t.close);
    setStatus(statusEl.dataset.state || "connecting");
    applyHandoff(handoff);
  }
  function setStatus(state) { statusEl.dataset.state = state; statusEl.textContent = t[state]; }
  function applyHandoff(h) {
    handoff = h && h.state !== "ended" ? h : null;
    chat.dataset.mode = !handoff ? "bot" : handoff.state === "started" ? "agent" : "queued";
    banner.hidden = !handoff;
    if (handoff) {
      banner.textContent = systemText(handoff) + (handoff.queue ? "（" + t.queue + "：" + handoff.queue + "）" : "");
    }
  }
  function tellParent(message) {
    if (framed) { message.kefu = 1; window.parent.postMessage(message, hostOrigin); }
  }

  function switchLanguage() {
    lang = lang === "zh" ? "en" : "zh";
    t = STRINGS[lang];
    store(LANG_KEY, lang);
    applyStrings();
    rerender();
    tellParent({ type: "lang", lang: lang });
  }

  function onStorageChange(key, value) {  // another tab of this session wrote to the transcript
    if (sessionId && key === historyKey()) { loadHistory().forEach(render); }
    if (sessionId && key === handoffKey()) {
      try { applyHandoff(JSON.parse(value || "null")); } catch (e) { applyHandoff(null); }
    }
  }

  function start() {
    lang = pickLang();
    t = STRINGS[lang];
    sessionId = stored(SESSION_KEY);
    setStatus("connecting");
    applyStrings();
    tellParent({ type: "lang", lang: lang });
    var socketPath = location.pathname.replace(/\/chat\/(embed\/?)?(index\.html)?$/, "") + "/socket.io";
    socket = io({ path: socketPath, transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      setStatus("online");
      socket.emit("session_request", { session_id: sessionId });
    });
    socket.on("disconnect", function () {
      ready = false;
      delete chat.dataset.session;
      typing.hidden = true;
      setStatus("offline");
    });
    socket.on("session_confirm", function (sid) {
      if (typeof sid !== "string") { return; }
      if (sid !== sessionId) {
        sessionId = sid;
        store(SESSION_KEY, sid);
        rerender();
      }
      if (!log.dataset.restored) {
        log.dataset.restored = "1";
        rerender();
        try { applyHandoff(JSON.parse(stored(handoffKey()) || "null")); } catch (e) { applyHandoff(null); }
      }
      ready = true;
      chat.dataset.session = "confirmed";
      pending.splice(0).forEach(function (entry) { saveEntry(entry); render(entry); emitUser(entry); });
    });
    socket.on("bot_uttered", function (msg) {
      if (!msg || typeof msg !== "object") { return; }
      var entry = { id: typeof msg.id === "string" ? msg.id : newId(), who: handoff && handoff.state === "started" ? "agent" : "bot",
                    agent: handoff && handoff.agent, text: typeof msg.text === "string" ? msg.text : "",
                    buttons: Array.isArray(msg.quick_replies) ? msg.quick_replies : Array.isArray(msg.buttons) ? msg.buttons : [] };
      if (!entry.text && !entry.buttons.length) { return; }
      saveEntry(entry);
      render(entry);
    });
    socket.on("kefu_typing", function (data) {
      clearTimeout(typingTimer);
      typing.hidden = !(data && data.state === "on");
      if (!typing.hidden) { typingTimer = setTimeout(function () { typing.hidden = true; }, 60000); }
    });
    socket.on("kefu_handoff", function (h) {
      if (!h || HANDOFF_STATES.indexOf(h.state) < 0) { return; }
      var state = { state: h.state, queue: typeof h.queue === "string" ? h.queue : null,
                    agent: typeof h.agent === "string" ? h.agent : null };
      var entry = { id: newId(), who: "system", state: state.state, agent: state.agent };
      saveEntry(entry);
      render(entry);
      store(handoffKey(), JSON.stringify(state));
      applyHandoff(state);
    });
    socket.on("kefu_error", function (data) {
      typing.hidden = true;
      if (data && typeof data.reason === "string") { console.warn(t.error + data.reason); }
    });
    window.addEventListener("storage", function (ev) { onStorageChange(ev.key, ev.newValue); });
  }

  function send(payload, shown) {
    var text = (payload || "").trim();
    if (!text) { return; }
    var entry = { id: newId(), who: "user", text: shown || text, payload: text };
    render(entry);
    if (ready) { saveEntry(entry); emitUser(entry); } else { pending.push(entry); }
  }
  function emitUser(entry) {
    socket.emit("user_uttered", { message: entry.payload, session_id: sessionId, metadata: { language: lang } });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
  langButton.addEventListener("click", switchLanguage);
  if (embedded) {
    chat.classList.add("chat--embed");
    closeButton.hidden = false;
    closeButton.addEventListener("click", function () { tellParent({ type: "close" }); });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { tellParent({ type: "close" }); } });
  }
  var started = false;
  function startOnce() { if (!started) { started = true; start(); } }
  window.addEventListener("message", function (ev) {
    var data = ev.data;
    if (!framed || ev.source !== window.parent || ev.origin !== hostOrigin || !data || data.kefu !== 1) { return; }
    if (data.type === "focus") { input.focus(); }
    if (bridged && data.type === "storage" && data.items && typeof data.items === "object") {
      Object.keys(data.items).forEach(function (k) {
        if (typeof data.items[k] === "string") { memory[k] = data.items[k]; }
      });
      startOnce();
    }
    if (bridged && data.type === "storage-changed" && typeof data.key === "string") {
      memory[data.key] = typeof data.value === "string" ? data.value : null;
      if (started) { onStorageChange(data.key, memory[data.key]); }
    }
  });
  lang = pickLang();  // provisional, until the stored choice is known
  t = STRINGS[lang];
  applyStrings();
  if (bridged) {
    tellParent({ type: "storage-request" });
    setTimeout(startOnce, 3000);  // an old or missing widget.js: chat without persistence
  } else {
    startOnce();
  }
})();
