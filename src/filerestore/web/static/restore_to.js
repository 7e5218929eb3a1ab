// "Restore to…": the selected paths as a restore job into one of the configured targets,
// followed in the dialog (progress, cancel) until it ends; closing the dialog leaves a
// running job to the server.

import { api } from "./api.js";
import { h } from "./dom.js";
import { bytes, count } from "./format.js";
import { displayPath } from "./model.js";
import { dialog, errorPanel } from "./ui.js";

const POLL_MS = 1000;
const POLICIES = [
  ["skip", "Skip", "keep what is there"],
  ["rename", "Rename", "restore beside it under a new name"],
  ["overwrite", "Overwrite", "replace it"],
];
const ACTIVE = new Set(["queued", "running"]);

function targetLabel(t) {
  return `${t.name} (${t.kind === "sftp" ? "SSH" : "this host"}${t.location ? `: ${t.location}` : ""})`;
}

function progressLine(job) {
  const p = job.progress;
  const of = p.totalFiles === null ? "" : ` of ${count(p.totalFiles)}`;
  const size =
    p.totalBytes === null ? bytes(p.bytes) : `${bytes(p.bytes)} of ${bytes(p.totalBytes)}`;
  const extra = [
    p.skipped ? `${count(p.skipped)} skipped` : null,
    p.failed ? `${count(p.failed)} failed` : null,
  ].filter(Boolean);
  return `${count(p.files)}${of} files, ${size}${extra.length ? ` · ${extra.join(", ")}` : ""}`;
}

function outcomeText(job) {
  const where = `${job.target}:${job.destination || "/"}`;
  if (job.status === "completed") return `Restored to ${where}: ${progressLine(job)}.`;
  if (job.status === "cancelled")
    return `Cancelled: ${progressLine(job)} were restored to ${where}.`;
  return `The restore to ${where} failed: ${job.error || job.status}`;
}

