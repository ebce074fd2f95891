// The kiosk: the scan field keeps focus so a keyboard-wedge scanner can type
// a token and Enter at any moment; a result clears itself after a while so
// the next person does not see it.
(function () {
  "use strict";
  var field = document.getElementById("token");
  if (!field) return;
  var CLEAR_AFTER_MS = 30000;

  function otherInput(el) {
    return el && el !== field && (el.tagName === "INPUT" || el.tagName === "BUTTON" || el.tagName === "SELECT");
  }

  function focusField() {
    if (!otherInput(document.activeElement)) field.focus();
  }

  field.value = "";
  field.focus();
  document.addEventListener("click", function (e) {
    if (!otherInput(e.target)) field.focus();
  });
  field.addEventListener("blur", function () {
    setTimeout(focusField, 50);
  });
  // A scanner types fast; a person typing into the link form should not be
  // disturbed, so only the scan field is re-focused.
  window.addEventListener("focus", focusField);

  var result = document.getElementById("result");
  var form = document.getElementById("scan-form");
  form.addEventListener("submit", function () {
    // Ignore an empty Enter; avoid double submission.
    if (!field.value.trim()) return;
    field.readOnly = true;
  });
  if (result && !result.classList.contains("idle")) {
    var timer = setTimeout(function () {
      window.location.replace("/kiosk");
    }, CLEAR_AFTER_MS);
    document.addEventListener("keydown", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { window.location.replace("/kiosk"); }, CLEAR_AFTER_MS);
    });
  }
})();
