/* cxplatform web chat widget (runs inside the platform-served iframe). All text is inserted with
   textContent, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("cx-widget");
  var inbox = root.dataset.inbox;
  var qs = new URLSearchParams(location.search);
  var key = "cx-visitor-" + inbox;
  var token = localStorage.getItem(key);
  if (!token || !/^[A-Za-z0-9_-]{20,64}$/.test(token)) {
    var bytes = new Uint8Array(24); crypto.getRandomValues(bytes);
    token = Array.from(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    localStorage.setItem(key, token);
  }
  var user = qs.get("user_id") ? {id: qs.get("user_id"), hash: qs.get("user_hash") || ""} : null;
  var list = document.getElementById("cx-messages");
  var panel = document.getElementById("cx-panel");
  var toggle = document.getElementById("cx-toggle");
  var unread = document.getElementById("cx-unread");
  var csat = document.getElementById("cx-csat");
  var thanks = document.getElementById("cx-thanks");
  var errorBox = document.getElementById("cx-error");
  var seen = {};
  var unreadCount = 0;

  function post(url, body) {
    return fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error(d.error || r.status); return d; }); });
  }
  function render(m) {
    if (seen[m.id]) return;
    seen[m.id] = true;
    var li = document.createElement("li");
    li.className = "msg " + m.direction;
    li.dataset.id = m.id;
    li.textContent = m.text;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    if (m.direction === "outbound" && panel.hidden && !m.initial) {
      unreadCount += 1; unread.textContent = String(unreadCount); unread.hidden = false;
    }
  }
  function resize() {
    // Ask the loader to shrink the iframe to the bubble when closed, so the host page stays clickable.
    if (window.parent !== window) window.parent.postMessage({cxWidget: panel.hidden ? "closed" : "open"}, "*");
  }
  resize();
  function refresh(initial) {
    var query = "?token=" + encodeURIComponent(token) + (user ? "&user_id=" + encodeURIComponent(user.id) + "&user_hash=" + encodeURIComponent(user.hash) : "");
    return fetch(root.dataset.api + query).then(function (r) { return r.json(); })
      .then(function (data) {
        (data.messages || []).forEach(function (m) { m.initial = initial; render(m); });
        rated = Boolean(data.rating);
        showStatus(data.status);
      });
  }
  var rated = false;
  function showStatus(status) {
    // Resolved and not rated yet: the 1–5 stars; rated: the thank-you line.
    csat.hidden = !(status === "resolved" && !rated);
    thanks.hidden = !rated;
  }
  toggle.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    toggle.setAttribute("aria-label", panel.hidden ? "Open chat" : "Close chat");
    resize();
    if (!panel.hidden) { unreadCount = 0; unread.hidden = true; document.getElementById("cx-text").focus(); }
  });
  document.getElementById("cx-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var box = document.getElementById("cx-text");
    var text = box.value.trim();
    if (!text) return;
    errorBox.textContent = "";
    post(root.dataset.api, {token: token, text: text, user: user, page_url: qs.get("page") || ""})
      .then(function () { box.value = ""; return refresh(false); })
      .catch(function (err) { errorBox.textContent = err.message; });
  });
  document.getElementById("cx-text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("cx-form").requestSubmit(); }
  });
  document.getElementById("cx-contact").addEventListener("submit", function (e) {
    e.preventDefault();
    post(root.dataset.contact, {token: token, email: document.getElementById("cx-email").value,
                                phone: document.getElementById("cx-phone").value})
      .then(function () { document.getElementById("cx-contact-box").open = false; })
      .catch(function (err) { errorBox.textContent = err.message; });
  });
  csat.addEventListener("click", function (e) {
    var star = e.target.closest(".star");
    if (!star) return;
    post(root.dataset.rating, {token: token, rating: Number(star.dataset.rating)})
      .then(function () { return refresh(false); })
      .catch(function (err) { errorBox.textContent = err.message; });
  });

  /* Live: agent replies (webchat.message) and the conversation's status
     (webchat.conversation.status: resolved → rating prompt, reopened → hidden) are pushed to this
     visitor's group. No polling: on every (re)connect the widget re-reads its history once, which
     covers whatever was pushed while the socket was down (messages are de-duplicated by id). */
  var delay = 500;
  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/widget/" + inbox + "/" + token + "/");
    ws.onopen = function () { delay = 500; refresh(false); };
    ws.onmessage = function (e) {
      var data = JSON.parse(e.data);
      if (data.event === "webchat.conversation.status" && data.conversation) showStatus(data.conversation.status);
      else refresh(false);
    };
    ws.onclose = function () { setTimeout(connect, delay); delay = Math.min(delay * 2, 15000); };
  }
  refresh(true).then(connect, connect);
})();
