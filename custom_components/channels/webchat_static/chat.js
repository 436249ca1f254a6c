/* Kefu web chat: socket.io with session persistence. Bot text is inserted as text,
 * never as HTML. The session id and the transcript live in localStorage, so a reload
 * or a second tab continues the same conversation. */
(function () {
  "use strict";
  var STRINGS = {
    zh: { title: "Kefu 智能客服", typing: "客服助手正在输入…", label: "输入消息", placeholder: "请输入您的问题，例如：我的卡丢了",
          send: "发送", connecting: "连接中…", online: "在线", offline: "已断开，正在重连…" },
    en: { title: "Kefu Assistant", typing: "Kefu is typing…", label: "Type a message", placeholder: "Ask a question, e.g. I lost my card",
          send: "Send", connecting: "Connecting…", online: "Online", offline: "Disconnected, reconnecting…" }
  };
  var lang = (navigator.language || "zh").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var t = STRINGS[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t[el.getAttribute("data-i18n")]; });
  document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) { el.placeholder = t[el.getAttribute("data-i18n-placeholder")]; });

  var log = document.getElementById("log");
  var input = document.getElementById("input");
  var form = document.getElementById("composer");
  var statusEl = document.getElementById("status");
  var typing = document.getElementById("typing");
  var SESSION_KEY = "kefu.session";
  var sessionId = localStorage.getItem(SESSION_KEY);

  function historyKey() { return "kefu.history." + sessionId; }
  function loadHistory() {
    try { return JSON.parse(localStorage.getItem(historyKey()) || "[]"); } catch (e) { return []; }
  }
  function saveEntry(entry) {
    var items = loadHistory();
    items.push(entry);
    localStorage.setItem(historyKey(), JSON.stringify(items.slice(-200)));
  }

  function render(entry) {
    var li = document.createElement("li");
    li.className = "msg msg--" + entry.who;
    var bubble = document.createElement("div");
    bubble.className = "msg__bubble";
    bubble.textContent = entry.text || "";
    if (entry.buttons && entry.buttons.length) {
      var row = document.createElement("div");
      row.className = "msg__buttons";
      row.setAttribute("role", "group");
      entry.buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = String(b.title || "");
        btn.addEventListener("click", function () { send(String(b.payload || b.title || ""), String(b.title || "")); });
        row.appendChild(btn);
      });
      bubble.appendChild(row);
    }
    li.appendChild(bubble);
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function setStatus(state) { statusEl.dataset.state = state; statusEl.textContent = t[state]; }

  var socket = io({ path: "/socket.io", transports: ["websocket", "polling"] });
  setStatus("connecting");
  socket.on("connect", function () {
    setStatus("online");
    socket.emit("session_request", { session_id: sessionId });
  });
  socket.on("disconnect", function () { setStatus("offline"); });
  socket.on("session_confirm", function (sid) {
    if (sid !== sessionId) {
      sessionId = sid;
      localStorage.setItem(SESSION_KEY, sid);
    }
    if (!log.dataset.restored) {
      loadHistory().forEach(render);
      log.dataset.restored = "1";
    }
  });
  socket.on("bot_uttered", function (msg) {
    typing.hidden = true;
    var entry = { who: "bot", text: msg && msg.text ? String(msg.text) : "", buttons: (msg && (msg.quick_replies || msg.buttons)) || [] };
    if (!entry.text && !entry.buttons.length) { return; }
    saveEntry(entry);
    render(entry);
  });

  function send(payload, shown) {
    var text = (payload || "").trim();
    if (!text || !sessionId) { return; }
    var entry = { who: "user", text: shown || text };
    saveEntry(entry);
    render(entry);
    typing.hidden = false;
    socket.emit("user_uttered", { message: text, session_id: sessionId });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
})();
