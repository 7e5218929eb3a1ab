// Before an archive download: what is selected, how many files and bytes it holds, which format.

import { api } from "./api.js";
import { h } from "./dom.js";
import { bytes, count } from "./format.js";
import { displayPath } from "./model.js";
import { dialog, errorPanel } from "./ui.js";

export function selectionDialog(mountId, initialPaths, initialFormat) {
  const paths = [...initialPaths];
  const title = paths.length === 1 ? "Download folder" : `Download ${count(paths.length)} items`;
  return dialog(title, ({ body, foot, close }) => {
    const figures = h("div", { class: "totals", "aria-live": "polite" });
    const list = h("ul", { class: "sel-list", "aria-label": "Selected paths" });
    const note = h("div");
    let format = initialFormat;
    const go = h(
      "button",
      {
        type: "button",
        class: "btn btn-primary",
        autofocus: true,
        onclick: () => close({ paths, format }),
      },
      "Download",
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
        );
      } catch (err) {
        note.replaceChildren(
          errorPanel("The size of the selection could not be counted", err, measure),
        );
      }
    };
    for (const p of paths)
      list.append(h("li", {}, h("span", { class: "p", title: displayPath(p) }, displayPath(p))));
    const radio = (value, label) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name: "fmt",
          value,
          checked: value === format,
          onchange: () => {
            format = value;
          },
        }),
        label,
      );
    body.append(
      figures,
      note,
      h("p", { class: "muted", style: "margin-top:10px" }, "Paths in the archive:"),
      list,
      h(
        "div",
        { class: "format-choice", role: "radiogroup", "aria-label": "Archive format" },
        h("strong", {}, "Format"),
        radio("zip", "ZIP"),
        radio("tar.gz", "TAR.GZ"),
      ),
    );
    foot.append(
      h("button", { type: "button", class: "btn", onclick: () => close(null) }, "Cancel"),
      go,
    );
    measure();
  });
}
