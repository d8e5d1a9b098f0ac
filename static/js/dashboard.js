/* Dashboard helpers: copy-to-clipboard and the re-mask timer of revealed vouchers.
   Loaded with the CSP nonce; wired by data attributes, never inline handlers. */
(function () {
  "use strict";

  function maskNow(el) {
    el.querySelectorAll("[data-secret]").forEach(function (secret) {
      secret.textContent = "••••";
      if (secret.tagName === "A") { secret.removeAttribute("href"); }
    });
  }

  function armRemask(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var found = Array.prototype.slice.call(scope.querySelectorAll("[data-remask-after]"));
    if (scope.matches && scope.matches("[data-remask-after]")) { found.push(scope); }
    found.forEach(function (el) {
      if (el.dataset.remaskArmed) { return; }
      el.dataset.remaskArmed = "1";
      var left = parseInt(el.dataset.remaskAfter, 10);
      if (!(left > 0)) { left = 30; }
      var counter = el.querySelector("[data-remask-countdown]");
      var timer = window.setInterval(function () {
        left -= 1;
        if (counter) { counter.textContent = String(Math.max(left, 0)); }
        if (left > 0) { return; }
        window.clearInterval(timer);
        if (!document.body.contains(el)) { return; }
        // Hide the secret at once, then fetch the masked fragment (which holds none).
        maskNow(el);
        var url = el.dataset.remaskUrl;
        if (window.htmx && url) {
          window.htmx.ajax("GET", url, { target: el, swap: "outerHTML" });
        }
      }, 1000);
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    document.body.removeChild(area);
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) { return; }
    copyText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    }, function () {
      button.textContent = "Copy failed";
    });
  });

  // Copy buttons rendered hidden (pages that work without JavaScript) appear now.
  function showCopyButtons() {
    document.querySelectorAll("[data-copy-target][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { armRemask(document); showCopyButtons(); });
  document.addEventListener("htmx:load", function (event) { armRemask(event.target); });
})();
