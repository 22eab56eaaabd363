/* Behaviour that pages ask for with data- attributes, in a file because the
   Content-Security-Policy runs no inline script or on*="" handler
   (config/settings/base.py, "Security headers"). Listeners sit on the document,
   so they cover every form on the page, whenever it was added. */
(function () {
  "use strict";

  // <form data-confirm="Delete this post?">: submit only once the person agrees.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement && form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // <form data-theme-switch>: apply the chosen theme at once and remember it
  // with a background POST (the form alone works too: POST, cookie, redirect).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !("themeSwitch" in form.dataset)) {
      return;
    }
    var button = event.submitter;
    if (!button || !window.fetch) {
      return;
    }
    event.preventDefault();
    var choice = button.value;
    var root = document.documentElement;
    var colorScheme = document.querySelector('meta[name="color-scheme"]');
    if (choice === "light" || choice === "dark") {
      root.setAttribute("data-theme", choice);
      if (colorScheme) { colorScheme.content = choice; }
    } else {
      root.removeAttribute("data-theme");
      if (colorScheme) { colorScheme.content = "light dark"; }
    }
    form.querySelectorAll("button[name=theme]").forEach(function (other) {
      other.setAttribute("aria-pressed", other === button ? "true" : "false");
    });
    var data = new FormData(form);
    data.set("theme", choice);
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
  });
})();
