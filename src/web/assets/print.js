// The printable card: a print button (no inline handlers under the CSP).
(function () {
  "use strict";
  var b = document.getElementById("print-button");
  if (b) b.addEventListener("click", function () { window.print(); });
})();
