// Shared pieces: notifications, inline error panels, modal dialogs.

import { ApiError } from "./api.js";
import { h, clear } from "./dom.js";
import { icon } from "./icons.js";

export function messageOf(err) {
  if (err instanceof ApiError) return { text: err.message, code: err.code, status: err.status };
  return {
    text: err?.message ? err.message : String(err),
    code: "client_error",
    status: null,
  };
}

function codeLine(code, status) {
  const parts = [code, status ? `HTTP ${status}` : null].filter(Boolean);
  return parts.length ? h("div", { class: "code" }, parts.join(" · ")) : null;
}

// An inline error panel for a view that could not load; `retry` adds a button.
export function errorPanel(title, err, retry) {
  const m = messageOf(err);
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("span", { html: icon("alert") }),
    h(
      "div",
      { class: "grow" },
      h("strong", {}, title),
      h("div", {}, m.text),
      codeLine(m.code, m.status),
    ),
    retry ? h("button", { type: "button", class: "btn btn-sm", onclick: retry }, "Retry") : null,
  );
}

export function toast(kind, title, detail, { timeout } = {}) {
  const region = document.getElementById("toasts");
  const m =
    detail instanceof Error ? messageOf(detail) : { text: detail || "", code: null, status: null };
  const el = h(
    "div",
    {
      class: `alert toast ${kind === "error" ? "alert-error" : "alert-info"}`,
      role: kind === "error" ? "alert" : "status",
    },
    h("span", { html: icon(kind === "error" ? "alert" : "info") }),
    h(
      "div",
      { class: "grow" },
      h("div", { class: "title" }, title),
      m.text ? h("div", {}, m.text) : null,
      codeLine(m.code, m.status),
    ),
    h("button", {
      type: "button",
      class: "btn-icon btn",
      "aria-label": "Dismiss",
      onclick: () => el.remove(),
      html: icon("close"),
    }),
  );
  region.append(el);
  while (region.children.length > 4) region.firstChild.remove();
  const ms = timeout ?? (kind === "error" ? 12000 : 4000);
  if (ms) setTimeout(() => el.remove(), ms);
  return el;
}

export const showError = (title, err) => toast("error", title, err);

// A modal <dialog>: resolves with the value passed to close(), or null when dismissed.
export function dialog(title, build, { width } = {}) {
  return new Promise((resolve) => {
    let result = null;
    const dlg = h("dialog", { class: "dlg", "aria-label": title });
    if (width) dlg.style.width = width;
    const close = (value) => {
      result = value;
      dlg.close();
    };
    const body = h("div", { class: "dlg-body" });
    const foot = h("div", { class: "dlg-foot" });
    dlg.append(
      h(
        "div",
        { class: "dlg-head" },
        h("h2", {}, title),
        h("button", {
          type: "button",
          class: "btn btn-icon",
          "aria-label": "Close",
          onclick: () => close(null),
          html: icon("close"),
        }),
      ),
      body,
      foot,
    );
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    build({ body, foot, close, dlg });
    dlg.showModal();
    const focus = dlg.querySelector("[autofocus]") || foot.querySelector(".btn-primary");
    if (focus) focus.focus();
  });
}

export function loading(text) {
  return h("div", { class: "empty" }, h("span", { class: "spinner" }), " ", text);
}

export function setMain(...children) {
  const main = clear(document.getElementById("main"));
  main.append(...children);
  return main;
}

// A page of the app: its title, a count line and tools (a filter, a Refresh button when
// `onRefresh` is given) in its head, then its content.
export function page({ title, summary = null, tools = [], onRefresh = null }, ...content) {
  const refresh = onRefresh
    ? h("button", {
        type: "button",
        class: "btn",
        onclick: onRefresh,
        html: `${icon("refresh")}<span>Refresh</span>`,
      })
    : null;
  return setMain(
    h(
      "div",
      { class: "page" },
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, title),
        summary,
        h("span", { class: "spacer" }),
        ...tools,
        refresh,
      ),
      ...content,
    ),
  );
}

// What a list shows when it has nothing to show: a title, then what to do about it.
export function emptyList(title, ...hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), ...hint);
}

// The hint of an empty list that only an operator can fill: "An operator ACTION with" the
// shell commands that do it.
export function operatorHint(action, commands) {
  const named = commands.flatMap((c, i) => [...(i ? [" and "] : []), h("code", {}, c)]);
  return [`An operator ${action} with `, ...named, "."];
}

// What a list shows when it could not be loaded; `retry` adds a button.
export function listError(title, err, retry) {
  return h("div", { class: "list-message" }, errorPanel(title, err, retry));
}

// A table of rows under a head of columns: each a heading, or [heading, attributes].
export function grid(label, columns, rows) {
  const head = columns.map((c) => (Array.isArray(c) ? h("th", c[1], c[0]) : h("th", {}, c)));
  return h(
    "table",
    { class: "grid", "aria-label": label },
    h("thead", {}, h("tr", {}, ...head)),
    h("tbody", {}, rows),
  );
}

// Asks to close a session; resolves true when the user confirms.
export function confirmClose(text) {
  return dialog("Close this session?", ({ body, foot, close }) => {
    body.append(h("p", {}, text));
    foot.append(
      h("button", { type: "button", class: "btn", onclick: () => close(false) }, "Cancel"),
      h(
        "button",
        { type: "button", class: "btn btn-primary", autofocus: true, onclick: () => close(true) },
        "Close session",
      ),
    );
  });
}
