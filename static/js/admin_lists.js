// Admin pages at laptop and tablet widths (static/css/admin.css).
(function () {
  "use strict";

  // Below 1600 px the navigation sidebar (275 px) would leave a list too
  // little room for its columns: it starts collapsed there, until staff open
  // it with its toggle (Django's nav_sidebar.js, which runs after this file,
  // then remembers that choice).
  var KEY = "django.admin.navSidebarIsOpen";
  try {
    if (window.innerWidth < 1600 && window.localStorage.getItem(KEY) === null) {
      window.localStorage.setItem(KEY, "false");
    }
  } catch (e) {
    // No storage (private mode): the sidebar keeps Django's default.
  }

  // Lists cut long values with an ellipsis; a cut cell gets its full text as
  // a title, so hovering shows it.
  function titleCutCells() {
    document.querySelectorAll("#result_list td, #result_list th").forEach(function (cell) {
      if (cell.scrollWidth > cell.clientWidth && !cell.title) {
        var text = cell.textContent.trim();
        if (text) {
          cell.title = text;
        }
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", titleCutCells);
  } else {
    titleCutCells();
  }
})();
