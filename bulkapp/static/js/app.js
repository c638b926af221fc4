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
      var box = document.querySelector("#reply-form textarea, #reply-form select");
      if (box) { evt.preventDefault(); box.focus(); }
    } else if (evt.key === "e") {
      var archive = document.querySelector("#inbox-thread [data-inbox-archive]");
      if (archive) { evt.preventDefault(); archive.click(); }
    }
  });
})();
