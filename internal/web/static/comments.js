// Steward's comment thread for an operator's page. Put
//   <div data-steward-comments data-site="SITE" data-thread="/the/page"></div>
//   <script src="https://STEWARD/comments.js" defer></script>
// on the page. It shows the thread's public comments (each with its
// author's display name only) and a form to comment with a name and an
// email address: the comment shows once its author follows the link
// mailed to them. No cookie, no storage, no credentials.
(function () {
  "use strict";
  var script = document.currentScript;
  var api = new URL(script.src).origin;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function render(box, site, thread) {
    fetch(api + "/api/v1/threads/" + encodeURIComponent(site) + "?thread=" + encodeURIComponent(thread), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (body) {
        var list = box.querySelector(".steward-list");
        list.textContent = "";
        if (!body.items.length) list.appendChild(el("p", "No comments yet."));
        body.items.forEach(function (it) {
          var c = el("article", "", "steward-comment");
          if (it.picture) {
            var img = el("img", "", "steward-picture");
            img.src = api + "/api/v1/files/" + encodeURIComponent(it.picture) + "/thumbnail";
            img.alt = "";
            img.width = 32;
            c.appendChild(img);
          }
          c.appendChild(el("p", it.author || "Someone", "steward-author"));
          c.appendChild(el("p", it.body, "steward-body"));
          list.appendChild(c);
        });
      });
  }
  function mount(box) {
    var site = box.getAttribute("data-site"), thread = box.getAttribute("data-thread") || location.pathname;
    box.appendChild(el("div", "", "steward-list"));
    var form = el("form", "", "steward-form");
    [["name", "Your name (shown)", "text"], ["email", "Your email (never shown; we send a link to publish)", "email"]].forEach(function (f) {
      var label = el("label", f[1]);
      var input = el("input");
      input.name = f[0]; input.type = f[2]; input.required = true;
      label.appendChild(input);
      form.appendChild(label);
    });
    var label = el("label", "Your comment");
    var text = el("textarea");
    text.name = "body"; text.required = true;
    label.appendChild(text);
    form.appendChild(label);
    var button = el("button", "Comment");
    button.type = "submit";
    form.appendChild(button);
    var status = el("p", "", "steward-status");
    status.setAttribute("role", "status");
    form.appendChild(status);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = { thread: thread, name: form.elements.name.value, email: form.elements.email.value, body: form.elements.body.value };
      fetch(api + "/api/v1/threads/" + encodeURIComponent(site) + "/comments", {
        method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data)
      }).then(function (r) {
        return r.json().then(function (b) {
          status.textContent = r.ok ? b.message : (b.detail || b.title || "Your comment was not taken.");
          if (r.ok) form.reset();
        });
      }).catch(function () { status.textContent = "Your comment could not be sent."; });
    });
    box.appendChild(form);
    render(box, site, thread);
  }
  document.querySelectorAll("[data-steward-comments]").forEach(mount);
})();
