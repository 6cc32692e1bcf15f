/* Agent workspace live updates. The server renders every message (same partial as the page);
   a pushed event only says "something changed", and the client fetches the rendered messages
   after the last id it shows. On every (re)connect it does the same, so a dropped socket loses
   nothing, and the data-message-id check means nothing is shown twice. */
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  if (!thread && !document.querySelector("[data-conversation-link]") && !document.getElementById("new-conversations")) return;
  var statusLine = document.getElementById("live-status");
  var conversationId = thread ? Number(thread.dataset.conversation) : null;
  var lastEventId = 0;
  var fetching = null;
  var again = false;
  window.cxWorkspace = {socket: null};

  function lastMessageId() {
    var ids = Array.prototype.map.call(thread.querySelectorAll("[data-message-id]"), function (el) { return Number(el.dataset.messageId); });
    return ids.length ? Math.max.apply(null, ids) : 0;
  }
  function catchUp() {
    if (!thread) return Promise.resolve();
    if (fetching) { again = true; return fetching; }
    fetching = fetch(thread.dataset.fragmentUrl + "?after=" + lastMessageId(), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html;  // server-rendered and escaped by Django templates
        Array.prototype.forEach.call(tpl.content.querySelectorAll("[data-message-id]"), function (li) {
          var existing = thread.querySelector('[data-message-id="' + li.dataset.messageId + '"]');
          if (existing) { existing.replaceWith(li); } else { thread.appendChild(li); }
          var empty = document.getElementById("thread-empty"); if (empty) empty.remove();
          if (li.classList.contains("inbound")) notify(li);
        });
      })
      .finally(function () { fetching = null; if (again) { again = false; catchUp(); } });
    return fetching;
  }
  function refreshOne(messageId) {
    // A status change of a message already shown: re-fetch from just before it.
    if (!thread || !thread.querySelector('[data-message-id="' + messageId + '"]')) return catchUp();
    return fetch(thread.dataset.fragmentUrl + "?after=" + (messageId - 1), {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var tpl = document.createElement("template"); tpl.innerHTML = html;
        Array.prototype.forEach.call(tpl.content.querySelectorAll("[data-message-id]"), function (li) {
          var existing = thread.querySelector('[data-message-id="' + li.dataset.messageId + '"]');
          if (existing) existing.replaceWith(li);
        });
      });
  }
  function notify(li) {
    if (document.hasFocus() || !("Notification" in window) || Notification.permission !== "granted") return;
    try { new Notification("New message", {body: (li.querySelector(".content") || li).textContent.slice(0, 120)}); } catch (e) {}
  }
  function setStatus(text) { if (statusLine) statusLine.textContent = text; }

  var delay = 500;
  function retry() {
    setStatus("Reconnecting…");
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  }
  function connect() {
    var ws;
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent/");
    } catch (err) { retry(); return; }
    window.cxWorkspace.socket = ws;
    ws.onopen = function () {
      delay = 500;
      setStatus("Live");
      if (conversationId) ws.send(JSON.stringify({type: "conversation.open", conversation: conversationId}));
    };
    ws.onmessage = function (e) {
      var data = JSON.parse(e.data);
      if (data.type === "hello") { availability = data.availability; }
      if (data.id) lastEventId = Math.max(lastEventId, data.id);
      if (data.type === "conversation.opened") { catchUp(); return; }
      var ev = data.event || "";
      if (ev === "channels.message.created" && data.message && !conversationId) listUpdate(data.message);
      else if (ev === "channels.message.created" && data.message && data.message.conversation === conversationId) catchUp();
      else if (ev === "channels.message.updated" && data.message && data.message.conversation === conversationId) refreshOne(data.message.id);
      else if ((ev === "channels.conversation.status_changed" || ev === "channels.conversation.rated" || ev === "channels.conversation.assigned") &&
               data.conversation && data.conversation.id === conversationId) refreshPanel();
      else if (ev === "channels.typing" && data.conversation === conversationId) { setStatus("Someone is typing…"); setTimeout(function () { setStatus("Live"); }, 3000); }
    };
    ws.onclose = retry;
  }
  function listUpdate(message) {
    // Conversation list: unread count per row for inbound messages; a notice for conversations not listed yet.
    if (message.direction !== "inbound") return;
    var badge = document.querySelector('[data-unread-for="' + message.conversation + '"]');
    if (badge) {
      var n = Number(badge.textContent || "0") + 1;
      badge.textContent = String(n); badge.hidden = false;
      badge.setAttribute("aria-label", n + " unread");
    } else {
      var notice = document.getElementById("new-conversations"); if (notice) notice.hidden = false;
    }
  }
  function refreshPanel() {
    var panel = document.getElementById("conversation-panel");
    if (!panel) return;
    fetch(location.pathname, {credentials: "same-origin"}).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("conversation-panel");
      if (fresh) panel.replaceWith(fresh);
    });
  }

  // Keyboard shortcuts: r reply, n note, e resolve, j/k next/previous conversation, ? help.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT"))) return;
    var reply = document.getElementById("id_content");
    var note = document.getElementById("id_private");
    if (e.key === "r" && reply) { e.preventDefault(); if (note) note.checked = false; reply.focus(); }
    else if (e.key === "n" && reply) { e.preventDefault(); if (note) note.checked = true; reply.focus(); }
    else if (e.key === "e") { var res = document.getElementById("resolve-button"); if (res) res.click(); }
    else if (e.key === "a") { var mine = document.getElementById("assign-me-button"); if (mine) mine.click(); }
    else if (e.key === "j" || e.key === "k") {
      var rows = Array.prototype.slice.call(document.querySelectorAll("[data-conversation-link]"));
      if (!rows.length) return;
      var i = rows.indexOf(document.activeElement);
      var next = rows[Math.max(0, Math.min(rows.length - 1, i + (e.key === "j" ? 1 : -1)))];
      next.focus();
    } else if (e.key === "?") { var help = document.getElementById("shortcuts"); if (help) help.hidden = !help.hidden; }
  });
  var content = document.getElementById("id_content");
  var lastTyping = 0;
  if (content) content.addEventListener("input", function () {
    var ws = window.cxWorkspace.socket;
    if (ws && ws.readyState === 1 && Date.now() - lastTyping > 2000 && conversationId) {
      lastTyping = Date.now(); ws.send(JSON.stringify({type: "typing", conversation: conversationId}));
    }
  });
  if ("Notification" in window && Notification.permission === "default") {
    document.addEventListener("click", function ask() { Notification.requestPermission(); document.removeEventListener("click", ask); });
  }
  // Auto-away: an online agent idle for 5 minutes becomes away, and online again on activity.
  var availability = null, autoAway = false, idleTimer = null;
  function sendPresence(value) {
    var ws = window.cxWorkspace.socket;
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify({type: "presence.set", availability: value})); availability = value; }
  }
  function activity() {
    if (autoAway && availability === "away") { autoAway = false; sendPresence("online"); }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () { if (availability === "online") { autoAway = true; sendPresence("away"); } }, 5 * 60 * 1000);
  }
  ["keydown", "mousemove", "focus"].forEach(function (name) { window.addEventListener(name, activity, {passive: true}); });
  activity();
  connect();
})();
