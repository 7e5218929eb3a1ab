// Browsing one session: breadcrumb, a virtualised listing paged through the API's cursor,
// sorting, a name filter, multi-select across folders, a details pane and downloads.

import { api, encoded } from "./api.js";
import { selectionDialog } from "./archive.js";
import { restoreDialog } from "./restore_to.js";
import { h, debounce } from "./dom.js";
import { ownerOf, renderDetails } from "./details.js";
import { download } from "./downloads.js";
import { preview } from "./preview.js";
import { bytes, count, dateTime, dateTimeFull, modeString, relative } from "./format.js";
import { entryIcon, icon } from "./icons.js";
import { displayPath, parentOf } from "./model.js";
import { confirmClose, errorPanel, setMain, showError, toast } from "./ui.js";

const ROW_H = 28;
// A small first page paints a folder quickly; later pages are larger (fewer round trips).
const FIRST_PAGE = 300;
const PAGE_SIZE = 1000;
const OVERSCAN = 12;

// Query names of GET /restore/{id}/files beyond issue 4's path/cursor/limit.
const SORT_PARAM = "sort";
const DESC_PARAM = "descending";

export function renderBrowser(mountId, startPath, { onChange } = {}) {
  const state = {
    path: startPath,
    sort: { key: "name", desc: false },
    entries: [],
    next: null,
    total: null,
    loading: false,
    error: null,
    gen: 0,
    filter: "",
    filtered: null,
    active: -1,
    selection: new Map(),
    details: null,
  };
  let alive = true;
  let session = null;

  // --- layout ---------------------------------------------------------------------------
  const title = h("div", { class: "title" }, h("span", { html: icon("session") }), "Session");
  const facts = h("div", { class: "facts" });
  const closeBtn = h(
    "button",
    { type: "button", class: "btn btn-danger", onclick: closeSession },
    "Close session",
  );
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Path" });
  const filter = h("input", {
    class: "input",
    type: "search",
    placeholder: "Filter this folder…",
    "aria-label": "Filter entries in this folder by name",
    "data-filter": true,
    oninput: debounce(() => applyFilter(filter.value), 120),
    onkeydown: (ev) => {
      if (ev.key === "ArrowDown" || ev.key === "Enter") {
        ev.preventDefault();
        rows.focus();
        if (state.active < 0) setActive(0);
      }
      if (ev.key === "Escape") {
        filter.value = "";
        applyFilter("");
        rows.focus();
      }
    },
  });
  const upBtn = h("button", {
    type: "button",
    class: "btn",
    title: "Parent folder (Backspace)",
    "aria-label": "Parent folder",
    onclick: () => go(parentOf(state.path)),
    html: icon("up"),
  });
  const refreshBtn = h("button", {
    type: "button",
    class: "btn",
    title: "Reload this folder",
    "aria-label": "Reload this folder",
    onclick: () => load(),
    html: icon("refresh"),
  });
  const selectAll = h("input", {
    type: "checkbox",
    "aria-label": "Select all shown entries",
    onchange: () => toggleAll(selectAll.checked),
  });
  const headers = {};
  const sortHeader = (key, label, cls = "") => {
    const arrow = h("span", { class: "arrow" });
    const button = h(
      "button",
      { type: "button", class: "sort", onclick: () => setSort(key) },
      label,
      arrow,
    );
    headers[key] = { button, arrow };
    return h("div", { class: cls, role: "columnheader" }, button);
  };
  const cols = h(
    "div",
    { class: "cols", role: "row" },
    h("div", { role: "columnheader" }, selectAll),
    sortHeader("name", "Name"),
    sortHeader("size", "Size", "num"),
    sortHeader("mtime", "Modified", "c-mtime"),
    h("div", { class: "c-mode", role: "columnheader" }, "Mode"),
    h("div", { class: "c-owner", role: "columnheader" }, "Owner"),
    h("div", { role: "columnheader" }, h("span", { class: "sr-only" }, "Download")),
  );
  const inner = h("div", { class: "rows-inner" });
  const message = h("div", { class: "list-message", hidden: true });
  let pointerFocus = false;
  const rows = h(
    "div",
    {
      class: "rows",
      tabindex: 0,
      role: "grid",
      "aria-label": "Folder contents",
      "aria-multiselectable": "true",
      onscroll: () => requestAnimationFrame(draw),
      onkeydown: onKey,
      // A press on a row focuses the list before its click arrives: the click picks the row.
      // Making row 0 active here would redraw the rows under the pointer, and the click would
      // land on nothing (the first click after a sort or a reload selected row 0).
      onmousedown: () => {
        pointerFocus = true;
      },
      onfocus: () => {
        if (!pointerFocus && state.active < 0 && viewCount() > 0) setActive(0);
        pointerFocus = false;
      },
    },
    inner,
  );
  const statusText = h("span");
  const statusLine = h(
    "div",
    { class: "status-line" },
    statusText,
    h("span", { class: "spacer" }),
    h(
      "span",
      { class: "keys" },
      h("kbd", {}, "↑↓"),
      " move ",
      h("kbd", {}, "Enter"),
      " open ",
      h("kbd", {}, "Space"),
      " select ",
      h("kbd", {}, "Backspace"),
      " up ",
      h("kbd", {}, "/"),
      " filter",
    ),
  );
  const trayWhat = h("span", { class: "what" });
  const tray = h(
    "div",
    { class: "tray", hidden: true, role: "region", "aria-label": "Selection" },
    trayWhat,
    h("span", { class: "spacer" }),
    h("button", {
      type: "button",
      class: "btn btn-primary",
      onclick: () => downloadSelection("zip"),
      html: `${icon("download")}<span>Download ZIP</span>`,
    }),
    h("button", {
      type: "button",
      class: "btn",
      onclick: () => downloadSelection("tar.gz"),
      html: `${icon("download")}<span>Download TAR.GZ</span>`,
    }),
    h("button", {
      type: "button",
      class: "btn",
      onclick: () => downloadSelection("tar"),
      html: `${icon("download")}<span>Download TAR</span>`,
    }),
    h(
      "button",
      {
        type: "button",
        class: "btn",
        "data-action": "restore-to",
        onclick: () => restoreTo([...state.selection.keys()]),
      },
      "Restore to…",
    ),
    h(
      "button",
      {
        type: "button",
        class: "btn",
        onclick: () => {
          state.selection.clear();
          refreshSelection();
        },
      },
      "Clear selection",
    ),
  );
  const details = h("aside", { class: "details collapsed", "aria-label": "Details" });
  const listing = h(
    "section",
    { class: "listing", "aria-label": "Listing" },
    cols,
    message,
    rows,
    statusLine,
    tray,
  );

  setMain(
    h(
      "div",
      { class: "page" },
      h(
        "div",
        { class: "session-bar" },
        title,
        facts,
        h("span", { class: "spacer", style: "flex:1" }),
        h("a", { class: "btn", href: "#/sessions" }, "All sessions"),
        closeBtn,
      ),
      h(
        "div",
        { class: "panel panel-fill" },
        h(
          "div",
          { class: "toolbar" },
          upBtn,
          refreshBtn,
          crumbs,
          h("span", { class: "spacer" }),
          h("label", { class: "search" }, h("span", { html: icon("search") }), filter),
        ),
        h("div", { class: "browser" }, listing, details),
      ),
    ),
  );

  // --- session header ------------------------------------------------------------------
  async function loadSession() {
    try {
      const found = (await api.mounts()).find((m) => String(m.id) === String(mountId));
      if (!alive) return;
      if (!found) {
        facts.replaceChildren(
          h("span", { class: "badge badge-bad" }, "not open"),
          "This session is not open any more: it expired or was closed.",
        );
        return;
      }
      session = found;
      let backup = null;
      try {
        backup = await api.backup(found.backupId);
      } catch {
        backup = null;
      }
      if (!alive) return;
      title.replaceChildren(
        h("span", { html: icon("vm") }),
        backup ? `${backup.vm} / ${backup.disk}` : `Backup #${found.backupId}`,
      );
      facts.replaceChildren(
        backup
          ? h(
              "span",
              {},
              "Backup ",
              h("b", {}, dateTime(backup.created)),
              " ",
              h(
                "span",
                { class: backup.kind === "incremental" ? "badge badge-inc" : "badge badge-full" },
                backup.kind === "incremental" ? "INCREMENTAL" : "FULL",
              ),
            )
          : null,
        h("span", {}, "Volume ", h("b", {}, found.volume ?? "—")),
        h("span", {}, "Filesystem ", h("b", {}, found.fs ?? "—")),
        h(
          "span",
          { title: found.expires ? dateTimeFull(found.expires) : "" },
          "Expires ",
          h("b", {}, relative(found.expires)),
        ),
      );
      document.title = `filerestore · ${backup ? `${backup.vm} / ${backup.disk}` : "Browse"} · ${displayPath(state.path)}`;
    } catch (err) {
      if (alive)
        facts.replaceChildren(
          h("span", { class: "muted" }, `Session details unavailable: ${err.message}`),
        );
    }
  }

  // --- listing ---------------------------------------------------------------------------
  function view() {
    return state.filtered ?? state.entries;
  }

  function viewCount() {
    if (state.filtered) return state.filtered.length;
    if (state.total !== null && state.total !== undefined)
      return Math.max(state.total, state.entries.length);
    return state.entries.length + (state.next ? 1 : 0);
  }

  async function fetchPage(gen) {
    const limit = state.next ? PAGE_SIZE : FIRST_PAGE;
    const query = { path: encoded(state.path), limit, cursor: state.next || undefined };
    query[SORT_PARAM] = state.sort.key;
    if (state.sort.desc) query[DESC_PARAM] = "true";
    state.loading = true;
    try {
      const page = await api.files(mountId, query);
      if (gen !== state.gen || !alive) return false;
      state.entries.push(...page.entries);
      state.next = page.next;
      state.total = page.total;
      state.error = null;
      return true;
    } catch (err) {
      if (gen !== state.gen || !alive) return false;
      state.error = err;
      state.next = null;
      if (state.entries.length) {
        state.total = state.entries.length; // no placeholders for rows that will not come
        state.error = null;
        showError("The rest of this folder could not be listed", err);
      }
      return false;
    } finally {
      if (gen === state.gen) state.loading = false;
    }
  }

  async function load(keepActive = false) {
    state.gen += 1;
    const gen = state.gen;
    Object.assign(state, {
      entries: [],
      next: null,
      total: null,
      error: null,
      filtered: null,
      loading: true,
    });
    listing.dataset.state = "loading";
    listing.dataset.path = displayPath(state.path);
    if (!keepActive) state.active = -1;
    message.hidden = true;
    rows.scrollTop = keepActive ? rows.scrollTop : 0;
    statusText.replaceChildren(h("span", { class: "spinner" }), " Listing…");
    draw();
    await fetchPage(gen);
    if (gen !== state.gen) return;
    if (state.error) {
      message.hidden = false;
      message.replaceChildren(
        errorPanel(`${displayPath(state.path)} could not be listed`, state.error, () => load()),
      );
      rows.hidden = true;
      statusLine.hidden = true;
      updateStatus();
      listing.dataset.state = "error";
      return;
    }
    rows.hidden = false;
    statusLine.hidden = false;
    if (state.filter) await applyFilter(state.filter);
    else draw();
    listing.dataset.state = "ready";
    if (state.active < 0 && document.activeElement === rows && viewCount()) setActive(0);
  }

  async function loadMore() {
    if (state.loading || !state.next) return;
    const gen = state.gen;
    if (await fetchPage(gen)) {
      if (state.filter) computeFilter();
      draw();
    } else {
      draw();
    }
  }

  async function loadAll() {
    const gen = state.gen;
    while (state.next && gen === state.gen && alive) {
      if (state.loading) {
        await new Promise((r) => setTimeout(r, 30));
        continue;
      }
      if (!(await fetchPage(gen))) break;
      statusText.replaceChildren(
        h("span", { class: "spinner" }),
        ` Reading the folder to filter it: ${count(state.entries.length)}${state.total ? ` of ${count(state.total)}` : ""}…`,
      );
    }
  }

  function computeFilter() {
    const needle = state.filter.toLowerCase();
    state.filtered = needle
      ? state.entries.filter((e) => e.name.toLowerCase().includes(needle))
      : null;
  }

  async function applyFilter(value) {
    state.filter = value.trim();
    if (state.filter && state.next) await loadAll();
    computeFilter();
    state.active = viewCount() ? 0 : -1;
    rows.scrollTop = 0;
    draw();
  }

  function setSort(key) {
    state.sort =
      state.sort.key === key ? { key, desc: !state.sort.desc } : { key, desc: key !== "name" };
    load();
  }

  // --- drawing ---------------------------------------------------------------------------
  function rowFor(entry, i) {
    if (!entry) {
      return h(
        "div",
        {
          class: "frow placeholder",
          role: "row",
          "aria-rowindex": i + 2,
          style: `top:${i * ROW_H}px`,
        },
        h("div"),
        h("div", { class: "name" }, h("span")),
      );
    }
    const checked = state.selection.has(entry.pathQ);
    const box = h("input", {
      type: "checkbox",
      checked,
      tabindex: -1,
      "aria-label": `Select ${entry.name}`,
      onclick: (ev) => {
        ev.stopPropagation();
        toggle(entry, box.checked);
      },
    });
    const label =
      entry.kind === "dir"
        ? h("a", { class: "label", href: browseHref(entry.pathQ), tabindex: -1 }, entry.name)
        : h("span", { class: "label", onclick: () => showDetails(true) }, entry.name);
    const row = h(
      "div",
      {
        class: `frow${checked ? " checked" : ""}${i === state.active ? " active" : ""}`,
        id: `row-${i}`,
        role: "row",
        "aria-rowindex": i + 2,
        "aria-selected": checked ? "true" : "false",
        style: `top:${i * ROW_H}px`,
        dataset: { path: entry.path, kind: entry.kind },
        onclick: (ev) => {
          if (ev.target.closest("a,button,input")) return;
          if (ev.shiftKey && state.active >= 0) selectRange(state.active, i);
          else if (ev.ctrlKey || ev.metaKey) toggle(entry, !state.selection.has(entry.pathQ));
          setActive(i);
          rows.focus({ preventScroll: true });
        },
        ondblclick: () => openEntry(entry),
      },
      h("div", { role: "gridcell" }, box),
      h(
        "div",
        { class: "name", role: "gridcell" },
        h("span", { class: `kind-${entry.kind}`, html: icon(entryIcon(entry)) }),
        label,
        entry.kind === "symlink"
          ? h("span", { class: "target", title: entry.target ?? "" }, `→ ${entry.target ?? "?"}`)
          : null,
      ),
      h(
        "div",
        { class: "num meta", role: "gridcell" },
        entry.kind === "dir" ? "—" : bytes(entry.size),
      ),
      h("div", { class: "meta c-mtime", role: "gridcell" }, dateTime(entry.mtime.date)),
      h("div", { class: "meta mono c-mode", role: "gridcell" }, modeString(entry.mode, entry.kind)),
      h("div", { class: "meta c-owner", role: "gridcell" }, ownerOf(entry)),
      h(
        "div",
        { role: "gridcell" },
        entry.kind === "file"
          ? h("button", {
              type: "button",
              class: "btn btn-icon act",
              tabindex: -1,
              title: `Download ${entry.name}`,
              "aria-label": `Download ${entry.name}`,
              onclick: () => downloadFile(entry),
              html: icon("download"),
            })
          : null,
      ),
    );
    return row;
  }

  function draw() {
    if (!alive) return;
    const n = viewCount();
    inner.style.height = `${n * ROW_H}px`;
    rows.setAttribute("aria-rowcount", String(n + 1));
    const top = rows.scrollTop;
    const height = rows.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const list = view();
    const out = [];
    for (let i = first; i < last; i += 1) out.push(rowFor(list[i], i));
    inner.replaceChildren(...out);
    if (state.active >= 0 && state.active < n)
      rows.setAttribute("aria-activedescendant", `row-${state.active}`);
    else rows.removeAttribute("aria-activedescendant");
    if (!state.filtered && state.next && last >= state.entries.length - OVERSCAN) loadMore();
    if (!n && !state.loading && !state.error) {
      message.hidden = false;
      message.replaceChildren(
        h(
          "div",
          { class: "empty" },
          state.filter
            ? `Nothing in this folder matches “${state.filter}”.`
            : "This folder is empty.",
        ),
      );
    } else if (!state.error) {
      message.hidden = true;
    }
    for (const [key, { button, arrow }] of Object.entries(headers)) {
      const on = state.sort.key === key;
      arrow.textContent = on ? (state.sort.desc ? "▼" : "▲") : "";
      button.parentElement.setAttribute(
        "aria-sort",
        on ? (state.sort.desc ? "descending" : "ascending") : "none",
      );
    }
    const shown = list.filter(Boolean);
    selectAll.checked = shown.length > 0 && shown.every((e) => state.selection.has(e.pathQ));
    selectAll.indeterminate = !selectAll.checked && shown.some((e) => state.selection.has(e.pathQ));
    updateStatus();
  }

  function updateStatus() {
    if (state.error && !state.entries.length) {
      statusText.textContent = "";
      return;
    }
    const total = state.total ?? (state.next ? null : state.entries.length);
    const parts = [
      `${total === null ? `${count(state.entries.length)}+ items` : `${count(total)} item${total === 1 ? "" : "s"}`}`,
    ];
    if (total !== null && state.entries.length < total)
      parts.push(`${count(state.entries.length)} loaded`);
    if (state.filtered) parts.push(`${count(state.filtered.length)} match “${state.filter}”`);
    if (state.selection.size) parts.push(`${count(state.selection.size)} selected`);
    statusText.replaceChildren(
      parts.join(" · "),
      state.loading ? h("span", {}, " ", h("span", { class: "spinner" })) : "",
    );
  }

  function drawCrumbs() {
    const parts = state.path.split("/").filter(Boolean);
    const items = [h("a", { href: browseHref("/"), "aria-label": "Root folder" }, "/")];
    let acc = "";
    parts.forEach((part, i) => {
      acc += `/${part}`;
      if (i > 0) items.push(h("span", { class: "sep", "aria-hidden": "true" }, "/"));
      const text = displayPath(part);
      items.push(
        i === parts.length - 1
          ? h("span", { class: "cur", "aria-current": "location", title: text }, text)
          : h("a", { href: browseHref(acc), title: text }, text),
      );
    });
    if (!parts.length) items[0] = h("span", { class: "cur", "aria-current": "location" }, "/");
    crumbs.replaceChildren(...items);
    upBtn.disabled = state.path === "/";
  }

  // --- active row, details ----------------------------------------------------------------
  function setActive(i) {
    const n = viewCount();
    if (!n) return;
    state.active = Math.max(0, Math.min(n - 1, i));
    const top = state.active * ROW_H;
    if (top < rows.scrollTop) rows.scrollTop = top;
    else if (top + ROW_H > rows.scrollTop + rows.clientHeight)
      rows.scrollTop = top + ROW_H - rows.clientHeight;
    draw();
    const entry = view()[state.active];
    if (entry) loadDetails(entry);
  }

  const fetchInfo = debounce(async (entry, gen) => {
    try {
      const info = await api.fileInfo(mountId, entry.pathQ);
      if (alive && state.details && state.details.pathQ === entry.pathQ && gen === state.gen) {
        state.details = {
          ...entry,
          ...stripNull(info),
          name: entry.name,
          path: entry.path,
          pathQ: entry.pathQ,
          partial: false,
        };
        drawDetails();
      }
    } catch (err) {
      if (alive && state.details && state.details.pathQ === entry.pathQ) {
        state.details = { ...state.details, partial: false };
        drawDetails();
        details.querySelector(".details-body")?.append(errorPanel("Full details unavailable", err));
      }
    }
  }, 150);

  function loadDetails(entry) {
    state.details = { ...entry, partial: true };
    drawDetails();
    fetchInfo(entry, state.gen);
  }

  function showDetails(open) {
    details.classList.toggle("collapsed", !open);
  }

  function drawDetails() {
    renderDetails(details, state.details, {
      selected: state.details ? state.selection.has(state.details.pathQ) : false,
      href: browseHref,
      download: downloadFile,
      preview: (e) => preview(mountId, e, downloadFile),
      archive: (e, format) => archive([e.pathQ], format),
      restore: (e) => restoreTo([e.pathQ]),
      toggle: (e, on) => toggle(e, on),
      close: () => showDetails(false),
      history: session ? (e) => api.history(session.backupId, e.pathQ, session.volume) : null,
      scope: mountId,
    });
  }

  // --- navigation ------------------------------------------------------------------------
  function browseHref(path) {
    return `#/browse/${encodeURIComponent(mountId)}?path=${path}`;
  }

  function go(path) {
    if (path === state.path) return;
    location.hash = browseHref(path);
  }

  // Called by the router when only ?path= changed.
  function navigate(path) {
    const from = state.path;
    state.path = path;
    state.filter = "";
    filter.value = "";
    state.details = null;
    drawCrumbs();
    drawDetails();
    load().then(() => {
      // Coming back up, put the cursor on the folder we came from.
      if (parentOf(from) === path) {
        const at = state.entries.findIndex((e) => e.pathQ === from);
        if (at >= 0) setActive(at);
      }
    });
    if (document.activeElement === document.body || !document.activeElement) rows.focus();
  }

  function openEntry(entry) {
    if (entry.kind === "dir") {
      go(entry.pathQ);
      return;
    }
    if (entry.kind === "file") {
      preview(mountId, entry, downloadFile);
      return;
    }
    // links and special files: their details (the pane is an overlay on narrow windows)
    loadDetails(entry);
    showDetails(true);
  }

  function onKey(ev) {
    const n = viewCount();
    const page = Math.max(1, Math.floor(rows.clientHeight / ROW_H) - 1);
    const entry = view()[state.active];
    const keys = {
      ArrowDown: () => setActive(state.active + 1),
      ArrowUp: () => (ev.altKey ? go(parentOf(state.path)) : setActive(state.active - 1)),
      PageDown: () => setActive(state.active + page),
      PageUp: () => setActive(state.active - page),
      Home: () => setActive(0),
      End: () => setActive(n - 1),
      Enter: () => entry && openEntry(entry),
      ArrowRight: () => entry && entry.kind === "dir" && go(entry.pathQ),
      ArrowLeft: () => go(parentOf(state.path)),
      Backspace: () => go(parentOf(state.path)),
      " ": () => entry && toggle(entry, !state.selection.has(entry.pathQ)),
    };
    if (ev.key === "a" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      toggleAll(true);
      return;
    }
    if (ev.key === "Escape" && state.selection.size) {
      state.selection.clear();
      refreshSelection();
      return;
    }
    const action = keys[ev.key];
    if (action) {
      ev.preventDefault();
      action();
    }
  }

  // --- selection -------------------------------------------------------------------------
  function toggle(entry, on) {
    if (on) state.selection.set(entry.pathQ, entry);
    else state.selection.delete(entry.pathQ);
    refreshSelection();
  }

  function toggleAll(on) {
    for (const e of view()) {
      if (!e) continue;
      if (on) state.selection.set(e.pathQ, e);
      else state.selection.delete(e.pathQ);
    }
    refreshSelection();
  }

  function selectRange(a, b) {
    const list = view();
    for (let i = Math.min(a, b); i <= Math.max(a, b); i += 1)
      if (list[i]) state.selection.set(list[i].pathQ, list[i]);
  }

  function refreshSelection() {
    const items = [...state.selection.values()];
    tray.hidden = items.length === 0;
    document.body.classList.toggle("has-tray", items.length > 0);
    // what is selected, by kind (a link is a link here; the download dialog counts what the
    // archive will hold, a selected link as what it points to, and says so)
    const files = items.filter((e) => e.kind === "file").length;
    const dirs = items.filter((e) => e.kind === "dir").length;
    const links = items.filter((e) => e.kind === "symlink").length;
    const others = items.length - files - dirs - links;
    const folders = new Set(items.map((e) => parentOf(e.pathQ))).size;
    const size = items.filter((e) => e.kind === "file").reduce((s, e) => s + (e.size || 0), 0);
    const kinds = [
      files ? `${count(files)} file${files === 1 ? "" : "s"} (${bytes(size)})` : "",
      dirs ? `${count(dirs)} folder${dirs === 1 ? "" : "s"}` : "",
      links ? `${count(links)} link${links === 1 ? "" : "s"}` : "",
      others ? `${count(others)} other` : "",
    ]
      .filter(Boolean)
      .join(", ");
    trayWhat.textContent = `${count(items.length)} selected: ${kinds}${folders > 1 ? ` from ${folders} folders` : ""}`;
    draw();
    if (state.details) drawDetails();
  }

  // --- downloads and closing -------------------------------------------------------------
  function downloadFile(entry) {
    download(entry.name, api.download(mountId, entry.pathQ)).then(onChange);
  }

  async function archive(paths, format) {
    const kinds = new Map(
      paths.map((p) => [
        p,
        (state.selection.get(p) || state.entries.find((e) => e.pathQ === p))?.kind,
      ]),
    );
    const chosen = await selectionDialog(mountId, paths, format, kinds);
    if (!chosen) return;
    // a placeholder until the response's Content-Disposition names the archive
    const base =
      paths.length === 1
        ? displayPath(paths[0]).split("/").pop() || "root"
        : `${count(paths.length)} items`;
    const name = `${base}.${chosen.format}`;
    download(name, api.downloadDirectory(mountId, chosen.paths, chosen.format)).then(onChange);
  }

  function restoreTo(paths) {
    restoreDialog(mountId, paths);
  }

  function downloadSelection(format) {
    archive([...state.selection.keys()], format);
  }

  async function closeSession() {
    const ok = await confirmClose(
      "The backup stops being readable through this session. Downloads still running from it are cut off.",
    );
    if (!ok) return;
    try {
      await api.unmount(mountId);
      toast(
        "info",
        "Session closed",
        session ? `Volume ${session.volume ?? ""} of backup #${session.backupId} is closed.` : "",
      );
      location.hash = "#/sessions";
    } catch (err) {
      showError("The session could not be closed", err);
    }
  }

  // --- start -------------------------------------------------------------------------------
  drawCrumbs();
  drawDetails();
  loadSession();
  load().then(() => rows.focus());
  const timer = setInterval(loadSession, 60000);
  const onResize = () => draw();
  window.addEventListener("resize", onResize);

  const cleanup = () => {
    alive = false;
    document.body.classList.remove("has-tray");
    state.gen += 1;
    clearInterval(timer);
    window.removeEventListener("resize", onResize);
  };
  cleanup.navigate = navigate;
  return cleanup;
}

function stripNull(obj) {
  return Object.fromEntries(
    Object.entries(obj).filter(
      ([, v]) =>
        v !== null && v !== undefined && !(typeof v === "object" && v && "date" in v && !v.date),
    ),
  );
}
