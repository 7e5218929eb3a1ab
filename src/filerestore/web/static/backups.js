// Backups: grouped by VM and disk, newest first, full/incremental marked, filterable.

import { api } from "./api.js";
import { h, clear, debounce } from "./dom.js";
import { bytes, dateTime, count } from "./format.js";
import { icon } from "./icons.js";
import { openBackup } from "./open.js";
import { emptyList, listError, loading, operatorHint, page } from "./ui.js";

// Sortable columns: the value each sorts by (within each VM's disk: the grouping stays).
const SORTS = {
  created: { label: "Backup", value: (b) => b.created?.getTime() ?? 0, desc: true },
  kind: { label: "Type", value: (b) => b.kind ?? "" },
  size: { label: "Disk size", value: (b) => b.size ?? 0, desc: true, num: true },
  repository: { label: "Repository", value: (b) => b.repository ?? "", narrow: true },
  path: { label: "Path", value: (b) => b.path ?? "", narrow: true },
  status: { label: "Status", value: (b) => b.status ?? "", narrow: true },
};

function compareBy(sort) {
  const { value } = SORTS[sort.key];
  const sign = sort.desc ? -1 : 1;
  return (a, b) => {
    const x = value(a);
    const y = value(b);
    const c =
      typeof x === "number"
        ? x - y
        : String(x).localeCompare(String(y), undefined, { numeric: true });
    return sign * c || (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0) || b.id - a.id;
  };
}

function groupBackups(backups, sort) {
  const vms = new Map();
  for (const b of backups) {
    if (!vms.has(b.vm)) vms.set(b.vm, new Map());
    const disks = vms.get(b.vm);
    if (!disks.has(b.disk)) disks.set(b.disk, []);
    disks.get(b.disk).push(b);
  }
  const byName = (a, b) => a[0].localeCompare(b[0], undefined, { numeric: true });
  return [...vms.entries()].sort(byName).map(([vm, disks]) => ({
    vm,
    disks: [...disks.entries()].sort(byName).map(([disk, list]) => ({
      disk,
      backups: list.sort(compareBy(sort)),
    })),
  }));
}

function matches(b, needle) {
  if (!needle) return true;
  return [b.vm, b.disk, b.path, b.repository, String(b.id), b.kind].some(
    (v) => v && String(v).toLowerCase().includes(needle),
  );
}

function kindBadge(b) {
  return b.kind === "incremental"
    ? [
        h(
          "span",
          {
            class: "badge badge-inc",
            title: b.parent ? `Incremental on backup #${b.parent}` : "Incremental",
          },
          "INCREMENTAL",
        ),
        b.parent
          ? h("span", { class: "muted parent-of", style: "font-size:12px" }, ` on #${b.parent}`)
          : null,
      ]
    : h("span", { class: "badge badge-full" }, "FULL");
}

function statusBadge(b) {
  if (!b.status || b.status === "available" || b.status === "ok")
    return h("span", { class: "badge badge-ok" }, "available");
  return h(
    "span",
    { class: b.status === "missing" ? "badge badge-bad" : "badge badge-warn" },
    b.status,
  );
}

