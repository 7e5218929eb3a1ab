// A small inline SVG icon set (16x16, stroked), drawn for this page.

const PATHS = {
  folder:
    '<path d="M1.5 4.5v8a1 1 0 0 0 1 1h11a1 1 0 0 0 1-1v-6.5a1 1 0 0 0-1-1H7.8L6.3 3.2a1 1 0 0 0-.7-.3H2.5a1 1 0 0 0-1 1z"/>',
  file: '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M9.5 1.5v3h3"/>',
  text: '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M9.5 1.5v3h3M5.5 8h5M5.5 10h5M5.5 12h3"/>',
  image:
    '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M5 12.5l2-2.5 1.5 1.5 1-1 1.5 2M6.5 8a.8.8 0 1 0 0-.1"/>',
  archive:
    '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M7 2v1.5M8 3.5v1.5M7 5v1.5M8 6.5V8M6.8 9.5h2.4v2.2H6.8z"/>',
  code: '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M6.5 8.5L5 10l1.5 1.5M9.5 8.5L11 10l-1.5 1.5"/>',
  binary: '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M5.8 8v4M8 8h1.5v4H8zM10.5 8"/>',
  symlink:
    '<path d="M3.5 1.5h6l3 3v10h-9z"/><path d="M5.5 12V10a1.5 1.5 0 0 1 1.5-1.5h3.5M9 7l1.5 1.5L9 10"/>',
  other: '<path d="M3.5 1.5h6l3 3v10h-9z"/><circle cx="8" cy="10" r="1.8"/>',
  download: '<path d="M8 2v8.5M4.5 7L8 10.5 11.5 7M2.5 13.5h11"/>',
  close: '<path d="M4 4l8 8M12 4l-8 8"/>',
  refresh: '<path d="M13 3.5v3h-3"/><path d="M12.7 6.5A5 5 0 1 0 13 9"/>',
  search: '<circle cx="7" cy="7" r="4.5"/><path d="M10.3 10.3l3.2 3.2"/>',
  up: '<path d="M8 13V3.5M4 7.5L8 3.5l4 4"/>',
  disk: '<rect x="1.5" y="4" width="13" height="8" rx="1.5"/><path d="M4 9.5h.01M6.5 9.5h5"/>',
  vm: '<rect x="1.5" y="2.5" width="13" height="9" rx="1"/><path d="M5.5 14h5M8 11.5V14"/>',
  open: '<path d="M6 3.5H3a1 1 0 0 0-1 1v8.5a1 1 0 0 0 1 1h8.5a1 1 0 0 0 1-1V10M9 2h5v5M14 2L7 9"/>',
  session:
    '<rect x="2" y="2.5" width="12" height="11" rx="1.5"/><path d="M2 6h12M5 4.3h.01M7 4.3h.01"/>',
  info: '<circle cx="8" cy="8" r="6.5"/><path d="M8 7.5v3.5M8 5h.01"/>',
  alert: '<path d="M8 1.8l6.5 11.7h-13z"/><path d="M8 6.5v3M8 11.5h.01"/>',
  check: '<path d="M3 8.5l3 3 7-7"/>',
};

export function icon(name, cls = "") {
  const body = PATHS[name] || PATHS.file;
  return `<svg class="i ${cls}" viewBox="0 0 16 16" aria-hidden="true" focusable="false">${body}</svg>`;
}

const BY_EXTENSION = {
  text: [
    "txt",
    "md",
    "log",
    "csv",
    "ini",
    "conf",
    "cfg",
    "rst",
    "json",
    "xml",
    "yaml",
    "yml",
    "toml",
    "doc",
    "docx",
    "odt",
    "pdf",
    "rtf",
  ],
  image: ["png", "jpg", "jpeg", "gif", "bmp", "svg", "webp", "ico", "tif", "tiff"],
  archive: ["zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "tar", "iso", "deb", "rpm", "cab"],
  code: [
    "sh",
    "py",
    "js",
    "ts",
    "c",
    "h",
    "cpp",
    "go",
    "rs",
    "java",
    "rb",
    "pl",
    "php",
    "ps1",
    "bat",
    "cmd",
    "html",
    "css",
    "sql",
  ],
  binary: ["bin", "exe", "dll", "so", "img", "dat", "db", "sys", "qcow2", "vmdk"],
};
const EXT_KIND = Object.fromEntries(
  Object.entries(BY_EXTENSION).flatMap(([kind, exts]) => exts.map((e) => [e, kind])),
);

// The icon for a directory entry: by kind, and for files by extension.
export function entryIcon(entry) {
  if (entry.kind === "dir") return "folder";
  if (entry.kind === "symlink") return "symlink";
  if (entry.kind === "other") return "other";
  const dot = entry.name.lastIndexOf(".");
  return dot > 0 ? EXT_KIND[entry.name.slice(dot + 1).toLowerCase()] || "file" : "file";
}