export function restoreDialog(mountId, pathQs) {
  const title =
    pathQs.length === 1
      ? `Restore ${displayPath(pathQs[0])} to…`
      : `Restore ${count(pathQs.length)} items to…`;
  return dialog(
    title,
    ({ body, foot, close, dlg }) => {
      let timer = null;
      const stopPolling = () => {
        clearTimeout(timer);
        timer = null;
      };
      dlg.addEventListener("close", stopPolling);
      const targetSelect = h(
        "select",
        { id: "restore-target", class: "input", "aria-label": "Target", disabled: true },
        h("option", {}, "Loading targets…"),
      );
      const destination = h("input", {
        id: "restore-destination",
        class: "input",
        type: "text",
        placeholder: "a folder inside the target, e.g. restored/web01",
        autocomplete: "off",
        spellcheck: false,
      });
      let policy = "skip";
      const radio = ([value, label, hint]) =>
        h(
          "label",
          { title: hint },
          h("input", {
            type: "radio",
            name: "policy",
            value,
            checked: value === policy,
            onchange: () => {
              policy = value;
            },
          }),
          `${label} `,
          h("span", { class: "muted" }, `(${hint})`),
        );
      const note = h("div", { "aria-live": "polite" });
      const start = h(
        "button",
        { type: "button", class: "btn btn-primary", disabled: true, onclick: () => begin() },
        "Start restore",
      );
      const cancelBtn = h(
        "button",
        {
          type: "button",
          class: "btn",
          onclick: () => {
            stopPolling();
            close(null);
          },
        },
        "Cancel",
      );
      const list = h(
        "ul",
        { class: "sel-list", "aria-label": "Selected paths" },
        pathQs.map((p) =>
          h("li", {}, h("span", { class: "p", title: displayPath(p) }, displayPath(p))),
        ),
      );
      body.append(
        list,
        h(
          "div",
          { class: "form-row" },
          h("label", { for: "restore-target" }, h("strong", {}, "Target")),
          targetSelect,
        ),
        h(
          "div",
          { class: "form-row" },
          h("label", { for: "restore-destination" }, h("strong", {}, "Folder")),
          destination,
        ),
        h(
          "div",
          { class: "format-choice", role: "radiogroup", "aria-label": "When a name exists" },
          h("strong", {}, "When a name exists"),
          POLICIES.map(radio),
        ),
        note,
      );
      foot.append(cancelBtn, start);

      const loadTargets = async () => {
        note.replaceChildren();
        try {
          const targets = await api.targets();
          if (!targets.length) {
            targetSelect.replaceChildren(h("option", {}, "none configured"));
            note.replaceChildren(
              h(
                "p",
                { class: "muted", "data-no-targets": "" },
                "No restore targets are configured: an administrator declares them (setting restore_targets).",
              ),
            );
            return;
          }
          targetSelect.replaceChildren(
            ...targets.map((t) => h("option", { value: t.name }, targetLabel(t))),
          );
          targetSelect.disabled = false;
          start.disabled = false;
        } catch (err) {
          note.replaceChildren(
            errorPanel("The restore targets could not be read", err, loadTargets),
          );
        }
      };

      const begin = async () => {
        start.disabled = true;
        note.replaceChildren(
          h("span", { class: "muted" }, h("span", { class: "spinner" }), " Queueing the job…"),
        );
        let job;
        try {
          job = await api.restoreJob(
            mountId,
            pathQs,
            targetSelect.value,
            destination.value.trim(),
            policy,
          );
        } catch (err) {
          note.replaceChildren(errorPanel("The restore could not be started", err));
          start.disabled = false;
          return;
        }
        follow(job);
      };

      const follow = (first) => {
        const status = h("div", { class: "job-status" });
        const bar = h("i");
        const current = h("div", { class: "muted p" });
        const stopJob = h(
          "button",
          {
            type: "button",
            class: "btn",
            onclick: async () => {
              stopJob.disabled = true;
              try {
                show(await api.cancelJob(first.id));
              } catch (err) {
                note.replaceChildren(errorPanel("The job could not be cancelled", err));
                stopJob.disabled = false;
              }
            },
          },
          "Cancel job",
        );
        const done = h(
          "button",
          {
            type: "button",
            class: "btn btn-primary",
            onclick: () => {
              stopPolling();
              close(first.id);
            },
          },
          "Close",
        );
        body.replaceChildren(status, h("div", { class: "bar" }, bar), current, note);
        note.replaceChildren();
        foot.replaceChildren(stopJob, done);
        const show = (job) => {
          status.dataset.jobStatus = job.status;
          status.dataset.jobId = job.id;
          const p = job.progress;
          bar.style.width = `${ACTIVE.has(job.status) ? Math.max(0, Math.min(100, p.percent ?? 0)) : 100}%`;
          if (ACTIVE.has(job.status)) {
            status.textContent = `${job.status === "queued" ? "Queued" : "Restoring"}: ${progressLine(job)}${p.mbPerSecond ? ` · ${p.mbPerSecond.toFixed(1)} MB/s` : ""}`;
            current.textContent = p.current || "";
            return;
          }
          stopPolling();
          stopJob.remove();
          status.textContent = outcomeText(job);
          current.replaceChildren(...job.unkept.map((u) => h("div", {}, `Not kept: ${u}`)));
          if (job.status === "failed")
            note.replaceChildren(
              errorPanel("The restore failed", new Error(job.error || "failed")),
            );
        };
        const poll = async () => {
          try {
            const job = await api.job(first.id);
            show(job);
            if (!ACTIVE.has(job.status)) return;
          } catch (err) {
            note.replaceChildren(errorPanel("The job's progress could not be read", err));
          }
          timer = setTimeout(poll, POLL_MS);
        };
        show(first);
        if (ACTIVE.has(first.status)) timer = setTimeout(poll, POLL_MS);
      };

      loadTargets();
    },
    { width: "min(640px, 96vw)" },
  );
}
