// The holder's card page. No inline script: the page's CSP allows only
// scripts from this origin. The QR is drawn here from the token text
// (qrcode-generator, alphanumeric mode, level M), so the server renders no image.
(function () {
  "use strict";

  var lang = document.documentElement.lang === "en" ? "en" : "zh";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // 1. Opened with /card#hch_…: take the credential from the fragment (it never
  //    reached the server), drop it from the address bar and history, and post
  //    it once; the server keeps it in an HttpOnly cookie.
  var openForm = document.getElementById("open-form");
  if (openForm) {
    var frag = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    if (/^hch_[A-Za-z0-9_-]{43}$/.test(frag)) {
      history.replaceState(null, "", window.location.pathname);
      document.getElementById("credential").value = frag;
      openForm.submit();
    }
    return;
  }

  var box = document.getElementById("qr");
  if (!box) return;
  var text = document.getElementById("countdown-text");
  var refreshButton = document.getElementById("refresh");

  var SVG = "http://www.w3.org/2000/svg";
  var QUIET = 4;
  var expiresAt = 0;     // server seconds
  var lifetime = 120;    // seconds, from the token
  var skew = 0;          // server clock minus this phone's clock, seconds
  var timer = null;
  var busy = false;

  function draw(token) {
    var qr = qrcode(0, "M");
    qr.addData(token, "Alphanumeric");
    qr.make();
    var n = qr.getModuleCount();
    var side = n + 2 * QUIET;
    var d = [];
    for (var y = 0; y < n; y++) {
      for (var x = 0; x < n; x++) {
        if (!qr.isDark(y, x)) continue;
        var start = x;
        while (x + 1 < n && qr.isDark(y, x + 1)) x++;
        d.push("M" + (start + QUIET) + " " + (y + QUIET) + "h" + (x - start + 1) + "v1h-" + (x - start + 1) + "z");
      }
    }
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + side + " " + side);
    svg.setAttribute("shape-rendering", "crispEdges");
    svg.setAttribute("data-version", String((n - 17) / 4));
    var bg = document.createElementNS(SVG, "rect");
    bg.setAttribute("width", String(side));
    bg.setAttribute("height", String(side));
    bg.setAttribute("fill", "#fff");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("fill", "#000");
    path.setAttribute("d", d.join(""));
    svg.appendChild(bg);
    svg.appendChild(path);
    while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(svg);
  }

  function say(key, seconds) {
    var t = text.getAttribute("data-" + (key ? key + "-" : "") + lang) || "";
    text.textContent = t.replace("{s}", String(seconds));
  }

  function now() {
    return Date.now() / 1000 + skew;
  }

  // Refresh a little before expiry: 15 s early for the usual 120 s lifetime,
  // a quarter of the lifetime for short ones.
  function lead() {
    return Math.min(15, lifetime / 4);
  }

  function tick() {
    var left = Math.max(0, Math.ceil(expiresAt - now() - lead()));
    say("", left);
    if (expiresAt - now() <= lead()) refresh();
  }

  function retryLater() {
    say("offline", 0);
    box.classList.add("stale");
    setTimeout(refresh, 5000);
  }

  function refresh() {
    if (busy) return;
    busy = true;
    var card = box.getAttribute("data-card");
    fetch("/card/token" + (card ? "?card_id=" + encodeURIComponent(card) : ""), {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (res) {
      if (res.status === 401 || res.status === 409 || res.status === 403 || res.status === 404) {
        // Signed out, the card changed state, or a family member's card is
        // no longer on this phone (404): the page says why.
        window.location.reload();
        return null;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (t) {
      busy = false;
      if (!t) return;
      skew = t.now - Date.now() / 1000;
      expiresAt = t.expires_at;
      lifetime = Math.max(10, t.expires_at - t.issued_at);
      draw(t.token);
      box.classList.remove("stale");
      tick();
    }).catch(function () {
      busy = false;
      retryLater();
    });
  }

  refreshButton.addEventListener("click", refresh);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && expiresAt - now() <= lead() + 1) refresh();
  });
  refresh();
  timer = setInterval(tick, 1000);
})();
