// Entry point: sign-in, the top bar and a hash router (#/backups, #/repositories, #/sessions,
// #/browse/ID?path=).

import { api, onUnauthorized, token } from "./api.js";
import { renderBackups } from "./backups.js";
import { renderBrowser } from "./browser.js";
import { h } from "./dom.js";
import { renderCompare } from "./compare.js";
import { renderRepositories } from "./repositories.js";
import { renderSearch } from "./search.js";
import { renderSessions } from "./sessions.js";
import { setMain, toast } from "./ui.js";

let current = null; // the active view's cleanup function
let signinNotice = null;

function leaveView() {
  if (current) current();
  current = null;
}

function renderSignin() {
  leaveView();
  document.getElementById("topbar").hidden = true;
  const input = h("input", {
    class: "input",
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint",
    autofocus: true,
  });
  const error = h("div", { id: "signin-error", role: "alert" });
  const button = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  if (signinNotice) {
    error.append(h("div", { class: "alert alert-error" }, signinNotice));
    signinNotice = null;
  }
  const form = h(
    "form",
    {
      class: "panel signin",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const value = input.value.trim();
        error.replaceChildren();
        if (!value) return;
        button.disabled = true;
        button.textContent = "Checking…";
        try {
          await api.check(value);
          token.set(value);
          if (!location.hash || location.hash === "#/" || location.hash === "#/signin")
            location.hash = "#/backups";
          // Streamed downloads need the service worker (see sw.js); without it they are buffered.
          if ("serviceWorker" in navigator && window.isSecureContext) {
            navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
          }
          route();
        } catch (err) {
          const text =
            err.status === 401 || err.status === 403
              ? "This token was not accepted. Check that it was copied whole and has not been revoked."
              : `Could not sign in: ${err.message}`;
          error.replaceChildren(
            h(
              "div",
              { class: "alert alert-error" },
              text,
              err.code
                ? h(
                    "div",
                    { class: "code" },
                    `${err.code}${err.status ? ` · HTTP ${err.status}` : ""}`,
                  )
                : null,
            ),
          );
          input.select();
        } finally {
          button.disabled = false;
          button.textContent = "Sign in";
        }
      },
    },
    h(
      "div",
      { class: "brand" },
      h("span", { html: document.querySelector(".brand svg").outerHTML }),
      "filerestore",
    ),
    h("p", { class: "lead" }, "Restore files and folders from VM disk backups."),
    h(
      "div",
      { class: "field" },
      h("label", { for: "token" }, "API token"),
      input,
      h(
        "div",
        { class: "hint", id: "token-hint" },
        "Created by an administrator with ",
        h("code", {}, "filerestore token create NAME"),
        ". Kept in this browser tab only.",
      ),
    ),
    error,
    button,
  );
  setMain(h("div", { class: "signin-wrap" }, form));
  input.focus();
}

async function refreshResources() {
  const el = document.getElementById("resources");
  const badge = document.getElementById("nav-sessions-count");
  try {
    const r = await api.resources();
    el.textContent = `Sessions ${r.sessionsUsed} / ${r.sessionsLimit}`;
    badge.textContent = String(r.sessionsUsed);
    badge.hidden = !r.sessionsUsed;
  } catch {
    el.textContent = "";
  }
}

function setNav(name) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function rawParam(queryPart, name) {
  const m = new RegExp(`(?:^|&)${name}=([^&]*)`).exec(queryPart || "");
  // "/" never occurs inside a name, so an encoded slash is a separator someone escaped
  return m ? m[1].replace(/%2F/gi, "/") : null;
}

export function route() {
  if (!token.get()) {
    renderSignin();
    return;
  }
  document.getElementById("topbar").hidden = false;
  const hash = location.hash.replace(/^#/, "") || "/backups";
  const [pathPart, queryPart] = hash.split("?");
  // path= stays percent-encoded: it is the API's path_query, raw bytes included.
  const pathQ = rawParam(queryPart, "path");
  const parts = pathPart.split("/").filter(Boolean);
  leaveView();
  refreshResources();
  if (parts[0] === "browse" && parts[1]) {
    setNav("sessions");
    current = renderBrowser(decodeURIComponent(parts[1]), pathQ || "/", {
      onChange: refreshResources,
    });
  } else if (parts[0] === "compare" && parts[1] && parts[2]) {
    setNav("backups");
    current = renderCompare(decodeURIComponent(parts[1]), decodeURIComponent(parts[2]));
  } else if (parts[0] === "search") {
    setNav("search");
    current = renderSearch();
  } else if (parts[0] === "repositories") {
    setNav("repositories");
    current = renderRepositories();
  } else if (parts[0] === "sessions") {
    setNav("sessions");
    current = renderSessions({ onChange: refreshResources });
  } else {
    setNav("backups");
    current = renderBackups();
  }
  const titles = {
    browse: "Browse",
    sessions: "Sessions",
    repositories: "Repositories",
    search: "Search",
    compare: "Compare",
  };
  document.title = `filerestore · ${titles[parts[0]] ?? "Backups"}`;
}

function signOut(notice) {
  token.clear();
  signinNotice = notice || null;
  renderSignin();
}

onUnauthorized(() =>
  signOut("Your token is no longer accepted (it may have been revoked). Sign in again."),
);

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", (ev) => {
  // The browser view updates its own query (path=) without re-rendering everything.
  const from = new URL(ev.oldURL).hash.split("?")[0];
  const to = location.hash.split("?")[0];
  if (from === to && to.startsWith("#/browse/") && current?.navigate) {
    current.navigate(rawParam(location.hash.split("?")[1], "path") || "/");
    return;
  }
  route();
});
window.addEventListener("unhandledrejection", (ev) => {
  toast(
    "error",
    "Something went wrong",
    ev.reason instanceof Error ? ev.reason : String(ev.reason),
  );
});
window.addEventListener("error", (ev) => {
  toast("error", "Something went wrong", ev.message || "script error");
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "")) {
    const filter = document.querySelector("[data-filter]");
    if (filter) {
      ev.preventDefault();
      filter.focus();
      filter.select();
    }
  }
});

route();
