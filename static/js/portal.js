// The portal's small script: toasts raised by htmx responses through the `messages` event.
// Errors stay until dismissed; the others go after a few seconds. Each has a close button.
(function () {
  "use strict";
  var TOAST_SECONDS = 6;
  function fade(toast) {
    if (toast.classList.contains("toast-error")) return;
    setTimeout(function () { toast.remove(); }, TOAST_SECONDS * 1000);
  }
  function closeButton() {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "toast-close";
    button.setAttribute("data-dismiss-toast", "");
    button.setAttribute("aria-label", "Dismiss");
    button.textContent = "\u00d7";
    return button;
  }
  function showToast(level, text) {
    var area = document.getElementById("toasts");
    if (!area) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (level || "info");
    var body = document.createElement("span");
    body.className = "toast-text";
    body.textContent = text;  // textContent, never innerHTML: messages may quote user input.
    toast.appendChild(body);
    toast.appendChild(closeButton());
    area.appendChild(toast);
    fade(toast);
  }
  document.addEventListener("messages", function (event) {
    var items = (event.detail && event.detail.value) || [];
    items.forEach(function (item) { showToast(item.level, item.text); });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss-toast]");
    if (button && button.parentElement) button.parentElement.remove();
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(fade);
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
  // The list page's one poll sends every live row with the digest it shows; a row that
  // can no longer change comes back without `data-live` and so drops out of the set.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.matches || !elt.matches("[data-live-rows]")) return;
    var rows = Array.from(document.querySelectorAll("tr.session-row[data-live]")).slice(0, 100);
    event.detail.parameters.rows = rows.map(function (row) {
      return row.id.replace("session-", "") + ":" + row.getAttribute("data-live");
    }).join(",");
  });
  // A row swapped by that poll keeps its checkbox ticked: the box is hx-preserve, and the
  // ticks are put back after the swap should the box have been rendered anew.
  var checked = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.elt.matches || !event.detail.elt.matches("[data-live-rows]")) return;
    checked = new Set(Array.from(document.querySelectorAll('input[name="ids"]:checked')).map(function (box) { return box.id; }));
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!checked || !event.detail.elt.matches || !event.detail.elt.matches("[data-live-rows]")) return;
    checked.forEach(function (id) {
      var box = document.getElementById(id);
      if (box) box.checked = true;
    });
    checked = null;
  });
  // Mark the results region busy while a filter request runs, for assistive technology.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var results = document.getElementById("session-results");
    if (results && event.detail.target === results) results.setAttribute("aria-busy", "true");
  });
})();
// Live updates (issue 11): pollers (elements with an `every` trigger) that fail back off,
// and the page says so; it also says when nothing polls any more. A poller answered 404 or
// 403 stops: what it follows is gone or no longer the person's, so asking again cannot
// help. The state lives in [data-live-status] (a short note) and [data-live-alert] (a
// notice shown while failing or once stopped).
(function () {
  "use strict";
  var BASE_MS = 3000;
  var MAX_MS = 60000;
  var failures = 0;
  var retryAt = 0;
  var since = null;
  var ticker = null;
  function isPoller(elt) {
    var trigger = elt && elt.getAttribute && elt.getAttribute("hx-trigger");
    return !!trigger && trigger.indexOf("every") !== -1;
  }
  function setNotes(state, text) {
    document.querySelectorAll("[data-live-status]").forEach(function (note) {
      note.textContent = text;
      note.setAttribute("data-live", state);
    });
  }
  function setAlert(text) {
    document.querySelectorAll("[data-live-alert]").forEach(function (alert) {
      alert.textContent = text;
      alert.hidden = !text;
    });
  }
  function describeFailure() {
    var seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    var when = since ? " since " + since.toLocaleTimeString() : "";
    setAlert("Live updates paused: the portal does not answer" + when +
      ". What this page shows may be out of date. " +
      (seconds > 0 ? "Retrying in " + seconds + " s." : "Retrying now."));
  }
  function failed() {
    var now = Date.now();
    // Several pollers fail in the same round; count the round once.
    if (now < retryAt) return;
    failures += 1;
    if (!since) since = new Date();
    retryAt = now + Math.min(BASE_MS * Math.pow(2, failures), MAX_MS);
    setNotes("paused", "Updates paused");
    describeFailure();
    if (!ticker) ticker = setInterval(describeFailure, 1000);
  }
  function recovered() {
    failures = 0;
    retryAt = 0;
    since = null;
    if (ticker) { clearInterval(ticker); ticker = null; }
    setAlert("");
  }
  function isGone(xhr) {
    return !!xhr && (xhr.status === 404 || xhr.status === 403);
  }
  function gone(elt) {
    // Its timer still ticks, but beforeRequest cancels every request it would send.
    elt.setAttribute("data-live-gone", "");
    recovered();
    setNotes("stopped", "Updates stopped");
    setAlert("Live updates stopped: this is no longer here for you (it was deleted, or " +
      "your access to it changed). Reload the page to see where things stand.");
  }
  function stoppedIfIdle() {
    if (failures || !document.querySelector("[data-live-status]")) return;
    if (document.querySelector("[hx-trigger*='every']:not([data-live-gone])")) {
      setNotes("live", "Updates live");
    } else {
      setNotes("stopped", "No more updates: nothing here can change any more.");
    }
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!isPoller(elt)) return;
    if (elt.hasAttribute("data-live-gone") || Date.now() < retryAt) event.preventDefault();
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (isPoller(event.detail.elt)) failed();
  });
  // A 404 or 403 never reaches here: beforeSwap below handles it and clears isError.
  document.addEventListener("htmx:responseError", function (event) {
    if (isPoller(event.detail.elt)) failed();
  });
  // beforeSwap, not afterRequest: a poller replaces itself, and events on the detached
  // element no longer reach the document. Every answer passes here, 204 included.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isPoller(event.detail.elt)) return;
    if (event.detail.isError) {
      if (isGone(event.detail.xhr)) {
        gone(event.detail.elt);
        // Handled here and said on the page: not an error for htmx to log.
        event.detail.isError = false;
      } else {
        failed();
      }
      return;
    }
    recovered();
    // After a 286 (the server's "stop polling") or a swap without a poller in it.
    setTimeout(stoppedIfIdle, 100);
  });
})();

