/* Agent console UI. Customer and agent text is only ever inserted with textContent. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("kefu-data").textContent);
  var T = data.strings;
  var state = { ticketId: null, ws: null, lastId: 0, ticket: null };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": data.csrf } };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { j._status = r.status; return j; });
    });
  }
  function fmtWait(s) {
    s = Math.round(s || 0);
    return s < 60 ? s + T.seconds : Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  function sentimentLabel(s) {
    if (!s) return "";
    if (typeof s === "string") return s;
    return (s.label || "") + (s.score !== undefined ? " (" + Number(s.score).toFixed(2) + ")" : "");
  }
  function sentimentClass(s) {
    var label = typeof s === "string" ? s : (s && s.label);
    return label ? "sentiment-" + label : "";
  }

  var langSwitch = document.getElementById("lang-switch");
  if (langSwitch) langSwitch.addEventListener("click", function () {
    document.cookie = "kefu_lang=" + langSwitch.dataset.lang + "; path=/; SameSite=Strict; max-age=31536000";
  });

  var lastShape = null;
  function renderQueues(payload) {
    var root = document.getElementById("queues");
    if (!root) return;
    var shape = JSON.stringify(Object.keys(payload.queues || {}).sort().map(function (q) {
      return [q, payload.queues[q].map(function (t) { return [t.id, t.status, t.agent, t.priority]; })];
    })) + "|" + state.ticketId;
    if (shape === lastShape) {  // same tickets: only refresh waiting times, keep the DOM (and clicks) stable
      Object.keys(payload.queues).forEach(function (q) {
        payload.queues[q].forEach(function (t) {
          var cell = root.querySelector("tr[data-ticket='" + t.id + "'] td.wait");
          if (cell) cell.textContent = t.status === "waiting" ? fmtWait(t.waiting_seconds) : "-";
        });
      });
      return;
    }
    lastShape = shape;
    clear(root);
    var names = Object.keys(payload.queues || {}).sort();
    if (!names.length) root.appendChild(el("p", {}, T.no_tickets));
    names.forEach(function (q) {
      var box = el("div", { "class": "queue", "data-queue": q });
      var tickets = payload.queues[q];
      box.appendChild(el("h3", {}, q + " (" + tickets.length + ")"));
      if (!tickets.length) { box.appendChild(el("p", { "class": "meta" }, T.no_tickets)); root.appendChild(box); return; }
      var table = el("table");
      var head = el("tr");
      [T.priority, T.wait_time, T.reason, T.language, T.sentiment, T.status, ""].forEach(function (h) {
        head.appendChild(el("th", {}, h));
      });
      table.appendChild(head);
      tickets.forEach(function (t) {
        var row = el("tr", { "class": "ticket-row" + (t.id === state.ticketId ? " selected" : ""), "data-ticket": t.id });
        row.appendChild(el("td", { "class": t.priority >= 50 ? "prio-high" : "" }, t.priority));
        row.appendChild(el("td", { "class": "wait" }, t.status === "waiting" ? fmtWait(t.waiting_seconds) : "-"));
        row.appendChild(el("td", {}, t.reason));
        row.appendChild(el("td", {}, t.language));
        row.appendChild(el("td", { "class": sentimentClass(t.sentiment) }, sentimentLabel(t.sentiment)));
        row.appendChild(el("td", {}, (T[t.status] || t.status) + (t.agent ? " · " + t.agent : "")));
        var cell = el("td");
        if (t.status === "waiting" && data.page === "console") {
          var btn = el("button", { "class": "claim", "data-ticket": t.id }, T.claim);
          btn.addEventListener("click", function (ev) { ev.stopPropagation(); claim(t.id); });
          cell.appendChild(btn);
        }
        row.appendChild(cell);
        row.addEventListener("click", function () { openTicket(t.id); });
        table.appendChild(row);
      });
      box.appendChild(table);
      root.appendChild(box);
    });
  }
  function loadQueues() { return api("GET", "/api/queues").then(function (p) { if (p._status === 200) renderQueues(p); }); }

  function notice(text) {
    var panel = document.getElementById("ticket");
    var n = el("p", { "class": "notice", role: "alert" }, text);
    panel.insertBefore(n, panel.firstChild);
    setTimeout(function () { if (n.parentNode) n.parentNode.removeChild(n); }, 6000);
  }
  function claim(id) {
    api("POST", "/api/tickets/" + id + "/claim").then(function (r) {
      if (r._status === 200) { openTicket(id); } else { openTicket(id).then(function () { notice(r._status === 409 ? T.claimed_by_other : (r.detail || T.error)); }); }
      loadQueues();
    });
  }

  function addMessage(log, role, text, meta) {
    var m = el("div", { "class": "msg msg--" + role, "data-role": role });
    m.appendChild(el("span", { "class": "msg__text" }, text));
    if (meta) m.appendChild(el("div", { "class": "meta" }, meta));
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
  }

  function openTicket(id) {
    if (state.ws) { state.ws.close(); state.ws = null; }
    state.ticketId = id; state.lastId = 0;
    return api("GET", "/api/tickets/" + id).then(function (d) {
      var panel = document.getElementById("ticket");
      clear(panel);
      if (d._status !== 200) { panel.appendChild(el("p", { "class": "error" }, d.detail || T.error)); return; }
      var t = d.ticket; state.ticket = t;
      panel.appendChild(el("h2", { id: "ticket-title" }, T.conversation + " " + t.conversation_id));
      var info = el("p", { "class": "meta", id: "ticket-info" });
      info.textContent = [t.queue, T.reason + ": " + t.reason, T.channel + ": " + t.channel, T.language + ": " + t.language,
        T.status + ": " + (T[t.status] || t.status) + (t.agent ? " (" + t.agent + ")" : "")].join(" · ");
      panel.appendChild(info);
      var why = (t.reason_detail || {}).why;  // the routing record's reason: the tree's path in words
      if (why) panel.appendChild(el("p", { "class": "meta", id: "routing-why" }, T.routing + ": " + why));
      var trend = (t.sentiment_trend || []).map(sentimentLabel).filter(Boolean);
      if (trend.length) panel.appendChild(el("p", { "class": "meta", id: "sentiment-trend" }, T.sentiment + ": " + trend.join(" → ")));
      panel.appendChild(actionsBar(t));
      var cols = el("div", { "class": "cols" });
      var left = el("div"); left.appendChild(el("h3", {}, T.history));
      var hist = el("div", { "class": "log", id: "history" });
      (d.history || []).forEach(function (h) {
        addMessage(hist, h.role, h.text, h.sentiment ? T.sentiment + ": " + sentimentLabel(h.sentiment) : "");
      });
      left.appendChild(hist);
      var right = el("div"); right.appendChild(el("h3", {}, T.chat));
      var log = el("div", { "class": "log", id: "chat-log" }); right.appendChild(log);
      var mine = t.status === "assigned" && t.agent === data.agent.name;
      if (mine) right.appendChild(composer());
      cols.appendChild(left); cols.appendChild(right); panel.appendChild(cols);
      if ((t.suggestions || []).length) panel.appendChild(suggestions(t.suggestions, mine));
      connect(id, log);
    });
  }

  function actionsBar(t) {
    var bar = el("div", { "class": "actions" });
    if (t.status === "waiting") {
      var c = el("button", { id: "claim-current" }, T.claim);
      c.addEventListener("click", function () { claim(t.id); }); bar.appendChild(c);
    }
    var mine = t.status === "assigned" && t.agent === data.agent.name;
    if (mine || data.agent.role === "supervisor" || t.status === "waiting") {
      var q = el("input", { id: "transfer-queue", placeholder: "senior / cards / …", maxlength: "48", size: "12" });
      var tb = el("button", { id: "transfer" }, T.transfer);
      tb.addEventListener("click", function () {
        api("POST", "/api/tickets/" + t.id + "/transfer", { queue: q.value.trim() }).then(function (r) {
          if (r._status !== 200) notice(r.detail || T.error); else openTicket(t.id);
          loadQueues();
        });
      });
      bar.appendChild(q); bar.appendChild(tb);
    }
    if (mine || (data.agent.role === "supervisor" && t.status === "assigned")) {
      var sel = el("select", { id: "disposition", "aria-label": T.disposition });
      data.dispositions.forEach(function (d) { sel.appendChild(el("option", { value: d }, T[d] || d)); });
      var cb = el("button", { id: "close" }, T.close);
      cb.addEventListener("click", function () {
        saveCorrection(t, intent.value).then(function (ok) {
          if (!ok) return;
          api("POST", "/api/tickets/" + t.id + "/close", { disposition: sel.value }).then(function (r) {
            if (r._status !== 200) notice(r.detail || T.error); else openTicket(t.id);
            loadQueues();
          });
        });
      });
      var intent = correctionSelect(t);
      bar.appendChild(sel); bar.appendChild(intent); bar.appendChild(cb);
    }
    return bar;
  }

  // The intent the bot should have recognised (kefu iterate proposes the customer's message as an example).
  function correctionSelect(t) {
    var sel = el("select", { id: "corrected-intent", "aria-label": T.corrected_intent });
    sel.appendChild(el("option", { value: "" }, T.no_correction));
    (data.intents || []).forEach(function (i) { sel.appendChild(el("option", { value: i }, i)); });
    var current = (t.reason_detail || {}).corrected_intent;
    if (current) sel.value = current;
    return sel;
  }
  function saveCorrection(t, intent) {
    var current = (t.reason_detail || {}).corrected_intent || "";
    if (!intent || intent === current) return Promise.resolve(true);
    return api("POST", "/api/tickets/" + t.id + "/correction", { intent: intent }).then(function (r) {
      if (r._status !== 200) { notice(r.detail || T.error); return false; }
      t.reason_detail = r.reason_detail;
      return true;
    });
  }

  function composer() {
    var box = el("div", { "class": "composer" });
    var input = el("textarea", { id: "reply", placeholder: T.type_reply, maxlength: "8000" });
    var btn = el("button", { id: "send" }, T.send);
    function send() {
      var text = input.value;
      if (!text.trim() || !state.ws || state.ws.readyState !== 1) return;
      state.ws.send(JSON.stringify({ type: "send", text: text }));
      input.value = "";
    }
    btn.addEventListener("click", send);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });
    box.appendChild(input); box.appendChild(btn);
    return box;
  }

  function suggestions(items, mine) {
    var box = el("div", { id: "suggestions" }); box.appendChild(el("h3", {}, T.suggestions));
    items.forEach(function (s) {
      var text = typeof s === "string" ? s : (s.answer || s.text || s.title || JSON.stringify(s));
      var item = el("div", { "class": "suggestion" }, text);
      if (mine) {
        var b = el("button", { "class": "insert" }, T.insert);
        b.addEventListener("click", function () { var r = document.getElementById("reply"); if (r) { r.value = text; r.focus(); } });
        item.appendChild(b);
      }
      box.appendChild(item);
    });
    return box;
  }

  function connect(id, log) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/ws/tickets/" + id + "?after=" + state.lastId);
    state.ws = ws;
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "message") {
        state.lastId = Math.max(state.lastId, m.id);
        addMessage(log, m.role, m.text, new Date(m.created_at).toLocaleTimeString());
      } else if (m.type === "ticket" && state.ticket && (m.ticket.status !== state.ticket.status || m.ticket.agent !== state.ticket.agent)) {
        openTicket(id);
      } else if (m.type === "error") {
        notice(m.detail);
      }
    };
    ws.onclose = function () {
      if (state.ws === ws && state.ticketId === id) setTimeout(function () { if (state.ws === ws) connect(id, log); }, 2000);
    };
  }

  function loadMetrics() {
    api("GET", "/api/metrics").then(function (m) {
      var root = document.getElementById("metrics");
      if (!root || m._status !== 200) return;
      clear(root);
      var open = 0, oldest = 0;
      (m.queues || []).forEach(function (q) { open += q.waiting + q.assigned; oldest = Math.max(oldest, q.oldest_wait_seconds); });
      [[T.open_tickets, open, "m-open"], [T.oldest_wait, fmtWait(oldest), "m-oldest"], [T.closed_today, m.closed_today, "m-closed"],
       [T.avg_rating, m.avg_rating_today === null ? "-" : m.avg_rating_today, "m-rating"],
       [T.agents_online, (m.agents_online || []).length, "m-online"]].forEach(function (x) {
        var box = el("span", { "class": "metric", id: x[2] }); box.appendChild(el("b", {}, x[1])); box.appendChild(document.createTextNode(x[0]));
        root.appendChild(box);
      });
    });
  }

  function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }
  function secs(x) { return x === null || x === undefined ? "-" : fmtWait(x); }
  function loadLive() {
    var root = document.getElementById("live-metrics");
    var win = document.getElementById("live-window");
    if (!root) return;
    api("GET", "/api/metrics/live?window=" + encodeURIComponent(win ? win.value : "24h")).then(function (m) {
      if (m._status !== 200) { clear(root); root.appendChild(el("p", { "class": "error" }, m.detail || T.error)); return; }
      clear(root);
      [[T.conversations, m.conversations, "l-conversations"], [T.automation_rate, pct(m.automation_rate), "l-automation"],
       [T.escalation_rate, pct(m.escalation_rate), "l-escalation"], [T.fallback_rate, pct(m.fallback_rate), "l-fallback"],
       [T.aht_bot, secs(m.aht_bot_s), "l-aht-bot"], [T.aht_human, secs(m.aht_human_s), "l-aht-human"],
       [T.csat_mean, m.csat_mean === null ? "-" : m.csat_mean, "l-csat"],
       [T.csat_response_rate, pct(m.csat_response_rate), "l-csat-rate"]].forEach(function (x) {
        var box = el("span", { "class": "metric", id: x[2] }); box.appendChild(el("b", {}, x[1])); box.appendChild(document.createTextNode(x[0]));
        root.appendChild(box);
      });
      var table = el("table", { id: "l-queues" });
      table.appendChild(el("caption", {}, T.escalations_by_queue));
      var head = el("tr");
      [T.queue, T.count, T.rate, T.now_waiting, T.now_assigned, T.oldest_wait].forEach(function (h) { head.appendChild(el("th", {}, h)); });
      table.appendChild(head);
      var rows = {};
      (m.escalations_by_queue || []).forEach(function (q) { rows[q.queue] = { esc: q }; });
      (m.queues || []).forEach(function (q) { (rows[q.queue] = rows[q.queue] || {}).now = q; });
      Object.keys(rows).sort().forEach(function (name) {
        var r = rows[name], tr = el("tr", { "data-queue": name });
        [name, r.esc ? r.esc.count : 0, r.esc ? pct(r.esc.rate) : "-", r.now ? r.now.waiting : 0, r.now ? r.now.assigned : 0,
         r.now ? fmtWait(r.now.oldest_wait_seconds) : "-"].forEach(function (v) { tr.appendChild(el("td", {}, v)); });
        table.appendChild(tr);
      });
      root.appendChild(table);
    });
  }

  function num3(x) { return x === null || x === undefined ? "-" : x.toFixed(3); }
  function loadThresholds() {
    var root = document.getElementById("thresholds");
    if (!root) return;
    api("GET", "/api/thresholds").then(function (p) {
      clear(root);
      if (p._status !== 200) {
        root.appendChild(el("p", { "class": "hint", id: "t-none" }, T.th_none));
        root.appendChild(el("p", { "class": p._status === 404 ? "meta" : "error" }, p.detail || T.error));
        return;
      }
      var m = p.model || {}, tg = p.targets || {};
      var head = T.th_model + ": " + m.file + " (" + T.th_updated + " " + m.modified_at + ") · " +
        (p.mode === "targets" ? T.th_mode_targets + ": " + T.th_target_auto + " " + pct(tg.auto_precision) + ", " +
          T.th_target_specialist + " " + pct(tg.specialist_precision) + ", " + T.th_min_support + " " + tg.min_band_support
          : T.th_mode_numbers);
      root.appendChild(el("p", { id: "t-model", title: m.path || "" }, head));
      if (p.mode !== "targets") root.appendChild(el("p", { "class": "meta", id: "t-live" }, T.th_numbers_live));
      function source(s) { return s ? (T["th_src_" + s] || s) : ""; }
      var table = el("table", { id: "t-bands" }), tr = el("tr");
      [T.th_band, T.th_threshold, T.th_source, T.th_coverage, T.th_accuracy, T.th_support].forEach(function (h) { tr.appendChild(el("th", {}, h)); });
      table.appendChild(tr);
      ["auto", "specialist", "below"].forEach(function (band) {
        var b = (p.bands || {})[band] || {}, row = el("tr", { "data-band": band });
        [T["th_band_" + band], band === "below" ? "" : num3(p[band]), band === "below" ? "" : source((p.source || {})[band]),
         pct(b.coverage), pct(b.accuracy), b.support === null || b.support === undefined ? "-" : b.support
        ].forEach(function (v) { row.appendChild(el("td", {}, v)); });
        table.appendChild(row);
      });
      root.appendChild(table);
      if ((p.intents || []).length) {
        var it = el("table", { id: "t-intents" }), ih = el("tr");
        it.appendChild(el("caption", {}, T.th_intents));
        [T.th_intent, T.th_auto, T.th_specialist, T.th_support].forEach(function (h) { ih.appendChild(el("th", {}, h)); });
        it.appendChild(ih);
        p.intents.forEach(function (i) {
          var row = el("tr", { "data-intent": i.intent }), s = i.source || {};
          [i.intent, num3(i.auto) + " (" + source(s.auto) + ")", num3(i.specialist) + " (" + source(s.specialist) + ")",
           i.support === null ? "-" : i.support].forEach(function (v) { row.appendChild(el("td", {}, v)); });
          it.appendChild(row);
        });
        root.appendChild(it);
      }
      if (p.oos) root.appendChild(el("p", { id: "t-oos" }, T.th_oos + ": " + num3(p.oos.threshold) + " (" + p.oos.method +
        ", " + T.th_in_scope_recall + " " + pct(p.oos.in_scope_recall) + ")"));
      var c = p.calibration;
      if (c) root.appendChild(el("p", { id: "t-calibration" }, T.th_calibration + ": " + c.method +
        (c.temperature === null ? "" : " (T=" + num3(c.temperature) + ")") + ", ECE " + num3(c.ece_before) + " → " +
        num3(c.ece_after) + " (" + c.examples + " " + T.th_examples + ", " + c.folds + "-fold)"));
      if ((p.warnings || []).length) {
        var ul = el("ul", { id: "t-warnings", "class": "error", "aria-label": T.th_warnings });
        p.warnings.forEach(function (w) { ul.appendChild(el("li", {}, w)); });
        root.appendChild(ul);
      }
    });
  }

  if (data.page === "console" || data.page === "supervisor") {
    loadQueues(); setInterval(loadQueues, 2000);
  }
  if (data.page === "supervisor") {
    loadMetrics(); setInterval(loadMetrics, 2000);
    loadLive(); setInterval(loadLive, 10000);
    loadThresholds(); setInterval(loadThresholds, 60000);
    var win = document.getElementById("live-window");
    if (win) win.addEventListener("change", loadLive);
  }
})();
