// Contacts list: "select every contact on this page" and the count on the bulk-delete button.
(function () {
  function refresh() {
    var list = document.getElementById("contact-list");
    if (!list) return;
    var boxes = list.querySelectorAll('input[name="ids"]');
    var checked = list.querySelectorAll('input[name="ids"]:checked').length;
    var button = list.querySelector("[data-bulk-delete]");
    if (button) {  // the label comes translated from the page (data-bulk-delete)
      var label = button.getAttribute("data-bulk-delete") || "Delete selected";
      button.disabled = checked === 0;
      button.textContent = checked ? label + " (" + checked + ")" : label;
    }
    var all = list.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }
  document.addEventListener("change", function (evt) {
    if (!evt.target.closest || !evt.target.closest("#contact-list")) return;
    if (evt.target.matches("[data-select-all]")) {
      document.querySelectorAll('#contact-list input[name="ids"]').forEach(function (box) {
        box.checked = evt.target.checked;
      });
    }
    refresh();
  });
  document.addEventListener("htmx:afterSettle", refresh);
  document.addEventListener("DOMContentLoaded", refresh);
})();
