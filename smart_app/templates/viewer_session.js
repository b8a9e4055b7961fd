// The SMART app's companion inside OHIF (/viewer/bridge-session.js, which index.html loads
// right after app-config.js; a file of this origin, as the viewer's Content-Security-Policy
// requires: script-src 'self').
//
// 1. Viewer tokens (issue 20 item 1).  OHIF adds userAuthenticationService
//    .getAuthorizationHeader() to every DICOMweb request; this plain extension (OHIF
//    "preRegistration" and "onModeEnter" hooks) installs a function that returns the
//    current token, and renews the token at half its lifetime from POST /app/viewer-token
//    with the session cookie (same origin; the custom header makes it CSRF-safe).  The
//    token never appears in a URL.  When the session has ended (401) no token is sent any
//    more and the page says so instead of showing black viewports.
// 2. A link back to the imaging history, always visible (issue 20 item 8).
(function () {
  "use strict";
  var TOKEN_URL = "/app/viewer-token";
  var HISTORY_URL = "/app/history";
  var RETRY_MS = 2000;
  var state = { token: null, renewAt: 0, expiresAt: 0, busy: null, ended: false };

  function authorization() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }

  function onBody(fn) {
    if (document.body) { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function styled(tag, css, text) {
    var el = document.createElement(tag);
    el.style.cssText = css;
    if (text) { el.textContent = text; }
    return el;
  }

  function historyLink() {
    var link = styled("a", "position:fixed;left:8px;bottom:8px;z-index:2147483000;" +
      "padding:4px 10px;border-radius:5px;background:#0b3d6e;color:#fff;" +
      "font:600 13px system-ui,sans-serif;text-decoration:none;opacity:.92",
      "\u2190 Imaging history");
    link.href = HISTORY_URL;
    link.setAttribute("data-testid", "back-to-history");
    return link;
  }

  // "session ended" (final) or "cannot renew" (still retrying, hidden again on success)
  function notice(kind) {
    var old = document.getElementById("bridge-session-notice");
    if (old) {
      if (old.getAttribute("data-kind") === kind) { return; }
      old.remove();
    }
    if (!kind) { return; }
    var ended = kind === "ended";
    var box = styled("div", "position:fixed;inset:0;z-index:2147483001;display:flex;" +
      "align-items:center;justify-content:center;background:rgba(0,0,0,.82)");
    box.id = "bridge-session-notice";
    box.setAttribute("data-kind", kind);
    box.setAttribute("data-testid", ended ? "session-ended" : "session-renewal-failing");
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "bridge-session-title");
    var card = styled("div", "max-width:560px;background:#fff;color:#1b1f24;" +
      "border-radius:8px;padding:20px 26px;font:15px/1.45 system-ui,sans-serif");
    var title = styled("h1", "font-size:20px;margin:0 0 10px", ended
      ? "Session ended \u2014 relaunch from the EHR"
      : "The viewer cannot renew its access");
    title.id = "bridge-session-title";
    card.appendChild(title);
    card.appendChild(styled("p", "margin:0 0 12px", ended
      ? "Your session of the imaging app has ended (signed out or expired), so no more " +
        "images can be loaded. Open the app again from the patient's record in the EHR."
      : "The app does not answer; images may not load. Retrying\u2026"));
    var link = styled("a", "color:#0550ae;font-weight:600", "Imaging history");
    link.href = HISTORY_URL;
    card.appendChild(link);
    box.appendChild(card);
    document.body.appendChild(box);
    if (ended) { link.focus(); }
  }

  function end() {
    state.ended = true;
    state.token = null;
    onBody(function () { notice("ended"); });
  }

  function renew() {
    if (state.busy || state.ended) { return state.busy || Promise.resolve(false); }
    state.busy = fetch(TOKEN_URL, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "X-Bridge-Viewer": "renew" }
    }).then(function (resp) {
      if (resp.status === 401) { end(); return false; }
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      return resp.json().then(function (body) {
        var now = Date.now();
        var life = Math.max(1, Number(body.expires_in) || 1) * 1000;
        state.token = String(body.access_token);
        state.expiresAt = now + life;
        state.renewAt = now + life / 2;  // half-life: room for a slow answer and retries
        if (document.body) { notice(null); }
        return true;
      });
    }).catch(function () {
      state.renewAt = Date.now() + RETRY_MS;  // the app is unreachable: again soon
      return false;
    }).then(function (ok) {
      state.busy = null;
      return ok;
    });
    return state.busy;
  }

  function tick() {
    if (state.ended) { return; }
    var now = Date.now();
    if (now >= state.renewAt) { renew(); }
    if (state.expiresAt && now >= state.expiresAt && !state.ended && document.body) {
      notice("failing");
    }
  }

  function install(servicesManager) {
    var services = servicesManager && servicesManager.services;
    var auth = services && services.userAuthenticationService;
    if (auth) { auth.setServiceImplementation({ getAuthorizationHeader: authorization }); }
  }

  var config = window.config || (window.config = {});
  config.extensions = (config.extensions || []).concat([{
    id: "imaging-bridge-viewer-session",
    preRegistration: function (ctx) {
      install(ctx.servicesManager);
      return renew();  // OHIF waits: the first request already has a token
    },
    // after the mode's own set-up (which installs a ?token= URL parameter, if any)
    onModeEnter: function (ctx) { install(ctx.servicesManager); }
  }]);

  // timers are throttled in background tabs: check on return too, not only every second
  window.setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
  window.addEventListener("focus", tick);
  window.addEventListener("online", tick);
  onBody(function () { document.body.appendChild(historyLink()); });
})();
