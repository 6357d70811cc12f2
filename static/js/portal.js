// The portal's small script: toasts raised by htmx responses through the `messages` event.
(function () {
  "use strict";
  function showToast(level, text) {
    var area = document.getElementById("toasts");
    if (!area) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (level || "info");
    toast.textContent = text;  // textContent, never innerHTML: messages may quote user input.
    area.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 6000);
  }
  document.addEventListener("messages", function (event) {
    var items = (event.detail && event.detail.value) || [];
    items.forEach(function (item) { showToast(item.level, item.text); });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(function (toast) {
      setTimeout(function () { toast.remove(); }, 6000);
    });
  });
  window.portalToast = showToast;
})();
// Ctrl+Enter (or Cmd+Enter) sends the message composer.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && target.matches && target.matches("[data-submit-on-ctrl-enter]")) {
    event.preventDefault();
    if (target.form && !target.disabled && target.value.trim()) target.form.requestSubmit();
  }
});
// Sessions pages (issue 5).
(function () {
  "use strict";
  // "Select all" ticks every row checkbox of the bulk form that is on the page.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-select-all]")) return;
    var name = box.getAttribute("data-select-all");
    document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (item) {
      item.checked = box.checked;
    });
  });
  // A form marked data-reset-on-success empties itself once htmx has sent it, so the
  // composer is ready for the next message; on failure the typed text stays.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail && event.detail.elt;
    if (form && form.matches && form.matches("form[data-reset-on-success]") && event.detail.successful) {
      form.reset();
      var field = form.querySelector("textarea, input[type=text]");
      if (field) field.focus();
    }
  });
  // Mark the results region busy while a filter request runs, for assistive technology.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var results = document.getElementById("session-results");
    if (results && event.detail.target === results) results.setAttribute("aria-busy", "true");
  });
})();
