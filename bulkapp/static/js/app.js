// Small glue for htmx: error toast for server errors. CSRF rides on hx-headers of <body>.
(function () {
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(function () { el.hidden = true; }, 6000);
  }
  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    if (status >= 500) toast("Something went wrong on our side. Nothing was lost; try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("No connection. Check your network and try again.");
  });
  document.addEventListener("showToast", function (evt) { toast(evt.detail.value || evt.detail.message || ""); });
})();

// ---- Settings > Channels: copy buttons. <button data-copy-target="input-id"> copies that input's value. ----
(function () {
  function copied(button) {
    var label = button.textContent;
    button.textContent = "Copied";
    button.classList.add("copied");
    setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { copied(button); }, function () {
        input.select();
      });
    } else {
      input.select();
      if (document.execCommand("copy")) copied(button);
    }
  });
})();

// ---- Inbox: keyboard shortcuts (j/k next/previous conversation, r reply, e archive) and the active row. ----
(function () {
  var chosen = null; // the conversation last opened from the list (its thread may still be loading)
  function items() { return Array.prototype.slice.call(document.querySelectorAll("#inbox-list [data-inbox-item]")); }
  function typing(el) { return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)); }
  function currentId() {
    if (chosen) return chosen;
    var thread = document.querySelector("#inbox-thread[data-conversation]");
    return thread ? thread.getAttribute("data-conversation") : null;
  }
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest("[data-inbox-item]");
    if (!link) return;
    chosen = link.getAttribute("data-inbox-item");
    items().forEach(function (a) { a.parentElement.classList.toggle("active", a === link); });
  });
  document.addEventListener("keydown", function (evt) {
    var form = evt.target.closest && evt.target.closest("#reply-form");
    if ((evt.ctrlKey || evt.metaKey) && evt.key === "Enter" && form) {
      evt.preventDefault();
      form.requestSubmit();
      return;
    }
    if (!document.getElementById("inbox-list") || evt.ctrlKey || evt.metaKey || evt.altKey) return;
    if (typing(evt.target)) {
      if (evt.key === "Escape") evt.target.blur();
      return;
    }
    var list = items();
    var id = currentId();
    var current = list.findIndex(function (a) { return a.getAttribute("data-inbox-item") === id; });
    if (evt.key === "j" || evt.key === "k") {
      var next = current === -1 ? 0 : (evt.key === "j" ? current + 1 : current - 1);
      if (next >= 0 && next < list.length) {
        evt.preventDefault();
        list[next].click();
        list[next].focus();
      }
    } else if (evt.key === "r") {
      // The reply text, not the template picker above it; a template-only (WhatsApp) reply has just the picker.
      var box = document.querySelector("#reply-form textarea") || document.querySelector("#reply-form select");
      if (box) { evt.preventDefault(); box.focus(); }
    } else if (evt.key === "e") {
      var archive = document.querySelector("#inbox-thread [data-inbox-archive]");
      if (archive) { evt.preventDefault(); archive.click(); }
    }
  });
})();

// ---- Top bar on a phone: the Menu button shows and hides the navigation (a disclosure with aria-expanded). ----
(function () {
  function toggle() { return document.querySelector(".nav-toggle[aria-controls]"); }
  function setOpen(button, open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    var menu = document.getElementById(button.getAttribute("aria-controls"));
    if (menu) menu.classList.toggle("open", open);
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest(".nav-toggle[aria-controls]");
    if (button) setOpen(button, button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (evt) {
    var button = toggle();
    if (evt.key !== "Escape" || !button || button.getAttribute("aria-expanded") !== "true") return;
    if (!evt.target.closest || !evt.target.closest("#site-menu, .nav-toggle")) return;
    setOpen(button, false);
    button.focus();
  });
})();

// ---- Inline row editing (contacts): Enter saves, Escape cancels, and focus comes back to the row. ----
(function () {
  var rowId = null; // the row whose edit/save/cancel request is in flight
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-inline-open], [data-inline-save], [data-inline-cancel]");
    var row = button && button.closest("tr[id]");
    if (row) rowId = row.id;
  });
  document.addEventListener("keydown", function (evt) {
    var row = evt.target.closest && evt.target.closest("tr[data-inline-edit]");
    if (!row || !/^(INPUT|SELECT)$/.test(evt.target.tagName)) return;
    var button = evt.key === "Enter" ? row.querySelector("[data-inline-save]")
      : evt.key === "Escape" ? row.querySelector("[data-inline-cancel]") : null;
    if (button) { evt.preventDefault(); evt.stopPropagation(); button.click(); }
  }, true);
  document.addEventListener("htmx:afterSettle", function (evt) {
    var row = evt.target;
    if (!rowId || !row.matches || row.id !== rowId) return;
    rowId = null;
    var target = row.matches("[data-inline-edit]")
      ? row.querySelector(".has-error input, .has-error select") || row.querySelector("input, select")
      : row.querySelector("[data-inline-open]");
    if (target) target.focus();
  });
})();

// ---- Campaign composer: choosing a template copies its text into the message box, to edit there. ----
// Runs in the capture phase, before htmx's change handler re-prices the form, so the quote sees the new text.
(function () {
  document.addEventListener("change", function (evt) {
    var select = evt.target;
    if (!select.matches || !select.matches("select[data-template-texts]")) return;
    var data = document.getElementById(select.getAttribute("data-template-texts"));
    var box = document.getElementById(select.getAttribute("data-fills"));
    var previous = select.getAttribute("data-chosen") || "";
    if (!data || !box || !select.value) { select.setAttribute("data-chosen", select.value); return; }
    var text = JSON.parse(data.textContent)[select.value];
    if (text === undefined) return;
    var typed = box.value.trim() && box.value !== box.getAttribute("data-filled");
    if (typed && box.value !== text && !window.confirm(select.getAttribute("data-confirm-replace"))) {
      select.value = previous; // keep what was written, and the template it went with
      return;
    }
    box.value = text;
    box.setAttribute("data-filled", text);
    select.setAttribute("data-chosen", select.value);
  }, true);
})();
