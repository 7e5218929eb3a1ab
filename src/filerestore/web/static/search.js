// Search every indexed backup: results grouped by file, each version with the backups that
// hold it and a button that opens that backup at the file's folder.

import { api } from "./api.js";
import { h } from "./dom.js";
import { bytes, dateTime } from "./format.js";
import { icon } from "./icons.js";
import { openBackup } from "./open.js";
import { errorPanel, loading, setMain } from "./ui.js";

const PAGE = 50;

// The folder holding a path, as the API's path_query (raw bytes percent-encoded).
function folderOf(pathQ) {
  const at = pathQ.lastIndexOf("/");
  return at <= 0 ? "/" : pathQ.slice(0, at);
}

// A table of versions of one path (a search hit's, or a history's), newest last.
export function versionsTable(place, versions) {
  return h(
    "table",
    { class: "grid", "aria-label": `Versions of ${place.path}` },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Version"),
        h("th", { class: "num" }, "Size"),
        h("th", {}, "Modified"),
        h("th", {}, "In backups"),
      ),
    ),
    h(
      "tbody",
      {},
      versions.map((v, i) => versionRow(place, v, i + 1)),
    ),
  );
}

function versionRow(hit, v, n) {
  const size = v.kind === "file" ? bytes(v.size) : v.kind;
  const held = v.backups.map((b) =>
    h(
      "li",
      { class: "held", dataset: { backupId: String(b.id) } },
      h("span", { class: "nowrap" }, dateTime(b.created)),
      " ",
      h("span", { class: "muted mono" }, `#${b.id}`),
      " ",
      h(
        "button",
        {
          type: "button",
          class: "btn btn-sm btn-primary",
          "aria-label": `Restore ${hit.path} from backup ${b.id}`,
          onclick: () => openBackup(b, { volume: hit.volume, pathQ: folderOf(hit.pathQ) }),
        },
        "Restore",
      ),
    ),
  );
  return h(
    "tr",
    { class: "version", dataset: { version: String(n) } },
    h("td", { class: "muted" }, `v${n}`),
    h("td", { class: "num" }, size),
    h("td", { class: "nowrap" }, dateTime(v.mtime.date)),
    h("td", {}, h("ul", { class: "held-list" }, held)),
  );
}

function hitBlock(hit) {
  const where = `${hit.vm || "(no VM name)"} · ${hit.disk || "(no disk name)"} · ${hit.volume}`;
  return h(
    "section",
    { class: "hit", dataset: { path: hit.path } },
    h("h2", { class: "hit-path mono" }, hit.path, " ", h("span", { class: "muted" }, where)),
    versionsTable(hit, hit.versions),
  );
}

export function renderSearch() {
  let cursor = null;
  let asked = "";
  const results = h("div", { class: "scroll search-results", dataset: { state: "idle" } });
  const input = h("input", {
    class: "input",
    type: "search",
    name: "q",
    placeholder: "File name, part of it, or a glob (*.xlsx)…",
    "aria-label": "Search every backup",
    "data-filter": true,
  });
  const more = h(
    "button",
    { type: "button", class: "btn", hidden: true, onclick: () => run(false) },
    "More results",
  );

  async function run(fresh) {
    if (fresh) {
      asked = input.value.trim();
      cursor = null;
      results.replaceChildren();
    }
    if (!asked) return;
    const glob = /[*?[]/.test(asked);
    results.dataset.state = "loading";
    const spinner = loading("Searching…");
    results.append(spinner);
    more.hidden = true;
    try {
      const page = await api.search({ [glob ? "glob" : "name"]: asked, limit: PAGE, cursor });
      spinner.remove();
      for (const hit of page.hits) results.append(hitBlock(hit));
      cursor = page.next;
      more.hidden = !cursor;
      if (!results.querySelector(".hit")) {
        results.append(
          h(
            "div",
            { class: "empty" },
            h("strong", {}, "Nothing found"),
            `No indexed backup holds a name matching “${asked}”. Backups not indexed yet are not searched.`,
          ),
        );
      }
      results.dataset.state = "ready";
    } catch (err) {
      spinner.remove();
      results.append(
        h(
          "div",
          { class: "list-message" },
          errorPanel("The search failed", err, () => run(true)),
        ),
      );
      results.dataset.state = "error";
    }
  }

  const form = h(
    "form",
    {
      class: "search-form",
      onsubmit: (ev) => {
        ev.preventDefault();
        run(true);
      },
    },
    h("label", { class: "search" }, h("span", { html: icon("search") }), input),
    h("button", { type: "submit", class: "btn btn-primary" }, "Search"),
  );
  setMain(
    h(
      "div",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, "Search"), h("span", { class: "spacer" }), form),
      h("div", { class: "panel panel-fill" }, results, more),
    ),
  );
  input.focus();
  return () => {};
}
