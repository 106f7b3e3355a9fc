/* Screen and page sharing, the patron's side (docs/patron.md, "Sharing"; docs/protocol.md, issue 19).
 * Loaded by chat.js only when a sharing frame first arrives, so the widget's first load stays small.
 *
 * Always by consent: a librarian's request shows a prompt naming them and their library; nothing
 * starts until the patron says yes (and, to share their screen, picks what in the browser's own
 * picker). Peer to peer over WebRTC: the service carries only the signalling, never the picture, and
 * records nothing but who, when and how long. A share that has not connected after the configured
 * time (12 s) ends on both sides with the suggestion to send a screenshot instead.
 */
(function () {
  "use strict";
  if (window.VRShare) return;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function fmt(s, args) {
    return String(s || "").replace(/\{(\w+)\}/g, function (m, k) { return args[k] != null ? String(args[k]) : m; });
  }
  var n = 0;
  function uid(p) { return "vr-share-" + p + "-" + ++n; }

  // ctx: {send(frame) -> bool, S: strings, log: the chat log element, file: the upload input,
  //       base, get(): the chat's stored state, save()}
  window.VRShare = function (ctx) {
    var S = ctx.S, shares = {}; // share id -> {kind, who, ice, pc, stream, ui, timer, started}
    var area = el("div", "vr-share");
    var cards = el("div", "vr-cards");
    var live = el("p", "vr-sr");
    live.setAttribute("role", "status");
    live.setAttribute("aria-live", "polite");
    area.appendChild(live);
    ctx.log.parentNode.insertBefore(area, ctx.log);
    ctx.log.parentNode.insertBefore(cards, ctx.log);
    var css = el("link");
    css.rel = "stylesheet";
    css.href = ctx.base + "/static/routing/patron/share.css";
    var home = ctx.log.getRootNode();
    (home.head || home).appendChild(css);

    // Moving within a page that changes its address itself (hash links, a catalogue's own history).
    function moved() { Object.keys(shares).forEach(function (k) { if (shares[k].kind === "page" && shares[k].started) sendPage(+k); }); }
    window.addEventListener("hashchange", moved);
    window.addEventListener("popstate", moved);

    function announce(text) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 50); }
    function who(f) {
      var l = f.librarian || {};
      return { name: l.name || S.librarian, library: (l.library && l.library.name) || "" };
    }
    function send(f) { return ctx.send(f); }
    function stored() { var st = ctx.get(); return st && st.pageShare; }
    function remember(v, w) { var st = ctx.get(); if (st) { st.pageShare = v; st.pageWho = w; ctx.save(); } }

    // --- the consent prompt ------------------------------------------------------------------
    function ask(f) {
      if (shares[f.share]) return;
      var w = who(f), sh = shares[f.share] = { kind: f.kind, who: w, ice: f.ice || {} };
      var old = area.querySelector(".vr-share-note");
      if (old) old.remove(); // the end of an earlier share is old news now
      var box = el("div", "vr-share-box vr-consent");
      var text = el("p", "", fmt(S["share_ask_" + f.kind], w));
      text.id = uid("ask");
      box.setAttribute("role", "alertdialog");
      box.setAttribute("aria-label", S.share_title);
      box.setAttribute("aria-describedby", text.id);
      var yes = el("button", "vr-primary", S["share_yes_" + f.kind]), no = el("button", "vr-secondary", S.share_no);
      yes.type = no.type = "button";
      var row = el("div", "vr-share-row");
      row.appendChild(yes);
      row.appendChild(no);
      box.appendChild(text);
      box.appendChild(row);
      sh.ui = box;
      area.appendChild(box);
      yes.focus();
      no.addEventListener("click", function () { refuse(f.share); });
      box.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); refuse(f.share); } });
      yes.addEventListener("click", function () {
        if (f.kind !== "see") return consent(f.share);
        var md = navigator.mediaDevices;
        if (!md || !md.getDisplayMedia || !window.RTCPeerConnection) { refuse(f.share, "unsupported"); return note(S.share_unsupported, true); }
        // The browser's own picker, from this click: the patron chooses what to share, or cancels.
        md.getDisplayMedia({ video: true, audio: false }).then(function (stream) {
          sh.stream = stream;
          stream.getVideoTracks()[0].addEventListener("ended", function () { stop(f.share, "stopped"); });
          consent(f.share);
        }, function () { refuse(f.share); });
      });
    }
    function refuse(id, why) {
      send(why ? { type: "share_consent", share: id, consent: false, reason: why } : { type: "share_consent", share: id, consent: false });
      drop(id);
      if (!why) announce(S.share_declined);
    }
    function consent(id) {
      var sh = shares[id];
      if (!sh || !send({ type: "share_consent", share: id, consent: true })) return note(S.share_failed, true);
      sh.started = true;
      clear(sh);
      if (sh.kind === "page") { remember(id, sh.who); return pageBar(id); }
      if (sh.kind === "see") sharingBar(id);
      else viewer(id);
      connect(id);
    }

    // --- while it lasts ------------------------------------------------------------------------
    function bar(id, text) {
      var sh = shares[id], box = el("div", "vr-share-box vr-sharing");
      box.setAttribute("role", "status");
      box.appendChild(el("p", "", text));
      var b = el("button", "vr-secondary", S.share_stop);
      b.type = "button";
      b.addEventListener("click", function () { stop(id, "stopped"); });
      box.appendChild(b);
      sh.ui = box;
      area.appendChild(box);
      b.focus();
    }
    function sharingBar(id) { bar(id, fmt(S.share_sharing, shares[id].who)); }
    function pageBar(id) {
      bar(id, fmt(S.share_sharing_page, shares[id].who));
      sendPage(id);
    }
    function sendPage(id) {
      send({ type: "share_page", share: id, url: location.href.slice(0, 2000), title: (document.title || "").slice(0, 200) });
    }
    function viewer(id) {
      var sh = shares[id], box = el("figure", "vr-share-box vr-viewer");
      var cap = el("figcaption", "", fmt(S.share_watching, sh.who));
      var video = el("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute("aria-label", cap.textContent);
      var status = el("p", "vr-hint", S.share_connecting);
      var big = el("button", "vr-secondary", S.share_enlarge), x = el("button", "vr-secondary", S.share_close);
      big.type = x.type = "button";
      big.setAttribute("aria-pressed", "false");
      big.addEventListener("click", function () {
        var on = !box.classList.contains("vr-big");
        box.classList.toggle("vr-big", on);
        big.textContent = on ? S.share_shrink : S.share_enlarge;
        big.setAttribute("aria-pressed", on ? "true" : "false");
      });
      box.addEventListener("keydown", function (e) {
        if (e.key === "Escape" && box.classList.contains("vr-big")) { e.preventDefault(); big.click(); }
      });
      x.addEventListener("click", function () { stop(id, "stopped"); });
      var row = el("div", "vr-share-row");
      row.appendChild(big);
      row.appendChild(x);
      box.appendChild(cap);
      box.appendChild(video);
      box.appendChild(status);
      box.appendChild(row);
      sh.ui = box;
      sh.video = video;
      sh.status = status;
      area.appendChild(box);
      big.focus();
    }

    // --- WebRTC: the side with the picture makes the offer ---------------------------------------
    function connect(id) {
      var sh = shares[id], ice = sh.ice, pending = [], flush = null;
      var pc = sh.pc = new RTCPeerConnection({ iceServers: ice.iceServers || [], iceTransportPolicy: ice.iceTransportPolicy || "all" });
      pc.onicecandidate = function (e) {
        if (!e.candidate) return;
        pending.push(e.candidate.toJSON());
        // Batched: a browser gathers a dozen candidates at once, and the socket meters frames.
        flush = flush || setTimeout(function () { flush = null; send({ type: "share_ice", share: id, candidates: pending.splice(0, 50) }); }, 100);
      };
      pc.onconnectionstatechange = function () {
        if (pc.connectionState === "connected") {
          clearTimeout(sh.timer);
          if (sh.status) sh.status.textContent = "";
          announce(sh.kind === "see" ? fmt(S.share_sharing, sh.who) : fmt(S.share_watching, sh.who));
        } else if (pc.connectionState === "failed") fail(id);
      };
      if (sh.kind === "see") {
        sh.stream.getTracks().forEach(function (t) { pc.addTrack(t, sh.stream); });
        pc.createOffer().then(function (o) { return pc.setLocalDescription(o); }).then(function () {
          send({ type: "share_offer", share: id, sdp: pc.localDescription.sdp });
        });
      } else {
        pc.ontrack = function (e) { if (sh.video) sh.video.srcObject = e.streams[0] || new MediaStream([e.track]); };
      }
      sh.timer = setTimeout(function () { if (pc.connectionState !== "connected") fail(id); }, 1000 * (ice.connect_timeout || 12));
    }
    // Candidates that come before the other side's description wait for it (the browser refuses them).
    function described(sh) {
      (sh.early || []).forEach(function (c) { sh.pc.addIceCandidate(c).catch(function () {}); });
      sh.early = null;
    }
    function offer(f) {
      var sh = shares[f.share];
      if (!sh || !sh.pc) return;
      sh.pc.setRemoteDescription({ type: "offer", sdp: f.sdp }).then(function () { described(sh); return sh.pc.createAnswer(); })
        .then(function (a) { return sh.pc.setLocalDescription(a); })
        .then(function () { send({ type: "share_answer", share: f.share, sdp: sh.pc.localDescription.sdp }); })
        .catch(function () { fail(f.share); });
    }
    function answer(f) {
      var sh = shares[f.share];
      if (sh && sh.pc) sh.pc.setRemoteDescription({ type: "answer", sdp: f.sdp }).then(function () { described(sh); }, function () { fail(f.share); });
    }
    function candidates(f) {
      var sh = shares[f.share];
      if (!sh || !sh.pc) return;
      if (!sh.pc.remoteDescription) sh.early = (sh.early || []).concat(f.candidates || []);
      else (f.candidates || []).forEach(function (c) { sh.pc.addIceCandidate(c).catch(function () {}); });
    }

    // --- the end ---------------------------------------------------------------------------------
    function fail(id) {
      if (!shares[id]) return;
      send({ type: "share_end", share: id, reason: "failed" });
      drop(id);
      note(S.share_failed, true);
    }
    function stop(id, reason) {
      var sh = shares[id];
      if (!sh) return;
      send({ type: "share_end", share: id, reason: reason });
      drop(id);
      note(sh.kind === "page" ? S.share_page_ended : S.share_ended);
    }
    function clear(sh) { if (sh.ui) { sh.ui.remove(); sh.ui = null; } }
    function drop(id) {
      var sh = shares[id];
      if (!sh) return;
      delete shares[id];
      clearTimeout(sh.timer);
      if (sh.pc) sh.pc.close();
      if (sh.stream) sh.stream.getTracks().forEach(function (t) { t.stop(); });
      clear(sh);
      live.textContent = ""; // what it announced is over
      if (stored() === id) remember(null);
    }
    // A message in the share area; `shot`: with the button that opens the existing upload.
    function note(text, shot) {
      var box = el("div", "vr-share-box vr-share-note" + (shot ? " vr-share-fail" : ""));
      box.setAttribute("role", "alert");
      box.appendChild(el("p", "", text));
      var row = el("div", "vr-share-row");
      if (shot) {
        var b = el("button", "vr-primary", S.share_screenshot);
        b.type = "button";
        b.addEventListener("click", function () { box.remove(); ctx.file.click(); });
        row.appendChild(b);
      }
      var ok = el("button", "vr-secondary", S.share_close);
      ok.type = "button";
      ok.addEventListener("click", function () { box.remove(); ctx.log.focus(); });
      row.appendChild(ok);
      box.appendChild(row);
      var old = area.querySelector(".vr-share-note");
      if (old) old.remove();
      area.appendChild(box);
    }

    // A page the librarian sends: a card the patron opens with a click (never a pop-up).
    function card(f) {
      var u;
      try { u = new URL(f.url); } catch (e) { return; }
      if (u.protocol !== "https:" && u.protocol !== "http:") return;
      var w = who(f), box = el("div", "vr-card");
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", fmt(S.page_card, w));
      box.appendChild(el("p", "vr-hint", fmt(S.page_card, w)));
      var a = el("a", "", f.title || u.href);
      a.href = u.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.appendChild(el("span", "vr-sr", " (" + S.page_new_tab + ")"));
      box.appendChild(a);
      box.appendChild(el("p", "vr-hint", u.host));
      cards.insertBefore(box, cards.firstChild);
      while (cards.children.length > 3) cards.lastChild.remove();
      announce(fmt(S.page_card, w) + " " + (f.title || u.host));
    }

    function handle(f) {
      switch (f.type) {
        case "share_request": return ask(f);
        case "share_started": // answered in another tab of this chat: that tab has it
          if (shares[f.share] && !shares[f.share].started) drop(f.share);
          return;
        case "share_offer": return offer(f);
        case "share_answer": return answer(f);
        case "share_ice": return candidates(f);
        case "share_ended":
          if (!shares[f.share]) { if (stored() === f.share) remember(null); return; }
          if (f.reason === "failed") return fail(f.share);
          var kind = shares[f.share].kind, started = shares[f.share].started;
          drop(f.share);
          if (started) note(kind === "page" ? S.share_page_ended : S.share_ended);
          return;
        case "page_push": return card(f);
        case "joined": // a new page of the site, or a socket back: the page share goes on from here
          var id = stored();
          if (id) {
            if (!shares[id]) { shares[id] = { kind: "page", who: ctx.get().pageWho || { name: S.librarian }, started: true }; pageBar(id); }
            else sendPage(id);
          }
          return;
        case "closed": // the socket dropped: the server ends the screen shares it carried
          Object.keys(shares).forEach(function (k) { if (shares[k].kind !== "page") { drop(+k); note(S.share_ended); } });
          return;
      }
    }
    return { handle: handle };
  };
})();
