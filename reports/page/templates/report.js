/* Sortable result tables (numeric-aware, NA last) and the Methods "copy" button. No network, no libraries. */
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});

  function value(cell, numeric) {
    if (!numeric) {
      return cell.textContent.trim();
    }
    var raw = cell.getAttribute("data-v");
    return raw === null ? NaN : parseFloat(raw);
  }

  function sortBy(th) {
    var row = th.parentNode;
    var tbody = th.closest("table").tBodies[0];
    var index = Array.prototype.indexOf.call(row.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(row.children, function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[index], numeric);
      var y = value(b.cells[index], numeric);
      if (numeric) {
        // a missing value (NA) goes last whichever the direction, so the informative rows stay on top
        if (isNaN(x) || isNaN(y)) {
          return isNaN(x) === isNaN(y) ? 0 : (isNaN(x) ? 1 : -1);
        }
        return ascending ? x - y : y - x;
      }
      return ascending ? collator.compare(x, y) : collator.compare(y, x);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sortBy(th);
      }
    });
  });

  var copy = document.getElementById("copy-methods");
  if (copy) {
    copy.addEventListener("click", function () {
      var text = document.getElementById("methods-text").innerText;
      var done = function () { copy.textContent = "Copied"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { copy.textContent = "Select the text to copy"; });
      } else {
        copy.textContent = "Select the text to copy";
      }
    });
  }
})();