// The notification bell (issue 14): polls the unread count, and shows browser notifications
// for new ones to people who turned them on.
(function () {
  "use strict";
  var POLL_MS = 4000;
  var STORE = "portal.browserNotifications";
  var seen = {};
  var first = true;
  function wantsPopups() {
    return window.Notification && Notification.permission === "granted" && localStorage.getItem(STORE) === "on";
  }
  function show(count) {
    var badge = document.getElementById("notification-count");
    if (!badge) return;
    badge.textContent = String(count);
    badge.hidden = count === 0;
    badge.setAttribute("data-count", String(count));
    var bell = document.getElementById("notification-bell");
    if (bell) bell.setAttribute("aria-label", count ? "Notifications, " + count + " unread" : "Notifications");
  }
  function poll() {
    var bell = document.getElementById("notification-bell");
    if (!bell) return;
    fetch(bell.getAttribute("data-count-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        show(data.unread);
        (data.latest || []).forEach(function (item) {
          if (!first && !seen[item.id] && wantsPopups()) {
            var popup = new Notification(item.title, { body: item.body, tag: "portal-" + item.id });
            popup.onclick = function () { window.focus(); if (item.url) window.location.href = item.url; };
          }
          seen[item.id] = true;
        });
        first = false;
      })
      .catch(function () { /* The next poll tries again. */ });
  }
  function toggleLabel(button) {
    button.textContent = wantsPopups() ? "Turn off browser notifications" : "Turn on browser notifications";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-browser-notifications]");
    if (!button || !window.Notification) return;
    if (wantsPopups()) {
      localStorage.setItem(STORE, "off");
      toggleLabel(button);
      return;
    }
    Notification.requestPermission().then(function (permission) {
      localStorage.setItem(STORE, permission === "granted" ? "on" : "off");
      toggleLabel(button);
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-browser-notifications]").forEach(toggleLabel);
    if (!document.getElementById("notification-bell")) return;
    poll();
    setInterval(poll, POLL_MS);
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
