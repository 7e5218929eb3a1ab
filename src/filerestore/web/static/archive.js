// Before an archive download: what is selected, how many files and bytes it holds, which format.

import { api } from "./api.js";
import { h } from "./dom.js";
import { bytes, count } from "./format.js";
import { displayPath } from "./model.js";
import { dialog, errorPanel } from "./ui.js";

const FORMAT_NAMES = { zip: "ZIP", "tar.gz": "TAR.GZ", tar: "TAR" };

// The name each root gets at the top of the archive (restore/archive_members.py: its own
// name, "root" for "/", " (2)" and on for a name met twice).
function memberNames(paths) {
  const taken = new Set();
  return paths.map((p) => {
    const base = displayPath(p).split("/").pop() || "root";
    let name = base;
    for (let n = 2; taken.has(name); n += 1) name = `${base} (${n})`;
    taken.add(name);
    return name;
  });
}

// The format was chosen with the button that opened the dialog: it is shown, not asked again.
export function selectionDialog(mountId, initialPaths, format, kinds = new Map()) {
  const paths = [...initialPaths];
  const title = `Download ${paths.length === 1 ? displayPath(paths[0]).split("/").pop() || "/" : `${count(paths.length)} items`} as ${FORMAT_NAMES[format] || format}`;
  return dialog(title, ({ body, foot, close }) => {
    const figures = h("div", { class: "totals", "aria-live": "polite" });
    const list = h("ul", { class: "sel-list", "aria-label": "Top-level names in the archive" });
    const note = h("div");
    const go = h(
      "button",
      {
        type: "button",
        class: "btn btn-primary",
        autofocus: true,
        onclick: () => close({ paths, format }),
      },
      `Download ${FORMAT_NAMES[format] || format}`,
    );
    const drawFigures = (t, done) => {
      const suffix = t.complete && done ? "" : "+";
      figures.replaceChildren(
        h(
          "div",
          {},
          h("b", { "data-total": "files" }, `${count(t.files)}${suffix}`),
          h("span", {}, t.files === 1 ? "file" : "files"),
        ),
        h(
          "div",
          {},
          h("b", { "data-total": "bytes" }, `${bytes(t.bytes)}${suffix}`),
          h("span", {}, "total size"),
        ),
        h(
          "div",
          {},
          h("b", { "data-total": "dirs" }, `${count(t.dirs)}${suffix}`),
          h(
            "span",
            {},
            `${t.dirs === 1 ? "folder" : "folders"}${t.symlinks ? ` · ${count(t.symlinks)} link${t.symlinks === 1 ? "" : "s"}` : ""}`,
          ),
        ),
      );
    };
    const links = paths.filter((p) => kinds.get(p) === "symlink").length;
    const measure = async () => {
      note.replaceChildren(
        h("span", { class: "muted" }, h("span", { class: "spinner" }), " Counting files…"),
      );
      drawFigures({ files: 0, dirs: 0, symlinks: 0, bytes: 0, complete: false }, false);
      try {
        const t = await api.totals(mountId, paths); // counted by the server
        drawFigures(t, true);
        note.replaceChildren(
          t.complete
            ? ""
            : h(
                "span",
                { class: "muted" },
                "Very large selection: counting stopped, the figures are lower bounds.",
              ),
          links
            ? h(
                "p",
                { class: "muted", "data-note": "links" },
                `What the archive holds: ${links === 1 ? "the selected link is" : `the ${count(links)} selected links are`} stored as what ${links === 1 ? "it points" : "they point"} to (a dangling one as the link itself); links inside folders stay links.`,
              )
            : "",
        );
      } catch (err) {
        note.replaceChildren(
          errorPanel("The size of the selection could not be counted", err, measure),
        );
      }
    };
    memberNames(paths).forEach((name, i) => {
      const dir = kinds.get(paths[i]) === "dir" || displayPath(paths[i]) === "/";
      list.append(
        h(
          "li",
          {},
          h(
            "span",
            { class: "p", title: `from ${displayPath(paths[i])}` },
            `${name}${dir ? "/" : ""}`,
          ),
          h("span", { class: "muted" }, ` from ${displayPath(paths[i])}`),
        ),
      );
    });
    body.append(
      figures,
      note,
      h("p", { class: "muted", style: "margin-top:10px" }, "At the top of the archive:"),
      list,
    );
    foot.append(
      h("button", { type: "button", class: "btn", onclick: () => close(null) }, "Cancel"),
      go,
    );
    measure();
  });
}
