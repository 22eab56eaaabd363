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

  // <select data-autosubmit>: a choice submits its form (a <noscript> button
  // does it without JavaScript).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && "autosubmit" in field.dataset && field.form) {
      field.form.requestSubmit();
    }
  });
})();
