// Opening a backup: choose a volume when there are several, reuse an open session for it.

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { bytes, dateTime } from "./format.js";
import { volumeChoicesOf } from "./model.js";
import { dialog, showError, toast } from "./ui.js";

// The volumes worth offering: those with a filesystem, when the API says which have one.
function browsable(volumes) {
  const known = volumes.some((v) => v.fs);
  return known ? volumes.filter((v) => v.fs) : volumes;
}

function volumesFromConflict(err) {
  return err.body?.error ? volumeChoicesOf(err.body.error) : [];
}

function pickVolume(backup, volumes) {
  return dialog("Choose a volume", ({ body, foot, close }) => {
    body.append(
      h(
        "p",
        {},
        `The ${backup.disk} disk of ${backup.vm} (${dateTime(backup.created)}) holds ${volumes.length} filesystems. Which one do you want to browse?`,
      ),
    );
    const rows = volumes.map((v, i) =>
      h(
        "tr",
        {
          class: "opt",
          tabindex: i === 0 ? 0 : -1,
          role: "option",
          dataset: { volume: v.id },
          onclick: () => close(v.id),
          onkeydown: (ev) => {
            const all = [...body.querySelectorAll("tr.opt")];
            const at = all.indexOf(ev.currentTarget);
            if (ev.key === "Enter" || ev.key === " ") {
              ev.preventDefault();
              close(v.id);
            }
            if (ev.key === "ArrowDown" && all[at + 1]) {
              ev.preventDefault();
              all[at + 1].focus();
            }
            if (ev.key === "ArrowUp" && all[at - 1]) {
              ev.preventDefault();
              all[at - 1].focus();
            }
          },
        },
        h("td", { class: "mono" }, v.id),
        h(
          "td",
          {},
          v.label || h("span", { class: "muted" }, "no label"),
          v.fsLabel && v.fsLabel !== v.label
            ? h("span", { class: "muted" }, ` · ${v.fsLabel}`)
            : null,
        ),
        h("td", {}, v.fs ? h("span", { class: "badge badge-muted" }, v.fs) : "—"),
        h("td", { class: "num" }, bytes(v.size)),
      ),
    );
    body.append(
      h(
        "table",
        { class: "pick", role: "listbox", "aria-label": "Volumes" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Volume"),
            h("th", {}, "Label"),
            h("th", {}, "Filesystem"),
            h("th", { class: "num" }, "Size"),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
    foot.append(
      h("button", { type: "button", class: "btn", onclick: () => close(null) }, "Cancel"),
    );
    setTimeout(() => rows[0]?.focus(), 0);
  });
}

// backup: a record from api.backups() (a search result's needs only id, vm, disk, created);
// at: {volume, pathQ} to open that volume at that folder (a search result's Restore)
export async function openBackup(backup, at = {}) {
  let volume = at.volume ?? null;
  try {
    let volumes = [];
    if (volume === null)
      try {
        volumes = browsable((await api.backup(backup.id)).volumes);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw err;
        // Without the details the mount request itself says whether a choice is needed.
      }
    if (volumes.length === 1) volume = volumes[0].id;
    if (volumes.length > 1) {
      volume = await pickVolume(backup, volumes);
      if (volume === null) return;
    }
    const open = (await api.mounts()).find(
      (m) =>
        String(m.backupId) === String(backup.id) &&
        (volume === null || String(m.volume) === String(volume)) &&
        m.status === "mounted",
    );
    let mountId;
    if (open) {
      mountId = open.id;
      toast(
        "info",
        "Session reused",
        `Backup #${backup.id} is already open (volume ${open.volume ?? "—"}).`,
      );
    } else {
      let mount;
      try {
        mount = await api.mount(backup.id, volume);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 409 || volume !== null) throw err;
        const choices = volumesFromConflict(err);
        if (!choices.length) throw err;
        volume = await pickVolume(backup, choices);
        if (volume === null) return;
        mount = await api.mount(backup.id, volume);
      }
      mountId = mount.id;
    }
    location.hash = `#/browse/${encodeURIComponent(mountId)}?path=${at.pathQ || "/"}`;
  } catch (err) {
    showError(`Backup #${backup.id} could not be opened`, err);
  }
}
