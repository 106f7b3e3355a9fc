/* The ask page's library picker: type-ahead by name or city, a listbox driven by the keyboard
 * (docs/patron.md). Loaded by chat.js apart from itself wherever there is a library field, so the widget
 * embedded for one library (which has none) stays within its size budget; what was typed before it
 * loaded is filtered at once.
 */
(function () {
  "use strict";
  if (window.VRPicker) return;

  // ctx: {ui: the panel's elements, S: strings, libs: [{slug, name, city}], say(name, text),
  //       choose(slug): the library picked ("" when the text no longer names one), el, fmt: chat.js's}
  window.VRPicker = function (ctx) {
    var el = ctx.el, fmt = ctx.fmt, ui = ctx.ui, S = ctx.S;
    var input = ui["lib-input"], list = ui["lib-list"], active = -1, matches = [];
    function pick(i) {
      var lib = matches[i];
      if (!lib) return;
      input.value = lib.name;
      ctx.say("lib-hint", fmt(S.lib_chosen, { name: lib.name }));
      closeList();
      ctx.choose(lib.slug);
    }
    function closeList() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function mark(i) {
      var items = list.children;
      for (var k = 0; k < items.length; k++) items[k].setAttribute("aria-selected", k === i ? "true" : "false");
      active = i;
      if (items[i]) {
        input.setAttribute("aria-activedescendant", items[i].id);
        items[i].scrollIntoView && items[i].scrollIntoView({ block: "nearest" });
      }
    }
    function filter() {
      var t = input.value.trim().toLowerCase();
      ctx.choose("");
      list.textContent = "";
      if (!t) { closeList(); ctx.say("lib-hint", ""); return; }
      matches = ctx.libs.filter(function (l) {
        return l.name.toLowerCase().indexOf(t) >= 0 || (l.city || "").toLowerCase().indexOf(t) >= 0;
      }).slice(0, 20);
      matches.forEach(function (l, i) {
        var li = el("li", "", l.name);
        li.id = "vr-lib-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        if (l.city) li.appendChild(el("small", "", l.city));
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      list.hidden = !matches.length;
      input.setAttribute("aria-expanded", matches.length ? "true" : "false");
      ctx.say("lib-hint", matches.length ? fmt(S.lib_count, { count: matches.length }) : S.lib_none);
    }
    input.addEventListener("input", filter);
    input.addEventListener("keydown", function (e) {
      var open = !list.hidden;
      if (e.key === "ArrowDown" && matches.length) { e.preventDefault(); if (!open) filter(); mark(Math.min(active + 1, matches.length - 1)); }
      else if (e.key === "ArrowUp" && open) { e.preventDefault(); mark(Math.max(active - 1, 0)); }
      else if (e.key === "Enter" && open && active >= 0) { e.preventDefault(); pick(active); }
      else if (e.key === "Escape" && open) { e.preventDefault(); closeList(); }
    });
    input.addEventListener("blur", function () { setTimeout(closeList, 150); });
    if (input.value.trim()) filter(); // typed while this was loading
  };
})();