export function renderBackups() {
  let backups = null;
  let needle = "";
  let sort = { key: "created", desc: true };
  const tbody = h("tbody");
  const headRow = h("tr");
  const drawHead = () => {
    headRow.replaceChildren(
      ...Object.entries(SORTS).map(([key, col]) => {
        const on = sort.key === key;
        const arrow = on ? (sort.desc ? " ▼" : " ▲") : "";
        return h(
          "th",
          {
            class: `${col.num ? "num " : ""}${col.narrow ? "hide-narrow" : ""}`.trim(),
            "aria-sort": on ? (sort.desc ? "descending" : "ascending") : "none",
          },
          h(
            "button",
            {
              type: "button",
              class: "sort",
              "data-sort": key,
              onclick: () => {
                sort = on ? { key, desc: !sort.desc } : { key, desc: Boolean(col.desc) };
                drawHead();
                draw();
              },
            },
            col.label,
            arrow,
          ),
        );
      }),
      h("th", { class: "num" }, h("span", { class: "sr-only" }, "Actions")),
    );
  };
  drawHead();
  const summary = h("span", { class: "count" });
  const body = h("div", { class: "scroll" });
  const filter = h("input", {
    class: "input",
    type: "search",
    placeholder: "Filter by VM, disk, path…",
    "aria-label": "Filter backups",
    "data-filter": true,
    oninput: debounce(() => {
      needle = filter.value.trim().toLowerCase();
      draw();
    }, 80),
  });
  const table = h(
    "table",
    { class: "grid", "aria-label": "Backups" },
    h("thead", {}, headRow),
    tbody,
  );

  function draw() {
    clear(tbody);
    const shown = backups.filter((b) => matches(b, needle));
    const vmCount = new Set(backups.map((b) => b.vm)).size;
    summary.textContent = needle
      ? `${count(shown.length)} of ${count(backups.length)} backups`
      : `${count(backups.length)} backup${backups.length === 1 ? "" : "s"} · ${count(vmCount)} VM${vmCount === 1 ? "" : "s"}`;
    if (!backups.length) {
      body.replaceChildren(
        emptyList(
          "No backups in the catalog",
          ...operatorHint("registers repositories", ["filerestore repo add", "filerestore scan"]),
        ),
      );
      return;
    }
    if (!shown.length) {
      body.replaceChildren(
        emptyList("No backup matches the filter", `Nothing contains “${needle}”.`),
      );
      return;
    }
    body.replaceChildren(table);
    for (const group of groupBackups(shown, sort)) {
      const total = group.disks.reduce((n, d) => n + d.backups.length, 0);
      tbody.append(
        h(
          "tr",
          { class: "group" },
          h(
            "td",
            { colspan: 7 },
            h(
              "span",
              { class: "group-title" },
              h("span", { html: icon("vm") }),
              group.vm,
              h(
                "span",
                { class: "muted" },
                `· ${group.disks.length} disk${group.disks.length > 1 ? "s" : ""}, ${total} backup${total > 1 ? "s" : ""}`,
              ),
            ),
          ),
        ),
      );
      for (const disk of group.disks) {
        tbody.append(
          h(
            "tr",
            { class: "subgroup" },
            h(
              "td",
              { colspan: 7 },
              h("span", { class: "group-title" }, h("span", { html: icon("disk") }), disk.disk),
            ),
          ),
        );
        for (const b of disk.backups) {
          const open = h(
            "button",
            {
              type: "button",
              class: "btn btn-sm btn-primary",
              "aria-label": `Open backup of ${b.vm} ${b.disk} from ${dateTime(b.created)}`,
              onclick: () => openBackup(b),
            },
            "Open",
          );
          const row = h(
            "tr",
            {
              class: "backup",
              dataset: { backupId: String(b.id) },
              ondblclick: () => openBackup(b),
            },
            h(
              "td",
              {},
              h("span", { class: "nowrap" }, dateTime(b.created)),
              " ",
              h("span", { class: "muted mono" }, `#${b.id}`),
            ),
            h("td", {}, kindBadge(b)),
            h("td", { class: "num" }, bytes(b.size)),
            h("td", { class: "hide-narrow" }, b.repository ?? "—"),
            h("td", { class: "hide-narrow ell mono muted", title: b.path ?? "" }, b.path ?? "—"),
            h("td", { class: "hide-narrow" }, statusBadge(b)),
            h(
              "td",
              { class: "num" },
              b.kind === "incremental" && b.parent
                ? h(
                    "a",
                    {
                      class: "btn btn-sm compare-link hide-narrow",
                      href: `#/compare/${encodeURIComponent(b.parent)}/${encodeURIComponent(b.id)}`,
                      title: `What changed since backup #${b.parent} (from the file index)`,
                    },
                    "Compare",
                  )
                : null,
              " ",
              open,
            ),
          );
          tbody.append(row);
        }
      }
    }
  }

  async function load() {
    body.replaceChildren(loading("Loading backups…"));
    try {
      backups = await api.backups();
      draw();
    } catch (err) {
      body.replaceChildren(listError("The backup catalog could not be loaded", err, load));
    }
  }

  const search = h("label", { class: "search" }, h("span", { html: icon("search") }), filter);
  page(
    { title: "Backups", summary, tools: [search], onRefresh: load },
    h("div", { class: "panel panel-fill" }, body),
  );
  load();
  return () => {};
}
