// confab's pages work without JavaScript (forms post and come back); this file only adds
// live updates: an element with data-live="<url>" is refilled with the HTML each
// server-sent event of that URL carries (the server renders and escapes it).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var src = new EventSource(el.getAttribute("data-live"));
    src.addEventListener("update", function (e) {
      var focused = document.activeElement && document.activeElement.id;
      el.innerHTML = e.data;
      el.setAttribute("data-updated", String(Date.now()));
      if (focused) {
        var again = document.getElementById(focused);
        if (again) again.focus();
      }
    });
    src.addEventListener("end", function () { src.close(); });
  });
});
