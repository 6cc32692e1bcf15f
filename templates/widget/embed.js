/* cxplatform web chat loader: <script src=".../widget/embed.js" data-inbox="<uuid>" async></script>
   Optional identity verification: data-user-id and data-user-hash (HMAC-SHA256 of the user id with
   the inbox secret, computed by the host site's server). The chat runs in an iframe so the host
   page's CSS and scripts cannot touch it. */
(function () {
  var script = document.currentScript || document.querySelector("script[data-inbox]");
  if (!script) return;
  var base = new URL(script.src).origin;
  var params = new URLSearchParams();
  if (script.dataset.userId) { params.set("user_id", script.dataset.userId); params.set("user_hash", script.dataset.userHash || ""); }
  params.set("page", location.href.slice(0, 500));
  var frame = document.createElement("iframe");
  frame.src = base + "/widget/frame/" + encodeURIComponent(script.dataset.inbox) + "/?" + params.toString();
  frame.title = "Chat with us";
  frame.setAttribute("allow", "clipboard-write");
  frame.style.cssText = "position:fixed;right:16px;bottom:16px;width:72px;height:72px;max-height:calc(100vh - 32px);max-width:calc(100vw - 32px);border:0;z-index:2147483000;background:transparent;color-scheme:normal";
  window.addEventListener("message", function (e) {
    if (e.origin !== base || e.source !== frame.contentWindow || !e.data || !e.data.cxWidget) return;
    var open = e.data.cxWidget === "open";
    frame.style.width = open ? "370px" : "72px";
    frame.style.height = open ? "560px" : "72px";
  });
  document.body.appendChild(frame);
})();
