// limnos ui: the few behaviours every page shares. Loaded from a file (the CSP allows no inline script).
"use strict";
(function () {
  // A form that writes asks once before removing a metadata key.
  document.querySelectorAll('form[action="/file/unset"]').forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var key = form.querySelector('input[name="key"]').value;
      if (!window.confirm("Remove the metadata key " + JSON.stringify(key) + "? The change is a new commit.")) {
        event.preventDefault();
      }
    });
  });
})();
