/* The knowledge base's answers for the patron (docs/patron.md, "Answers while you wait"; issue 17).
 * Loaded by chat.js the first time there is something to look up (a question of four characters or
 * more, or a chat waiting in a queue), so the widget's first load stays within its size budget.
 *
 * Up to three published answers (GET /api/v1/<c>/answers). While typing they are links to the answer's
 * page; while waiting each also has "This answered my question", which ends the chat as self-served
 * (POST /api/v1/chats/<id>/self-served). Answers are shown as text, like messages.
 */
(function () {
  "use strict";
  if (window.VRSuggest) return;

  // ctx: {S: strings, cfg, base: the service's address, root: the chat panel's element,
  //       api(path, opts) -> Promise, served(answer id, button): "This answered my question", el: chat.js's}
  window.VRSuggest = function (ctx) {
    var S = ctx.S, cfg = ctx.cfg, el = ctx.el;
    var css = document.createElement("link"); // its look, with it (not in chat.css: the widget's budget)
    css.rel = "stylesheet";
    css.href = (ctx.base || "") + "/static/routing/patron/suggest.css";
    var home = ctx.root.getRootNode(); // the widget's shadow root, or the ask page's document
    (home.head || home).appendChild(css);
    function find(text, library) {
      var q = "?q=" + encodeURIComponent(text.slice(0, 500)) + "&lang=" + encodeURIComponent(cfg.lang || "en") +
        (library ? "&library=" + encodeURIComponent(library) : "");
      return ctx.api("/api/v1/" + cfg.consortium + "/answers" + q, { auth: false }).then(function (r) {
        return r.ok && r.data ? r.data.results || [] : [];
      }, function () { return []; });
    }
    function draw(list, answers, waiting) {
      list.textContent = "";
      answers.forEach(function (a) {
        var li = el("li", "vr-answer");
        li.lang = a.language;
        li.setAttribute("data-answer", a.id);
        var link = el("a", "", a.question);
        link.href = a.url + "?lang=" + encodeURIComponent(a.language);
        link.target = "_blank";
        link.rel = "noopener";
        link.appendChild(el("span", "vr-sr", " " + (S.new_tab || "")));
        li.appendChild(link);
        if (a.snippet) li.appendChild(el("p", "vr-snippet", a.snippet));
        if (waiting) {
          var b = el("button", "vr-secondary vr-served", S.self_served);
          b.type = "button";
          b.lang = cfg.lang || "en";
          b.addEventListener("click", function () { ctx.served(a.id, b); });
          li.appendChild(b);
        }
        list.appendChild(li);
      });
      return answers.length;
    }
    return { find: find, draw: draw };
  };
})();
