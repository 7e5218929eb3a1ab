// Repositories: where backups are read from (host directories, NFS/CIFS shares, S3 buckets),
// whether each can be read now and why not, and how many backups each holds.

import { api } from "./api.js";
import { h } from "./dom.js";
import { count, dateTime } from "./format.js";
import { emptyList, grid, listError, loading, operatorHint, page } from "./ui.js";

const KIND_LABEL = { local: "Directory", nfs: "NFS share", cifs: "CIFS share", s3: "S3 bucket" };

function where(r) {
  // a non-admin is told no location ("<repository NAME>"): no endpoint line either
  if (r.kind !== "s3" || r.location.startsWith("<repository ")) {
    return h("span", { class: "mono" }, r.location);
  }
  const details = [
    r.endpoint ?? "AWS",
    r.region,
    r.pathStyle ? null : "virtual-hosted",
    r.verifyTls ? null : "TLS not verified",
  ]
    .filter(Boolean)
    .join(" · ");
  return [
    h("span", { class: "mono" }, r.location),
    h("div", { class: "muted repo-endpoint" }, details),
  ];
}

function statusOf(r) {
  if (!r.enabled) return h("span", { class: "badge badge-warn" }, "disabled");
  if (r.available) return h("span", { class: "badge badge-ok" }, "available");
  return [
    h("span", { class: "badge badge-bad" }, "unavailable"),
    r.reason ? h("div", { class: "muted repo-reason" }, r.reason) : null,
  ];
}

export function renderRepositories() {
  const summary = h("span", { class: "count" });
  const body = h("div", { class: "scroll" });

  function draw(repositories, backups) {
    const held = new Map();
    for (const b of backups) held.set(b.repository, (held.get(b.repository) ?? 0) + 1);
    const unavailable = repositories.filter((r) => !r.available).length;
    summary.textContent = `${count(repositories.length)} repositories${unavailable ? ` · ${count(unavailable)} unavailable` : ""}`;
    if (!repositories.length) {
      body.replaceChildren(
        emptyList("No repositories", ...operatorHint("adds them", ["filerestore repo add"])),
      );
      return;
    }
    const rows = repositories
      .slice()
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
      .map((r) =>
        h(
          "tr",
          { class: "repository", dataset: { repository: r.name, kind: r.kind } },
          h("td", {}, h("strong", {}, r.name)),
          h(
            "td",
            { class: "hide-narrow" },
            h(
              "span",
              { class: r.kind === "s3" ? "badge badge-inc" : "badge badge-full" },
              KIND_LABEL[r.kind] ?? r.kind,
            ),
          ),
          h("td", { class: "repo-where" }, where(r)),
          h("td", { class: "num hide-narrow" }, count(held.get(r.name) ?? 0)),
          h("td", {}, statusOf(r)),
          h("td", { class: "hide-narrow nowrap" }, dateTime(r.created)),
        ),
      );
    const columns = [
      "Name",
      ["Kind", { class: "hide-narrow" }],
      "Location",
      ["Backups", { class: "num hide-narrow" }],
      "Status",
      ["Added", { class: "hide-narrow" }],
    ];
    body.replaceChildren(grid("Repositories", columns, rows));
  }

  async function load() {
    body.replaceChildren(loading("Loading repositories…"));
    try {
      const [repositories, backups] = await Promise.all([api.repositories(), api.backups()]);
      draw(repositories, backups);
    } catch (err) {
      body.replaceChildren(listError("The repositories could not be loaded", err, load));
    }
  }

  page(
    { title: "Repositories", summary, onRefresh: load },
    h("div", { class: "panel panel-fill" }, body),
  );
  load();
  return () => {};
}
