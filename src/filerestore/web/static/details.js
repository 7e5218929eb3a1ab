// The details pane: everything the API says about one entry, and what can be done with it.

import { h } from "./dom.js";
import { dateTimeFull, exactBytes, modeOctal, modeString } from "./format.js";
import { entryIcon, icon } from "./icons.js";
import { versionsTable } from "./search.js";
import { errorPanel } from "./ui.js";

let historyShown = null; // {key, box}: the history last opened in the pane (key: session|path)

const KIND_NAMES = { dir: "Folder", file: "File", symlink: "Symbolic link", other: "Special file" };

// The guest's numeric owner (its user and group names mean nothing on this side).
export function ownerOf(e, long = false) {
  if (e.uid === null && e.gid === null) return "—";
  return long ? `uid ${e.uid ?? "—"}, gid ${e.gid ?? "—"}` : `${e.uid ?? "—"}:${e.gid ?? "—"}`;
}

function facts(e) {
  const time = (t) => dateTimeFull(t.date, t.ns);
  return [
    ["Kind", KIND_NAMES[e.kind] || e.kind],
    ["Path", h("span", { class: "mono" }, e.path)],
    e.kind === "symlink" ? ["Target", h("span", { class: "mono" }, e.target ?? "—")] : null,
    e.kind !== "dir" ? ["Size", exactBytes(e.size)] : null,
    [
      "Mode",
      e.mode !== null
        ? h("span", { class: "mono" }, `${modeString(e.mode, e.kind)} (${modeOctal(e.mode)})`)
        : "—",
    ],
    ["Owner", ownerOf(e, true)],
    ["Modified", time(e.mtime)],
    // the times of access and change are shown once file-info (with the content type) is in
    e.partial
      ? [
          "",
          h(
            "span",
            { class: "muted" },
            h("span", { class: "spinner" }),
            " reading the full record…",
          ),
        ]
      : null,
    e.partial ? null : ["Accessed", time(e.atime)],
    e.partial ? null : ["Changed", time(e.ctime)],
    e.btime.date ? ["Created", time(e.btime)] : null,
    e.inode !== null ? ["Inode", String(e.inode)] : null,
    e.nlink !== null ? ["Links", String(e.nlink)] : null,
  ].filter(Boolean);
}

// on: {selected, href(pathQ), download(e), preview(e), archive(e, format), restore(e), toggle(e, on),
//      close(), history(e) (a promise of the index's history, or null), scope (the session's id)}
export function renderDetails(pane, e, on) {
  if (!e) {
    pane.replaceChildren(
      h(
        "div",
        { class: "details-empty" },
        h("div", { html: icon("info") }),
        "Select an entry to see its details.",
      ),
    );
    return;
  }
  const actions = h("div", { class: "actions" });
  const archives = () => [
    h("button", {
      type: "button",
      class: "btn btn-primary",
      onclick: () => on.archive(e, "zip"),
      html: `${icon("download")}<span>ZIP</span>`,
    }),
    h("button", {
      type: "button",
      class: "btn",
      onclick: () => on.archive(e, "tar.gz"),
      html: `${icon("download")}<span>TAR.GZ</span>`,
    }),
  ];
  if (e.kind === "file") {
    actions.append(
      h("button", {
        type: "button",
        class: "btn btn-primary",
        onclick: () => on.download(e),
        html: `${icon("download")}<span>Download</span>`,
      }),
      h("button", { type: "button", class: "btn", onclick: () => on.preview(e) }, "Preview"),
    );
  } else if (e.kind === "dir") {
    actions.append(h("a", { class: "btn", href: on.href(e.pathQ) }, "Open folder"), ...archives());
  } else if (e.kind === "symlink") {
    // the server follows a link given as a download root: offer what its target allows
    // (targetKind comes with the entry's full details; until then, nothing is offered)
    if (e.targetKind === "dangling") {
      actions.append(
        h(
          "div",
          { class: "alert alert-info", "data-link": "dangling" },
          "Dangling link: what it points to does not exist in this backup (or links loop).",
        ),
      );
    } else if (e.targetKind === "file") {
      actions.append(
        h("button", {
          type: "button",
          class: "btn",
          title: "Download the file this link points to",
          onclick: () => on.download(e),
          html: `${icon("download")}<span>Target file</span>`,
        }),
      );
    } else if (e.targetKind === "dir") {
      actions.append(
        h(
          "a",
          { class: "btn", href: on.href(e.pathQ), title: "Open the folder this link points to" },
          "Open as folder",
        ),
        ...archives(),
      );
    }
  }
  actions.append(
    h(
      "button",
      { type: "button", class: "btn", "data-action": "restore-to", onclick: () => on.restore(e) },
      "Restore to…",
    ),
  );
  actions.append(
    h(
      "button",
      { type: "button", class: "btn", onclick: () => on.toggle(e, !on.selected) },
      on.selected ? "Remove from selection" : "Add to selection",
    ),
  );
  // the pane is drawn again when the full record arrives: an opened history stays
  const key = `${on.scope}|${e.pathQ}`;
  const history =
    historyShown && historyShown.key === key
      ? historyShown.box
      : h("div", { class: "history", dataset: { state: "idle" } });
  if (on.history) {
    actions.append(
      h(
        "button",
        {
          type: "button",
          class: "btn",
          onclick: () => {
            historyShown = { key, box: history };
            showHistory(history, e, on.history);
          },
        },
        "History",
      ),
    );
  }
  pane.replaceChildren(
    h(
      "div",
      { class: "details-head" },
      h("span", { class: `kind-${e.kind}`, html: icon(entryIcon(e)) }),
      h("div", { class: "name" }, e.name || "/"),
      h("button", {
        type: "button",
        class: "btn btn-icon close-pane",
        "aria-label": "Close details",
        onclick: on.close,
        html: icon("close"),
      }),
    ),
    h(
      "div",
      { class: "details-body" },
      h(
        "dl",
        {},
        facts(e).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
      actions,
      history,
    ),
  );
}

// Every version of the entry across the backups of its disk (from the file index).
async function showHistory(box, e, load) {
  box.dataset.state = "loading";
  box.replaceChildren(
    h("span", { class: "muted" }, h("span", { class: "spinner" }), " reading the index…"),
  );
  try {
    const hist = await load(e);
    const events = hist.events.map((ev) => h("li", {}, `${ev.event} in backup #${ev.backup.id}`));
    box.replaceChildren(
      h("h3", {}, "History"),
      hist.versions.length
        ? versionsTable(hist, hist.versions)
        : h("p", { class: "muted" }, "In no indexed backup of this disk."),
      h("ul", { class: "events" }, events),
    );
    box.dataset.state = "ready";
  } catch (err) {
    box.replaceChildren(errorPanel("No history", err));
    box.dataset.state = "error";
  }
}
