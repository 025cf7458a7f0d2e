// Buttons of the demo page. Kept out of the HTML so the page works under
// Steward's Content-Security-Policy, which allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  var q = new URLSearchParams(location.search).get("q");
  if (q) {
    document.getElementById("results").textContent = "No results for \u201c" + q + "\u201d: this is only a demo.";
  }
  document.getElementById("event").addEventListener("click", function () {
    if (window.steward) window.steward.event("demo-button", { color: "blue" });
  });
  document.getElementById("spa").addEventListener("click", function () {
    history.pushState({}, "", "next-section");
  });
});
