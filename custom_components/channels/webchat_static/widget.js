/* Kefu embeddable chat widget. Paste into any page:
 *   <script src="http://HOST:5005/chat/widget.js" data-kefu-url="http://HOST:5005" defer></script>
 * Options: data-kefu-url (where Kefu runs; default: where this script came from),
 *          data-lang ("zh" | "en"; default: the browser's language or the customer's last choice).
 * It adds a launcher button and a panel with an iframe of <kefu>/chat/embed. The chat runs in the
 * iframe on Kefu's origin (same-origin socket.io, Kefu's CSP, storage the host page cannot read);
 * the launcher sits in a Shadow DOM so the host page's CSS cannot restyle it. The iframe and this
 * loader talk with postMessage: {kefu: 1, type: "close" | "lang" | "focus"}, origin-checked both ways:
 * the iframe gets this page's origin as ?host= and posts to it only (never "*"). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__kefuWidget) { return; }
  window.__kefuWidget = true;
  var base;
  try { base = new URL((script.getAttribute("data-kefu-url") || new URL(script.src).origin).replace(/\/+$/, "") + "/"); }
  catch (e) { return; }
  if (base.protocol !== "http:" && base.protocol !== "https:") { return; }
  var asked = script.getAttribute("data-lang");
  var frameUrl = new URL("chat/embed", base);
  if (asked === "zh" || asked === "en") { frameUrl.searchParams.set("lang", asked); }
  frameUrl.searchParams.set("host", location.origin);  // the chat posts its messages to this origin only
  var LABELS = { zh: { open: "在线客服", close: "关闭在线客服", panel: "Kefu 在线客服" },
                 en: { open: "Chat with us", close: "Close the chat", panel: "Kefu chat" } };
  var lang = asked === "zh" || asked === "en" ? asked
    : (navigator.language || "zh").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var CSS = [
    ":host { all: initial; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; display: flex; align-items: center;",
    "  gap: 8px; padding: 12px 18px; border: 0; border-radius: 28px; background: #1f4e8c; color: #fff; cursor: pointer;",
    "  font: 600 15px/1.2 system-ui, 'PingFang SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', sans-serif;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".launcher:focus-visible { outline: 3px solid #f5a623; outline-offset: 3px; }",
    ".panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: 380px; height: 600px;",
    "  max-width: calc(100vw - 40px); max-height: calc(100vh - 104px); border-radius: 12px; overflow: hidden;",
    "  box-shadow: 0 8px 30px rgba(0,0,0,.3); background: #fff; }",
    ".panel[hidden] { display: none; }",
    "iframe { width: 100%; height: 100%; border: 0; display: block; }"
  ].join("\n");

  var host = document.createElement("div");
  host.id = "kefu-widget";
  var root = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);  // constructed sheets are not blocked by the host page's style-src
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }
  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "launcher";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "kefu-panel");
  var SVG = "http://www.w3.org/2000/svg";  // a speech bubble drawn inline: no icon font or emoji needed
  var icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "20");
  icon.setAttribute("height", "20");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  var path = document.createElementNS(SVG, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  var label = document.createElement("span");
  launcher.appendChild(icon);
  launcher.appendChild(label);
  var panel = document.createElement("div");
  panel.id = "kefu-panel";
  panel.className = "panel";
  panel.setAttribute("role", "dialog");
  panel.hidden = true;
  var frame = null, wantFocus = false;
  root.appendChild(panel);
  root.appendChild(launcher);

  function applyLabels() {
    var l = LABELS[lang];
    label.textContent = l.open;
    launcher.setAttribute("aria-label", panel.hidden ? l.open : l.close);
    panel.setAttribute("aria-label", l.panel);
    if (frame) { frame.title = l.panel; }
  }
  function open(focus) {
    wantFocus = focus;
    if (!frame) {  // the chat connects only once the customer opens it
      frame = document.createElement("iframe");
      frame.src = frameUrl.href;
      frame.title = LABELS[lang].panel;
      frame.setAttribute("allow", "clipboard-write");
      frame.addEventListener("load", function () { if (wantFocus) { focusChat(); } });
      panel.appendChild(frame);
    }
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    applyLabels();
    if (focus) { focusChat(); }
    try { sessionStorage.setItem("kefu.widget.open", "1"); } catch (e) { /* storage blocked */ }
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    applyLabels();
    launcher.focus();
    try { sessionStorage.removeItem("kefu.widget.open"); } catch (e) { /* storage blocked */ }
  }
  function focusChat() {
    if (frame && !panel.hidden) {
      frame.focus();
      frame.contentWindow.postMessage({ kefu: 1, type: "focus" }, frameUrl.origin);
    }
  }
  launcher.addEventListener("click", function () { if (panel.hidden) { open(true); } else { close(); } });
  window.addEventListener("message", function (ev) {
    if (!frame || ev.source !== frame.contentWindow || ev.origin !== frameUrl.origin) { return; }
    var data = ev.data;
    if (!data || data.kefu !== 1) { return; }
    if (data.type === "close") { close(); }
    if (data.type === "lang" && LABELS[data.lang]) { lang = data.lang; applyLabels(); }
    if (data.type === "storage-request") { post({ type: "storage", items: snapshot() }); }
    if (data.type === "store" && typeof data.key === "string" && KEY.test(data.key) &&
        typeof data.value === "string" && data.value.length <= MAX_VALUE) {
      try { localStorage.setItem(PREFIX + data.key, data.value); } catch (e) { /* storage blocked or full */ }
    }
  });
  // Storage bridge: browsers that block third-party storage give the iframe no localStorage, so
  // the chat keeps its session id, transcript and language here, in the host page's storage.
  var PREFIX = "kefu-widget:", KEY = /^kefu\.[\w.\-]{1,100}$/, MAX_VALUE = 512 * 1024;
  function post(message) { message.kefu = 1; frame.contentWindow.postMessage(message, frameUrl.origin); }
  function snapshot() {
    var items = {};
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var k = localStorage.key(i);
        if (k && k.indexOf(PREFIX) === 0) { items[k.slice(PREFIX.length)] = localStorage.getItem(k); }
      }
    } catch (e) { /* storage blocked */ }
    return items;
  }
  window.addEventListener("storage", function (ev) {  // another tab of the host site
    if (frame && ev.key && ev.key.indexOf(PREFIX) === 0) {
      post({ type: "storage-changed", key: ev.key.slice(PREFIX.length), value: ev.newValue });
    }
  });
  applyLabels();
  function mount() {
    document.body.appendChild(host);
    var wasOpen = false;
    try { wasOpen = sessionStorage.getItem("kefu.widget.open") === "1"; } catch (e) { /* storage blocked */ }
    if (wasOpen) { open(false); }
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
