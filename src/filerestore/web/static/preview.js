// A bounded, sandboxed preview of one file (double-click, Enter, or "Preview" in details).
//
// Bounded: text is the first 64 KiB (one Range request), an image is shown only up to 8 MiB;
// larger or other files are offered for download instead. Sandboxed: text goes into a <pre>
// as text (never markup), an image into an <img> from a blob: URL of the bytes read (raster
// formats only: SVG, which can hold scripts and links, is not previewed). Nothing of the
// guest's file is ever run or parsed as HTML by the page.

import { api, encoded, request } from "./api.js";
import { h } from "./dom.js";
import { bytes } from "./format.js";
import { dialog, errorPanel } from "./ui.js";

export const TEXT_BYTES = 64 * 1024;
export const IMAGE_BYTES = 8 * 1024 * 1024;
const IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]);
const TEXTUAL =
  /^(text\/|application\/(json|xml|javascript|x-sh|x-shellscript|toml|yaml|x-yaml|csv))/;

function path(mountId) {
  return `/restore/${encodeURIComponent(mountId)}/download`;
}

async function textPreview(mountId, entry, box) {
  const res = await request("GET", path(mountId), {
    query: { path: encoded(entry.pathQ) },
    raw: true,
    headers: { Range: `bytes=0-${TEXT_BYTES - 1}` },
  });
  const buf = new Uint8Array(await res.arrayBuffer());
  const head = buf.subarray(0, TEXT_BYTES);
  if (head.includes(0)) return false; // a NUL: binary after all
  const text = new TextDecoder("utf-8").decode(head);
  box.replaceChildren(
    h("pre", { class: "preview-text", "data-preview": "text" }, text),
    entry.size > TEXT_BYTES
      ? h(
          "p",
          { class: "muted", "data-preview": "truncated" },
          `The first ${bytes(TEXT_BYTES)} of ${bytes(entry.size)}.`,
        )
      : "",
  );
  return true;
}

async function imagePreview(mountId, entry, type, box, urls) {
  const res = await request("GET", path(mountId), {
    query: { path: encoded(entry.pathQ) },
    raw: true,
  });
  const blob = new Blob([await res.arrayBuffer()], { type });
  const href = URL.createObjectURL(blob);
  urls.push(href);
  const img = h("img", {
    class: "preview-image",
    "data-preview": "image",
    alt: entry.name,
    src: href,
  });
  box.replaceChildren(img);
}

export function preview(mountId, entry, onDownload) {
  const urls = [];
  return dialog(
    `Preview: ${entry.name}`,
    ({ body, foot, close }) => {
      const box = h(
        "div",
        { class: "preview" },
        h("span", { class: "muted" }, h("span", { class: "spinner" }), " Reading…"),
      );
      body.append(box);
      foot.append(
        h(
          "button",
          {
            type: "button",
            class: "btn",
            onclick: () => {
              close(null);
              onDownload(entry);
            },
          },
          "Download",
        ),
        h(
          "button",
          { type: "button", class: "btn btn-primary", autofocus: true, onclick: () => close(null) },
          "Close",
        ),
      );
      const none = (why) =>
        box.replaceChildren(h("div", { class: "empty", "data-preview": "none" }, why));
      (async () => {
        const info = await api.fileInfo(mountId, entry.pathQ);
        const type = (info.contentType || "").split(";")[0].trim();
        if (IMAGES.has(type)) {
          if (entry.size > IMAGE_BYTES)
            none(
              `No preview: the image is ${bytes(entry.size)}, over ${bytes(IMAGE_BYTES)}. Download it instead.`,
            );
          else await imagePreview(mountId, entry, type, box, urls);
        } else if (TEXTUAL.test(type) || type === "application/octet-stream" || !type) {
          if (!entry.size) none("The file is empty.");
          else if (!(await textPreview(mountId, entry, box)))
            none(`No preview for binary data${type ? ` (${type})` : ""}. Download it instead.`);
        } else {
          none(`No preview for ${type} files. Download it instead.`);
        }
      })().catch((err) => box.replaceChildren(errorPanel("The file could not be read", err)));
    },
    { width: "min(920px, 96vw)" },
  ).finally(() => {
    for (const u of urls) URL.revokeObjectURL(u);
  });
}
