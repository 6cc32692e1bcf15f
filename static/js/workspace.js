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
  window.cxWorkspace = {socket: null, cursorReady: false};
  // Translations from Django's JavaScript catalog (/jsi18n/, loaded before this file); English
  // when it is missing.
  var _ = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, other, n) { return n === 1 ? one : other; };
  var interpolate = window.interpolate || function (fmt, args) { return fmt.replace("%s", args[0]); };

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
    try { new Notification(_("New message"), {body: (li.querySelector(".content") || li).textContent.slice(0, 120)}); } catch (e) {}
  }
  function setStatus(text) { if (statusLine) statusLine.textContent = text; }

  var delay = 500;
  function retry() {
    setStatus(_("Reconnecting…"));
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  }
  var attempts = 0;  // sockets this page tried to open (see liveHello)
  function connect() {
    var ws;
    attempts += 1;
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent/");
    } catch (err) { retry(); return; }
    window.cxWorkspace.socket = ws;
    ws.onopen = function () {
      delay = 500;
      setStatus(_("Live"));
      if (conversationId) ws.send(JSON.stringify({type: "conversation.open", conversation: conversationId}));
      liveResume(ws);  // after conversation.open: the server answers for the groups this socket joined
    };
    ws.onmessage = function (e) { receive(JSON.parse(e.data)); };
    ws.onclose = retry;
  }
  function receive(data) {
      if (data.type === "hello") { availability = data.availability; liveHello(data); return; }
      if (data.type === "resume") { liveReplay(data); return; }
      if (data.type === "refresh") { liveRefresh(data); return; }
      if (liveSeen(data.id)) return;  // pushed twice (late-commit overlap, resume racing a push)
      if (data.type === "conversation.opened") { catchUp(); return; }
      var ev = data.event || "";
      if (ev === "channels.message.created" && data.message && !conversationId) listUpdate(data.message);
      else if (ev === "channels.message.created" && data.message && data.message.conversation === conversationId) catchUp();
      else if (ev === "channels.message.updated" && data.message && data.message.conversation === conversationId) refreshOne(data.message.id);
      else if ((ev === "channels.conversation.status_changed" || ev === "channels.conversation.rated" || ev === "channels.conversation.assigned" || ev === "channels.conversation.updated") &&
               data.conversation && data.conversation.id === conversationId) refreshPanel();
      else if (ev === "channels.typing" && data.conversation === conversationId) { setStatus(_("Someone is typing…")); setTimeout(function () { setStatus(_("Live")); }, 3000); }
  }

  /* Live-event cursor (docs/workspace.md, "Live events: nothing missed, nothing twice").
     Every stored event has a database id. The first hello gives the cursor; after a reconnect
     the socket asks for what came after it ({"type": "resume", "since": id}) and replays the
     answer through receive(). Ids are not commit-ordered, so the server also re-sends a short
     window before the cursor: a bounded set of seen ids drops what was already handled. Too
     much missed (or older than the retention) → the server says "refresh" and the views are
     re-read from the server. A resume every minute also covers pushes the channel layer dropped
     while the socket stayed open. */
  var cursorReady = false;
  var seenIds = [], seenSet = {}, SEEN_MAX = 2000;
  function liveSeen(id) {
    if (typeof id !== "number") return false;  // typing and other ephemeral events carry no id
    if (seenSet[id]) return true;
    seenSet[id] = true; seenIds.push(id);
    if (seenIds.length > SEEN_MAX) delete seenSet[seenIds.shift()];
    lastEventId = Math.max(lastEventId, id);
    return false;
  }
  function liveHello(data) {
    if (cursorReady) return;
    lastEventId = Math.max(lastEventId, data.last_id || 0); cursorReady = window.cxWorkspace.cursorReady = true;
    // The page has no cursor before its first hello. When an earlier socket of this page failed
    // or closed before getting one, events stored meanwhile are older than this hello's last_id
    // and cannot be asked for by id: re-read the views, as for a "refresh" (the full-suite
    // flake of tests/e2e/test_live_resume.py: a rating given in that window was never shown).
    if (attempts > 1) liveRefresh(data);
  }
  function liveResume(ws) {
    if (cursorReady && ws && ws.readyState === 1) ws.send(JSON.stringify({type: "resume", since: lastEventId}));
  }
  function liveReplay(data) {
    (data.events || []).forEach(receive);
    lastEventId = Math.max(lastEventId, data.last_id || 0);
  }
  function liveRefresh(data) {
    lastEventId = Math.max(lastEventId, data.last_id || 0);
    if (thread) { catchUp(); refreshPanel(); }
    else location.reload();  // the conversation list: re-rendered by the server
  }
  setInterval(function () { liveResume(window.cxWorkspace.socket); }, 60 * 1000);
  function listUpdate(message) {
    // Conversation list: unread count per row for inbound messages; a notice for conversations not listed yet.
    if (message.direction !== "inbound") return;
    var badge = document.querySelector('[data-unread-for="' + message.conversation + '"]');
    if (badge) {
      var n = Number(badge.textContent || "0") + 1;
      badge.textContent = String(n); badge.hidden = false;
      badge.setAttribute("aria-label", interpolate(ngettext("%s unread message", "%s unread messages", n), [n]));
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

/* Composer, search shortcut and unread counters. Kept apart from the live-update code above:
   everything here only reads the page and calls the workspace's JSON/HTML endpoints; text
   from the server is inserted with textContent (never as HTML). */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // --- search: "/" when not typing, Ctrl+K / Cmd+K anywhere ---------------------------------
  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT" || el.tagName === "SELECT" || el.isContentEditable);
  }
  function setupSearchShortcut() {
    var box = document.getElementById("workspace-search");
    if (!box) return;
    document.addEventListener("keydown", function (e) {
      var ctrlK = (e.ctrlKey || e.metaKey) && !e.altKey && (e.key === "k" || e.key === "K");
      var slash = e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && !isTyping(e.target);
      if (ctrlK || slash) { e.preventDefault(); box.focus(); box.select(); }
    });
  }

  // --- composer: "/" canned responses, "@" mentions ----------------------------------------
  function setupComposer() {
    var form = document.getElementById("composer");
    var text = document.getElementById("id_content");
    var list = document.getElementById("composer-suggestions");
    if (!form || !text || !list) return;
    text.setAttribute("role", "combobox");
    text.setAttribute("aria-autocomplete", "list");
    text.setAttribute("aria-controls", "composer-suggestions");
    text.setAttribute("aria-expanded", "false");
    var items = [], active = -1, mode = null, token = null, timer = null, seq = 0;

    function close() {
      list.hidden = true; list.textContent = ""; items = []; active = -1; mode = null; token = null;
      text.setAttribute("aria-expanded", "false"); text.removeAttribute("aria-activedescendant");
    }
    function highlight(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (li, n) { li.setAttribute("aria-selected", n === i ? "true" : "false"); });
      if (i >= 0 && list.children[i]) {
        text.setAttribute("aria-activedescendant", list.children[i].id);
        list.children[i].scrollIntoView({block: "nearest"});
      }
    }
    function render(results) {
      list.textContent = "";
      items = results;
      if (!results.length) {
        var none = document.createElement("li");
        none.className = "empty"; none.setAttribute("role", "option"); none.setAttribute("aria-disabled", "true");
        none.id = "composer-suggestion-none";
        none.textContent = mode === "canned" ? "No canned response matches" : "No colleague matches";
        list.appendChild(none);
      }
      results.forEach(function (item, n) {
        var li = document.createElement("li");
        li.id = "composer-suggestion-" + n;
        li.setAttribute("role", "option");
        if (mode === "canned") {
          var code = document.createElement("span"); code.className = "shortcut"; code.textContent = "/" + item.shortcut;
          li.appendChild(code);
          li.appendChild(document.createTextNode(" " + item.title));
          var preview = document.createElement("div"); preview.className = "muted"; preview.textContent = item.text.slice(0, 120);
          li.appendChild(preview);
        } else {
          li.textContent = item.name + " (@" + item.handle + ")";
        }
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(n); });
        list.appendChild(li);
      });
      list.hidden = false;
      text.setAttribute("aria-expanded", "true");
      highlight(results.length ? 0 : -1);
    }
    function currentToken() {
      var before = text.value.slice(0, text.selectionStart);
      var m = /(^|\s)\/([\w-]*)$/.exec(before);
      if (m) return {mode: "canned", query: m[2], start: before.length - m[2].length - 1};
      m = /(^|\s)@([\w.+-]*)$/.exec(before);
      if (m) return {mode: "mention", query: m[2], start: before.length - m[2].length - 1};
      return null;
    }
    function lookup() {
      var found = currentToken();
      if (!found) { close(); return; }
      mode = found.mode; token = found;
      var url = (mode === "canned" ? form.dataset.cannedUrl : form.dataset.mentionsUrl) + "?q=" + encodeURIComponent(found.query);
      var mine = ++seq;
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) { if (mine === seq && mode) render(data.results || []); })
        .catch(function () { if (mine === seq) close(); });
    }
    function choose(n) {
      var item = items[n];
      if (!item || !token) return;
      var insert = mode === "canned" ? item.text : "@" + item.handle + " ";
      var end = text.selectionStart;
      text.value = text.value.slice(0, token.start) + insert + text.value.slice(end);
      var caret = token.start + insert.length;
      text.setSelectionRange(caret, caret);
      close();
      text.focus();
      text.dispatchEvent(new Event("input", {bubbles: true}));
    }
    text.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(lookup, 120);
    });
    text.addEventListener("keydown", function (e) {
      if (list.hidden) return;
      if (e.key === "ArrowDown" && items.length) { e.preventDefault(); highlight((active + 1) % items.length); }
      else if (e.key === "ArrowUp" && items.length) { e.preventDefault(); highlight((active - 1 + items.length) % items.length); }
      else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) { e.preventDefault(); choose(active); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
    });
    text.addEventListener("blur", function () { setTimeout(close, 150); });

    // Attachment: the size limit is checked here too, so the agent hears it before uploading.
    var file = document.getElementById("id_attachment");
    var max = Number(form.dataset.maxBytes || 0);
    if (file && max) file.addEventListener("change", function () {
      var f = file.files && file.files[0];
      file.setCustomValidity(f && f.size > max ? "This file is larger than " + Math.round(max / 1048576) + " MB." : "");
      file.reportValidity();
    });
  }

  // --- unread: mark read while the conversation is visible; tab counters on the list --------
  function setupReadMarker() {
    var thread = document.getElementById("thread");
    if (!thread || !thread.dataset.readUrl) return;
    var pending = null;
    function newest() {
      var ids = Array.prototype.map.call(thread.querySelectorAll("[data-message-id]"), function (el) { return Number(el.dataset.messageId); });
      return ids.length ? Math.max.apply(null, ids) : 0;
    }
    var sent = newest();
    function markRead() {
      if (document.visibilityState !== "visible") return;
      var id = newest();
      if (id <= sent) return;
      sent = id;
      var body = new URLSearchParams({message: String(id)});
      fetch(thread.dataset.readUrl, {method: "POST", credentials: "same-origin", body: body,
                                     headers: {"X-CSRFToken": csrfToken()}}).catch(function () { sent = 0; });
    }
    new MutationObserver(function () { clearTimeout(pending); pending = setTimeout(markRead, 300); })
      .observe(thread, {childList: true});
    document.addEventListener("visibilitychange", markRead);
  }
  function setupTabCounters() {
    var nav = document.querySelector("nav.tabs[data-me]");
    if (!nav) return;
    var me = nav.dataset.me, teams = (nav.dataset.teams || "").split(",").filter(Boolean);
    function bump(key) {
      var badge = nav.querySelector('[data-tab-unread="' + key + '"]');
      if (!badge) return;
      var n = Number(badge.textContent || "0") + 1;
      badge.textContent = String(n); badge.hidden = false;
      badge.setAttribute("aria-label", interpolate(ngettext("%s conversation with unread messages", "%s conversations with unread messages", n), [n]));
    }
    // The live code above raises a row's unread badge; a row going from read to unread adds
    // one conversation to the tabs it belongs to.
    Array.prototype.forEach.call(document.querySelectorAll("[data-unread-for]"), function (badge) {
      var was = Number(badge.textContent || "0");
      new MutationObserver(function () {
        var now = Number(badge.textContent || "0");
        if (was === 0 && now > 0) {
          if (badge.dataset.assignee === me) bump("mine");
          if (!badge.dataset.assignee) bump("unassigned");
          if (teams.indexOf(badge.dataset.team) >= 0) bump("teams");
          bump("all");
        }
        was = now;
      }).observe(badge, {childList: true, characterData: true, subtree: true});
    });
  }

  setupSearchShortcut();
  setupComposer();
  setupReadMarker();
  setupTabCounters();
})();
