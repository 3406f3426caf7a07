// Small pieces every page uses: times, statuses, the run-history strip, dialogs, notices.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { duration, inZone, relative } from "./times.js";

// Re-renders its users every `ms`, so relative times stay true.
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

// A moment in the viewer's zone; its title shows it in `zone` (a schedule's) and UTC.
export function Time({ at, zone, relativeTo }) {
  if (!at) return html`<span class="muted">—</span>`;
  const where = zone && zone !== "UTC" ? `${inZone(at, zone)} (${zone})\n` : "";
  const title = `${where}${inZone(at, "UTC")}`;
  return html`<time datetime=${at} title=${title}>${inZone(at)}${relativeTo
    ? html` <span class="relative">(${relative(at, relativeTo)})</span>`
    : null}</time>`;
}

export function Duration({ ms }) {
  return ms === null || ms === undefined ? html`<span class="muted">—</span>` : duration(ms);
}

const RETRYING = "retrying";

// What a run's status means to people: a pending run past its first attempt is retrying.
export function runState(run) {
  if (run.status === "pending" && run.attempt > 1) return RETRYING;
  return run.status;
}

export function StatusBadge({ status, label }) {
  return html`<span class=${`badge badge-${status || "unknown"}`}>${label || status || "unknown"}</span>`;
}

export function RunStatus({ run }) {
  const state = runState(run);
  if (state === RETRYING) {
    const of = run.max_retries ? ` of ${run.max_retries + 1}` : "";
    return html`<${StatusBadge} status="retrying" label=${`retrying: attempt ${run.attempt}${of}`} />`;
  }
  return html`<${StatusBadge} status=${state} />`;
}

const MARKS = { completed: "✓", failed: "✗", cancelled: "–", skipped: "·" };

// The runs that finished last, oldest on the left; each mark says its status in text too.
export function RunStrip({ runs, zone }) {
  if (!runs || !runs.length) return html`<span class="muted">no runs yet</span>`;
  const oldestFirst = [...runs].reverse();
  const counts = {};
  for (const run of runs) counts[run.status] = (counts[run.status] || 0) + 1;
  const summary = Object.entries(counts)
    .map(([status, count]) => `${count} ${status}`)
    .join(", ");
  return html`<span class="strip" role="img" aria-label=${`last ${runs.length} runs: ${summary}`}>
    ${oldestFirst.map(
      (run) => html`<span
        class=${`mark mark-${run.status}`}
        title=${`${run.status}, ${inZone(run.completed_at, zone)}${run.duration_ms != null ? `, ${duration(run.duration_ms)}` : ""}`}
        >${MARKS[run.status] || "?"}</span
      >`,
    )}
  </span>`;
}

export function Percent({ value }) {
  if (value === null || value === undefined) return html`<span class="muted">—</span>`;
  return `${(value * 100).toFixed(value === 1 || value === 0 ? 0 : 1)}%`;
}

export function Problem({ error }) {
  if (!error) return null;
  return html`<div class="problem" role="alert">
    <strong>${error.code ? `${error.code}: ` : ""}</strong>${error.message}
  </div>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="loading" role="status">${what}…</p>`;
}

// A modal <dialog>: focus moves into it, Escape closes it, and focus returns after.
export function Dialog({ title, open, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return html`<dialog ref=${ref} aria-labelledby="dialog-title" onClose=${onClose}>
    <h2 id="dialog-title">${title}</h2>
    ${open ? children : null}
  </dialog>`;
}

// Announces results of actions to screen readers and shows them for a while.
let announce = () => {};

export function notify(text) {
  announce(text);
}

export function Notices() {
  const [text, setText] = useState("");
  useEffect(() => {
    let timer;
    announce = (value) => {
      setText(value);
      clearTimeout(timer);
      timer = setTimeout(() => setText(""), 8000);
    };
    return () => clearTimeout(timer);
  }, []);
  return html`<div class="notice" role="status" aria-live="polite">${text}</div>`;
}

// Runs a request, holding its result, error and whether it is under way.
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((previous) => ({ ...previous, loading: true }));
    load(controller.signal)
      .then((data) => setState({ data, error: null, loading: false }))
      .catch((error) => {
        if (error.name !== "AbortError") setState({ data: null, error, loading: false });
      });
    return () => controller.abort();
  }, [...deps, round]);
  return { ...state, reload: () => setRound((n) => n + 1) };
}
