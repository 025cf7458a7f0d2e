// Passkeys on the second-factor page: runs navigator.credentials.create
// or .get with the options the server gives and posts the answer back.
// Without this script (or without WebAuthn in the browser) the page still
// works with an authenticator app; the passkey buttons stay hidden.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function dec(s) {
    const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    return Uint8Array.from(b, function (c) { return c.charCodeAt(0); });
  }

  function enc(buf) {
    let s = "";
    new Uint8Array(buf).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body) {
    const init = { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(url, init);
    const data = r.status === 204 ? null : await r.json().catch(function () { return null; });
    if (!r.ok) {
      throw new Error((data && (data.detail || data.title)) || "The server answered " + r.status + ".");
    }
    return data;
  }

  function creationOptions(o) {
    const pk = o.publicKey;
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(pk);
    }
    pk.challenge = dec(pk.challenge);
    pk.user.id = dec(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }

  function requestOptions(o) {
    const pk = o.publicKey;
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(pk);
    }
    pk.challenge = dec(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }

  function credentialJSON(c) {
    const r = c.response;
    const out = {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: enc(r.clientDataJSON) }
    };
    if (c.authenticatorAttachment) {
      out.authenticatorAttachment = c.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) {
        out.response.userHandle = enc(r.userHandle);
      }
    }
    return out;
  }

  function next(button) {
    const n = button.dataset.next || "";
    return n.startsWith("/") && !n.startsWith("//") ? n : "/account";
  }

  function showCodes(codes, to) {
    const main = document.querySelector("main") || document.body;
    const h = document.createElement("h1");
    h.textContent = "Second factor added";
    const p = document.createElement("p");
    p.textContent = "Keep these recovery codes somewhere safe. Each one signs you in once if you lose your passkey. They are shown only now.";
    const ul = document.createElement("ul");
    ul.className = "codes";
    codes.forEach(function (c) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = c;
      li.appendChild(code);
      ul.appendChild(li);
    });
    const a = document.createElement("a");
    a.href = to;
    a.textContent = "Continue";
    const pa = document.createElement("p");
    pa.appendChild(a);
    main.replaceChildren(h, p, ul, pa);
  }

  async function register(button) {
    const opts = await post("/api/v1/me/second-factors/passkey/options");
    const cred = await navigator.credentials.create({ publicKey: creationOptions(opts) });
    const done = await post("/api/v1/me/second-factors/passkey", credentialJSON(cred));
    if (done && done.recovery_codes && done.recovery_codes.length) {
      showCodes(done.recovery_codes, next(button));
    } else {
      window.location.assign(next(button));
    }
  }

  async function give(button) {
    const opts = await post("/api/v1/sessions/current/second-factor/passkey/options");
    const cred = await navigator.credentials.get({ publicKey: requestOptions(opts) });
    await post("/api/v1/sessions/current/second-factor/passkey", credentialJSON(cred));
    window.location.assign(next(button));
  }

  document.querySelectorAll("button[data-passkey]").forEach(function (button) {
    const error = document.getElementById(button.getAttribute("aria-describedby") || "");
    button.hidden = false;
    button.addEventListener("click", async function () {
      button.disabled = true;
      if (error) {
        error.hidden = true;
      }
      try {
        await (button.dataset.passkey === "register" ? register(button) : give(button));
      } catch (e) {
        if (error) {
          error.textContent = e && e.name === "NotAllowedError" ? "The passkey was not used." : (e && e.message) || "That did not work.";
          error.hidden = false;
        }
      } finally {
        button.disabled = false;
      }
    });
  });
})();
