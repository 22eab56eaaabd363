/* Monetization editor: show (and submit) only the fields the chosen type uses.

   <select data-monetization-type> is the type; every field with
   data-monetization-types="ONE_TIME SUBSCRIPTION" belongs to those types. A field
   the type does not use is hidden together with its label and disabled, so the
   browser does not submit it. Without JavaScript every field shows and the
   server ignores the unused ones (apps_catalog.forms.MonetizationForm.clean). */
(function () {
  "use strict";

  function wrapperOf(field) {
    // The field's label wraps it (templates/apps_catalog/_form_fields.html);
    // a [data-field] container, when a template has one, wins.
    return field.closest("[data-field]") || field.closest("label") || field;
  }

  function sync(select) {
    var form = select.form;
    if (!form) {
      return;
    }
    var chosen = select.value;
    form.querySelectorAll("[data-monetization-types]").forEach(function (field) {
      var used = field.dataset.monetizationTypes.split(" ").indexOf(chosen) !== -1;
      field.disabled = !used;
      wrapperOf(field).hidden = !used;
    });
  }

  function init() {
    document.querySelectorAll("select[data-monetization-type]").forEach(sync);
  }

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && "monetizationType" in field.dataset) {
      sync(field);
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  // Back/forward cache: the browser restores field values, re-apply them.
  window.addEventListener("pageshow", init);
})();
