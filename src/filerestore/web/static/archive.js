// Before an archive download: what is selected, how many files and bytes it holds, which format.

import { api, ApiError, encoded } from "./api.js";
import { h } from "./dom.js";
import { bytes, count } from "./format.js";
import { displayPath, entryOf, pageOf } from "./model.js";
import { dialog, errorPanel } from "./ui.js";

const WALK_LIMIT = 1000;
const WALK_DEPTH = 256; // the API's deepest recursive listing
const WALK_CAP = 200000; // entries counted through the listing before giving a lower bound

function totalsOf(t) {
  const files = t.files ?? t.file_count ?? 0;
  return {
    files,
    dirs: t.dirs ?? t.directories ?? t.dir_count ?? 0,
    symlinks: t.symlinks ?? t.symlink_count ?? 0,
    bytes: t.bytes ?? t.total_bytes ?? t.size ?? 0,
    complete: t.complete ?? true,
  };
}

// Totals by walking the public recursive listing: used when the server has no totals route.
async function walkTotals(mountId, paths, progress) {
  const t = { files: 0, dirs: 0, symlinks: 0, bytes: 0, complete: true };
  let seen = 0;
  for (const path of paths) {
    const root = entryOf(await api.fileInfo(mountId, path));
    const add = (e) => {
      if (e.kind === "file") { t.files += 1; t.bytes += e.size || 0; }
      else if (e.kind === "dir") t.dirs += 1;
      else if (e.kind === "symlink") t.symlinks += 1;
    };
    add(root);
    if (root.kind !== "dir") continue;
    let cursor;
    do {
      const page = pageOf(await api.files(mountId, { path: encoded(path), recursive: "true", depth: WALK_DEPTH, limit: WALK_LIMIT, cursor }));
      page.entries.forEach(add);
      seen += page.entries.length;
      cursor = page.next;
      progress(t);
      if (seen >= WALK_CAP && cursor) {
        t.complete = false;
        return t;
      }
    } while (cursor);
  }
  return t;
}

async function totalsFor(mountId, paths, progress) {
  try {
    return totalsOf(await api.totals(mountId, paths));
  } catch (err) {
    const noRoute = err instanceof ApiError && (err.status === 405 || (err.status === 404 && /^(not_found|http_404)$/.test(err.code) && /^not found$/i.test(err.message)));
    if (!noRoute) throw err;
  }
  return walkTotals(mountId, paths, progress);
}

export function selectionDialog(mountId, initialPaths, initialFormat) {
  const paths = [...initialPaths];
  const title = paths.length === 1 ? "Download folder" : `Download ${count(paths.length)} items`;
  return dialog(title, ({ body, foot, close }) => {
    const figures = h("div", { class: "totals", "aria-live": "polite" });
    const list = h("ul", { class: "sel-list", "aria-label": "Selected paths" });
    const note = h("div");
    let format = initialFormat;
    const go = h("button", { type: "button", class: "btn btn-primary", autofocus: true, onclick: () => close({ paths, format }) }, "Download");
    const drawFigures = (t, done) => {
      const suffix = t.complete && done ? "" : "+";
      figures.replaceChildren(
        h("div", {}, h("b", { "data-total": "files" }, `${count(t.files)}${suffix}`), h("span", {}, t.files === 1 ? "file" : "files")),
        h("div", {}, h("b", { "data-total": "bytes" }, `${bytes(t.bytes)}${suffix}`), h("span", {}, "total size")),
        h("div", {}, h("b", { "data-total": "dirs" }, `${count(t.dirs)}${suffix}`), h("span", {}, `${t.dirs === 1 ? "folder" : "folders"}${t.symlinks ? ` · ${count(t.symlinks)} link${t.symlinks === 1 ? "" : "s"}` : ""}`)),
      );
    };
    const measure = async () => {
      note.replaceChildren(h("span", { class: "muted" }, h("span", { class: "spinner" }), " Counting files…"));
      drawFigures({ files: 0, dirs: 0, symlinks: 0, bytes: 0, complete: false }, false);
      try {
        const t = await totalsFor(mountId, paths, (partial) => drawFigures(partial, false));
        drawFigures(t, true);
        note.replaceChildren(t.complete ? "" : h("span", { class: "muted" }, "Very large selection: counting stopped, the figures are lower bounds."));
      } catch (err) {
        note.replaceChildren(errorPanel("The size of the selection could not be counted", err, measure));
      }
    };
    for (const p of paths) list.append(h("li", {}, h("span", { class: "p", title: displayPath(p) }, displayPath(p))));
    const radio = (value, label) => h("label", {}, h("input", {
      type: "radio", name: "fmt", value, checked: value === format, onchange: () => { format = value; },
    }), label);
    body.append(
      figures,
      note,
      h("p", { class: "muted", style: "margin-top:10px" }, "Paths in the archive:"),
      list,
      h("div", { class: "format-choice", role: "radiogroup", "aria-label": "Archive format" }, h("strong", {}, "Format"), radio("zip", "ZIP"), radio("tar.gz", "TAR.GZ")),
    );
    foot.append(h("button", { type: "button", class: "btn", onclick: () => close(null) }, "Cancel"), go);
    measure();
  });
}
