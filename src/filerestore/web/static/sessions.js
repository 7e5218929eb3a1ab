// Open sessions (mounts) with their expiry, resource use, and closing one.

import { api } from "./api.js";
import { h } from "./dom.js";
import { bytes, count, dateTime, dateTimeFull, relative } from "./format.js";
import { icon } from "./icons.js";
import {
  confirmClose,
  emptyList,
  errorPanel,
  grid,
  listError,
  loading,
  page,
  showError,
  toast,
} from "./ui.js";

const STATUS_BADGE = {
  mounted: "badge-ok",
  mounting: "badge-warn",
  unmounting: "badge-warn",
  failed: "badge-bad",
};

function card(label, value, ratio) {
  return h(
    "div",
    { class: "panel card" },
    h("div", { class: "k" }, label),
    h("div", { class: "v" }, value),
    ratio !== null && ratio !== undefined
      ? h("div", { class: "meter" }, h("i", { style: `width:${Math.min(100, ratio * 100)}%` }))
      : null,
  );
}

export function renderSessions({ onChange } = {}) {
  let alive = true;
  const cards = h("div", { class: "cards" });
  const body = h("div", { class: "scroll" });
  const summary = h("span", { class: "count" });

  async function loadResources() {
    try {
      const r = await api.resources();
      cards.replaceChildren(
        card(
          "Session slots",
          `${count(r.sessionsUsed)} / ${count(r.sessionsLimit)}`,
          r.sessionsLimit ? r.sessionsUsed / r.sessionsLimit : null,
        ),
        card("Downloads in progress", count(r.downloads)),
        card("Readers open (this worker)", count(r.readers)),
        card("Memory (this worker)", bytes(r.memory)),
      );
    } catch (err) {
      cards.replaceChildren(errorPanel("Resource figures unavailable", err));
    }
  }

  async function close(m) {
    const ok = await confirmClose(
      `Session ${m.id} (backup #${m.backupId}, volume ${m.volume ?? "—"}) will be closed. Downloads still running from it are cut off.`,
    );
    if (!ok) return;
    try {
      await api.unmount(m.id);
      toast("info", "Session closed", `Session ${m.id} is closed.`);
    } catch (err) {
      showError("The session could not be closed", err);
    }
    load();
    if (onChange) onChange();
  }

  async function load() {
    if (!body.firstChild) body.replaceChildren(loading("Loading sessions…"));
    loadResources();
    let mounts;
    let backups = new Map();
    try {
      mounts = await api.mounts();
    } catch (err) {
      if (alive) body.replaceChildren(listError("The sessions could not be listed", err, load));
      return;
    }
    try {
      backups = new Map((await api.backups()).map((b) => [String(b.id), b]));
    } catch {
      /* the table still shows ids */
    }
    if (!alive) return;
    summary.textContent = `${count(mounts.length)} open`;
    if (!mounts.length) {
      body.replaceChildren(
        emptyList(
          "No open sessions",
          "Open a backup from the ",
          h("a", { href: "#/backups" }, "Backups"),
          " page to browse it.",
        ),
      );
      return;
    }
    mounts.sort((a, b) => (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0));
    const now = new Date();
    const rows = mounts.map((m) => {
      const b = backups.get(String(m.backupId));
      return h(
        "tr",
        { dataset: { mountId: String(m.id) } },
        h(
          "td",
          {},
          h(
            "span",
            { class: "group-title" },
            h("span", { html: icon("vm") }),
            b ? `${b.vm} / ${b.disk}` : `Backup #${m.backupId}`,
          ),
          b
            ? h(
                "div",
                { class: "muted", style: "font-size:12px" },
                `${dateTime(b.created)} · #${b.id} · ${b.kind}`,
              )
            : null,
        ),
        h("td", { class: "mono" }, m.volume ?? "—"),
        h("td", {}, m.fs ?? "—"),
        h(
          "td",
          {},
          h(
            "span",
            { class: `badge ${STATUS_BADGE[m.status] || "badge-muted"}`, title: m.error || "" },
            m.status,
          ),
        ),
        h("td", { class: "hide-narrow" }, dateTime(m.created)),
        h("td", { title: dateTimeFull(m.expires) }, relative(m.expires, now)),
        h("td", { class: "hide-narrow c-owner" }, m.owner ?? "—"),
        h(
          "td",
          { class: "num nowrap" },
          m.status === "mounted"
            ? h(
                "a",
                { class: "btn btn-sm", href: `#/browse/${encodeURIComponent(m.id)}?path=/` },
                "Browse",
              )
            : null,
          " ",
          h(
            "button",
            {
              type: "button",
              class: "btn btn-sm btn-danger",
              "aria-label": `Close session ${m.id}`,
              onclick: () => close(m),
            },
            "Close",
          ),
        ),
      );
    });
    const columns = [
      "Backup",
      "Volume",
      "Filesystem",
      "Status",
      ["Opened", { class: "hide-narrow" }],
      "Expires",
      ["Owner", { class: "hide-narrow" }],
      [h("span", { class: "sr-only" }, "Actions"), { class: "num" }],
    ];
    body.replaceChildren(grid("Open sessions", columns, rows));
  }

  page(
    { title: "Sessions", summary, onRefresh: load },
    cards,
    h("div", { class: "panel panel-fill" }, body),
  );
  load();
  const timer = setInterval(load, 30000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
