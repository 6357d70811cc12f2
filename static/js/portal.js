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
  // A GET form marked data-drop-empty leaves unset fields out of its request, so the
  // address that htmx pushes holds only the filters in use and stays short to share.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.matches || !elt.matches("form[data-drop-empty]")) return;
    var data = event.detail.formData;
    Array.from(new Set(data.keys())).forEach(function (key) {
      var values = data.getAll(key).filter(function (value) { return value !== ""; });
      data.delete(key);
      values.forEach(function (value) { data.append(key, value); });
    });
  });
  // On a phone the filters start folded, so the sessions come first; wide screens keep
  // them open beside the list.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.matchMedia("(max-width: 900px)").matches) return;
    document.querySelectorAll("details[data-collapse-narrow]").forEach(function (details) {
      details.removeAttribute("open");
    });
  });
  // The session header is replaced as it polls, so it cannot be a live region itself;
  // a change of state is read out through a region that stays on the page.
  document.addEventListener("htmx:afterSwap", function () {
    var announcer = document.getElementById("session-announcer");
    var header = document.querySelector(".session-header[data-state]");
    if (!announcer || !header) return;
    var state = header.getAttribute("data-state");
    if (state && state !== announcer.getAttribute("data-state")) {
      announcer.setAttribute("data-state", state);
      announcer.textContent = "The session is now: " + state + ".";
    }
  });
  // The composer opens or closes as the polled header says whether the session takes
  // messages; only its state changes, so a message being typed is kept.
  document.addEventListener("htmx:afterSwap", function () {
    var header = document.querySelector(".session-header[data-can-message]");
    var form = document.querySelector("form[data-composer]");
    if (!header || !form) return;
    var open = header.getAttribute("data-can-message") === "yes";
    var field = form.querySelector("textarea");
    var send = document.getElementById("composer-send");
    var why = document.getElementById("composer-why");
    if (!field || !send || !why) return;
    field.disabled = !open;
    field.setAttribute("aria-describedby", open ? "composer-help" : "composer-why");
    send.hidden = !open;
    why.hidden = open;
    why.textContent = header.getAttribute("data-message-reason") || "";
  });
  // Mark the results region busy while a filter request runs, for assistive technology.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var results = document.getElementById("session-results");
    if (results && event.detail.target === results) results.setAttribute("aria-busy", "true");
  });
})();
// A plain submit (htmx not handling it) of a form marked data-drop-empty leaves its empty
// fields out of the address too: they are disabled for the moment of the submit. Without
// script the form still works, with every field in the address.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (event.defaultPrevented || !form.matches || !form.matches("form[data-drop-empty]")) return;
  var emptied = [];
  Array.from(form.elements).forEach(function (field) {
    if (!field.name || field.disabled || field.type === "checkbox" || field.type === "radio") return;
    if (field.value === "") {
      field.disabled = true;
      emptied.push(field);
    }
  });
  // Enabled again once the browser has read the form (and for a page restored by Back).
  setTimeout(function () { emptied.forEach(function (field) { field.disabled = false; }); }, 0);
});
// Keyboard use of the sessions list: "/" focuses the search, j and k move the selection,
// Enter opens the selected session. Keys typed into a field are left alone.
(function () {
  "use strict";
  var selectedId = null;
  function typing(target) {
    if (!target.closest) return false;
    if (target.closest("textarea, select, [contenteditable]:not([contenteditable=false])")) return true;
    return target.matches("input") && !/^(checkbox|radio|button|submit|reset)$/.test(target.type);
  }
  function rows() {
    return Array.from(document.querySelectorAll("table[data-keyboard-list] tr.session-row"));
  }
  function link(row) { return row.querySelector(".title-cell a"); }
  function idle() {
    var active = document.activeElement;
    return !active || active === document.body || active.id === "main";
  }
  function select(row) {
    rows().forEach(function (item) { item.classList.toggle("selected", item === row); });
    selectedId = row.id;
    var target = link(row);
    if (target) target.focus();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented || typing(event.target)) return;
    if (event.key === "/") {
      var search = document.getElementById("id_q");
      if (!search) return;
      event.preventDefault();
      search.focus();
      search.select();
      return;
    }
    var list = rows();
    if (!list.length) return;
    var current = list.findIndex(function (row) {
      return row.contains(document.activeElement) || row.id === selectedId;
    });
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      var step = event.key === "j" ? 1 : -1;
      select(list[current < 0 ? 0 : Math.min(list.length - 1, Math.max(0, current + step))]);
    } else if (event.key === "Enter" && current >= 0 && idle()) {
      // The focus left the row for nowhere (a click on the page): Enter still opens it.
      var target = link(list[current]);
      if (target) { event.preventDefault(); target.click(); }
    }
  });
  // A polled row replaced while selected keeps the selection, and the focus it had.
  document.addEventListener("htmx:afterSwap", function () {
    var row = selectedId && document.getElementById(selectedId);
    if (!row || !row.matches("tr.session-row")) return;
    row.classList.add("selected");
    var target = link(row);
    if (target && idle()) {
      target.focus({ preventScroll: true });
    }
  });
})();
