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
