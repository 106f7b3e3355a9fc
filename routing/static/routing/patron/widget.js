/* Ask-a-librarian widget loader. Embed:
 *   <script src="https://HOST/widget.js" data-consortium="SLUG" data-library="SLUG" async></script>
 * Shows only a launcher; the panel (chat.js, chat.css and its markup) loads when it is opened, or
 * at once on a later page while a chat is open. Shadow DOM keeps the host page's CSS out. Theme
 * with CSS custom properties on the page (e.g. #vrchat-widget { --vr-accent: #006b54 }).
 * Talks to HOST only; sets no cookie; keeps the chat in this site's sessionStorage. */
(function () {
  "use strict";
  var me = document.currentScript, P = window.performance;
  if (!me || window.__vrchatWidget) return;
  window.__vrchatWidget = 1;
  P && P.mark && P.mark("vrchat:start");
  var base = new URL(me.src, location.href).origin, c = me.getAttribute("data-consortium") || "";
  var lib = me.getAttribute("data-library") || "";
  var lang = me.getAttribute("data-lang") || (/^es\b/i.test(navigator.language || "") ? "es" : "en");
  var label = lang === "es" ? ["Pregunte a un bibliotecario", "Cerrar", "Mensaje nuevo", "Cerrado, abre {when}."]
    : ["Ask a librarian", "Close", "New message", "Closed, opens {when}."];
  var key = "vrchat:" + c, css = base + "/static/routing/patron/", loaded = 0;

  function remembered() { try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; } }
  function remember(open) {
    var st = remembered();
    if (!st) return;
    st.open = open;
    try { sessionStorage.setItem(key, JSON.stringify(st)); } catch (e) { /* blocked */ }
  }

  function mount() {
    var host = document.createElement("div");
    host.id = "vrchat-widget";
    var root = host.attachShadow({ mode: "open" });
    root.innerHTML = "<style>" +
      ":host{all:initial;position:fixed;right:16px;bottom:16px;z-index:2147483000;font:16px/1.4 var(--vr-font,system-ui,sans-serif)}" +
      ".l{display:flex;flex-direction:column;align-items:flex-start;justify-content:center;min-height:48px;padding:4px 18px;border:0;border-radius:24px;cursor:pointer;" +
      "font:600 16px/1 var(--vr-font,system-ui,sans-serif);background:var(--vr-accent,#1d4ed8);color:var(--vr-accent-text,#fff);" +
      "box-shadow:0 2px 10px rgba(0,0,0,.3)}" +
      ".s{font-weight:400;font-size:13px;margin-top:2px}.s:empty{display:none}" +
      ".l:focus-visible,.x:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
      ".p{position:fixed;right:16px;bottom:80px;width:min(400px,calc(100vw - 32px));height:min(640px,calc(100vh - 100px));" +
      "display:flex;flex-direction:column;background:var(--vr-bg,#fff);border-radius:12px;box-shadow:0 6px 30px rgba(0,0,0,.35);overflow:hidden}" +
      ".p[hidden]{display:none}.h{display:flex;justify-content:space-between;align-items:center;padding:8px 8px 8px 16px;" +
      "background:var(--vr-accent,#1d4ed8);color:var(--vr-accent-text,#fff);font-weight:700}" +
      ".x{min-width:44px;min-height:44px;border:0;background:none;color:inherit;font-size:24px;cursor:pointer}" +
      ".b{flex:1;overflow:auto;padding:12px;display:flex;flex-direction:column}.b>.vr{flex:1;min-height:0}" +
      ".b .vr-log{max-height:none;min-height:6rem}" +
      // Inherited properties cross the shadow boundary: reset those a host page is likely to set.
      ".l,.p{letter-spacing:normal;word-spacing:normal;text-transform:none;text-align:left;text-indent:0;" +
      "font-style:normal;white-space:normal;direction:ltr}" +
      ".b .vr-title{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}" +
      "@media (max-width:480px){.p{right:0;bottom:0;width:100vw;height:100%;border-radius:0}}" +
      "</style><button class=l type=button aria-expanded=false aria-controls=p><span class=t></span><span class=s></span></button>" +
      "<section class=p id=p role=region hidden><div class=h><span></span><button class=x type=button>\u00d7</button></div>" +
      "<div class=b></div></section>";
    var btn = root.querySelector(".l"), panel = root.getElementById("p"), x = root.querySelector(".x");
    var title = btn.querySelector(".t"), status = btn.querySelector(".s");
    title.textContent = label[0];
    panel.setAttribute("aria-label", label[0]);
    panel.querySelector("span").textContent = label[0];
    x.setAttribute("aria-label", label[1]);
    document.body.appendChild(host);
    P && P.mark && P.mark("vrchat:launcher");

    function load() {
      loaded = 1;
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = css + "chat.css";
      root.insertBefore(link, root.firstChild);
      function go() {
        window.VRChat.mountWidget(panel.querySelector(".b"), { base: base, consortium: c, library: lib, lang: lang,
          onMessage: function () { if (panel.hidden) title.textContent = label[0] + " \u2022 " + label[2]; } })
          .then(function () { P && P.mark && P.mark("vrchat:panel"); });
      }
      if (window.VRChat) return go();
      var s = document.createElement("script");
      s.src = css + "chat.js";
      s.async = true;
      s.onload = go;
      document.head.appendChild(s);
    }
    function open(focus) {
      panel.hidden = false;
      title.textContent = label[0];
      btn.setAttribute("aria-expanded", "true");
      if (!loaded) load();
      remember(true);
      if (focus) x.focus();
    }
    function close() {
      panel.hidden = true;
      btn.setAttribute("aria-expanded", "false");
      remember(false);
      btn.focus();
    }
    // The honest launcher (docs/patron.md): what a chat started now would meet, polled while the page is
    // open; a closed service says when it opens, in the patron's own time zone and language.
    function availability() {
      fetch(base + "/api/v1/" + encodeURIComponent(c) + "/availability?lang=" + encodeURIComponent(lang) +
        (lib ? "&library=" + encodeURIComponent(lib) : ""), { credentials: "omit" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (a) {
        if (!a) return;
        var text = a.message;
        if (a.state === "closed" && a.opens_at) {
          text = label[3].replace("{when}", new Intl.DateTimeFormat(lang, { weekday: "long", hour: "numeric",
            minute: "2-digit" }).format(new Date(a.opens_at)));
        }
        status.textContent = text;
        btn.setAttribute("data-state", a.state);
      }, function () { /* the launcher works without it */ });
    }
    availability();
    setInterval(function () { if (panel.hidden && !document.hidden) availability(); }, 60000);
    btn.addEventListener("click", function () { panel.hidden ? open(true) : close(); });
    x.addEventListener("click", close);
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape" && !e.defaultPrevented) close(); });
    var st = remembered(), s = st && st.state && st.state.state;
    // A chat going on is carried onto this page: open as it was, or running behind the launcher so
    // the patron keeps their place in the queue (a patron with no connection counts as gone).
    if (st && st.open) open(false);
    else if (st && st.id && !st.qsent && s !== "ended" && s !== "abandoned") load();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
