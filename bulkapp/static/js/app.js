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
