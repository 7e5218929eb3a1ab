// Compare two backups of one disk through the file index: what was added, removed and
// changed (the fields named), with totals.

import { api } from "./api.js";
import { h } from "./dom.js";
import { count } from "./format.js";
import { errorPanel, loading, setMain } from "./ui.js";

const MARKS = { added: "+", removed: "−", changed: "M" };

export function renderCompare(oldId, newId) {
  const body = h(
    "div",
    { class: "scroll compare", dataset: { state: "loading" } },
    loading("Comparing…"),
  );
  const summary = h("span", { class: "count" });

  async function load() {
    body.dataset.state = "loading";
    body.replaceChildren(loading("Comparing…"));
    try {
      const lines = await api.diff(oldId, newId);
      const totals = lines.pop()?.totals ?? { added: 0, removed: 0, changed: 0 };
      summary.textContent = `${count(totals.added)} added · ${count(totals.removed)} removed · ${count(totals.changed)} changed`;
      const rows = lines.map((e) =>
        h(
          "tr",
          { class: "change", dataset: { change: e.change, path: e.path } },
          h("td", { class: `mono change-${e.change}`, title: e.change }, MARKS[e.change] || "?"),
          h("td", { class: "mono ell", title: e.path }, e.path),
          h("td", { class: "muted" }, e.volume),
          h("td", { class: "muted" }, e.fields.join(", ")),
        ),
      );
      body.replaceChildren(
        rows.length
          ? h(
              "table",
              { class: "grid", "aria-label": `Backup #${oldId} compared with #${newId}` },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  h("th", {}, ""),
                  h("th", {}, "Path"),
                  h("th", {}, "Volume"),
                  h("th", {}, "What changed"),
                ),
              ),
              h("tbody", {}, rows),
            )
          : h(
              "div",
              { class: "empty" },
              h("strong", {}, "No difference"),
              "The two backups hold the same entries.",
            ),
      );
      body.dataset.state = "ready";
    } catch (err) {
      body.replaceChildren(
        h(
          "div",
          { class: "list-message" },
          errorPanel("The backups could not be compared", err, load),
        ),
      );
      body.dataset.state = "error";
    }
  }

  setMain(
    h(
      "div",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, `Backup #${oldId} → #${newId}`), summary),
      h("div", { class: "panel panel-fill" }, body),
    ),
  );
  load();
  return () => {};
}
