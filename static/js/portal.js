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
