// The schedule page's timeline: GET /scheduled-jobs/{id}/explain over a range, each nominal
// slot with what happened to it and why, then the runs and decisions that belong to no slot.
// Every outcome is said in words; colour only repeats it.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Loading, Problem, StatusBadge, Time, useLoad } from "../components.js";
import { html } from "../html.js";
import { href } from "../router.js";
import { isoToLocalInput, localInputToIso } from "../times.js";

const HOUR = 3600 * 1000;
const PRESETS = [
  ["1h", "Last hour", HOUR],
  ["6h", "Last 6 h", 6 * HOUR],
  ["1d", "Last day", 24 * HOUR],
];

// The badge of each outcome: its words, and the class that colours it.
const OUTCOMES = {
  overlap_skipped: ["skipped: overlap", "skipped"],
  catchup_merged: ["merged by catch-up", "merged"],
  catchup_dropped: ["dropped by catch-up", "dropped"],
  paused: ["skipped: paused", "paused"],
  max_runs_reached: ["max runs reached", "skipped"],
  upcoming: ["upcoming", "upcoming"],
  no_record: ["no record", "no-record"],
};
const NO_SLOT = {
  dst_gap_skipped: "no slot: DST gap",
  dst_fold_skipped: "no slot: DST fold",
  before_start: "before start_at",
  after_end: "after end_at",
  outside_active_hours: "outside active hours",
};
const MOVES = { dst_gap: "moved: DST gap", jitter: "jittered" };
const WORDS = {
  fired: "fired",
  not_a_slot: "no slot",
  ...Object.fromEntries(Object.entries(OUTCOMES).map(([outcome, [words]]) => [outcome, words])),
};

function lastSpan(key) {
  const [, , span] = PRESETS.find(([name]) => name === key);
  const to = new Date();
  return { preset: key, from: new Date(to.getTime() - span).toISOString(), to: to.toISOString() };
}

function OutcomeBadge({ entry }) {
  if (entry.outcome === "fired") {
    const status = (entry.run && entry.run.status) || "unknown";
    return html`<${StatusBadge} status=${status} label=${`fired: ${status}`} />`;
  }
  if (entry.outcome === "not_a_slot") {
    return html`<${StatusBadge} status="no-slot" label=${NO_SLOT[entry.fate] || "no slot"} />`;
  }
  const [label, kind] = OUTCOMES[entry.outcome] || [entry.outcome, "unknown"];
  return html`<${StatusBadge} status=${kind} label=${label} />`;
}

function JobLink({ jobId }) {
  return html`<a class="job" href=${href(`/runs/${jobId}`)}>${jobId}</a>`;
}

function Slot({ entry, zone }) {
  const wall = entry.nominal.replace("T", " ").slice(0, 19);
  const kind = entry.run && entry.outcome === "fired" ? entry.run.status : entry.outcome;
  return html`<li class=${`slot slot-${kind}`} data-outcome=${entry.outcome}>
    <span class="slot-head">
      ${entry.nominal_at
        ? html`<time class="wall" datetime=${entry.nominal_at} title=${`${wall} in ${zone}`}>${wall}</time>`
        : html`<span class="wall">${wall}</span>`}
      ${entry.second_pass ? html` <span class="muted small">(second pass)</span>` : null}
      <${OutcomeBadge} entry=${entry} />
      ${entry.moved_by.map((move) => html`<${StatusBadge} key=${move} status="moved" label=${MOVES[move] || move} />`)}
      ${entry.run ? html`<${JobLink} jobId=${entry.run.job_id} />` : null}
    </span>
    <span class="why">${entry.why}</span>
  </li>`;
}

function Counts({ counts }) {
  const present = Object.entries(counts).filter(([, count]) => count > 0);
  if (!present.length) return html`<p class="muted">No nominal slot in the range.</p>`;
  return html`<ul class="counts" aria-label="Slots by outcome">
    ${present.map(([outcome, count]) => html`<li key=${outcome}><strong>${count}</strong> ${WORDS[outcome] || outcome}</li>`)}
  </ul>`;
}

function OtherRuns({ runs, zone }) {
  if (!runs.length) return html`<p class="muted">None.</p>`;
  return html`<ul class="apart">
    ${runs.map((run) => html`<li key=${run.job_id}>
      <${JobLink} jobId=${run.job_id} /> <${StatusBadge} status=${run.status} />
      <span class="muted">${run.trigger}, <${Time} at=${run.fired_at} zone=${zone} /></span>
      ${run.why ? html`<span class="why">${run.why}</span>` : null}
    </li>`)}
  </ul>`;
}

function OtherDecisions({ decisions, zone }) {
  if (!decisions.length) return html`<p class="muted">None.</p>`;
  return html`<ul class="apart">
    ${decisions.map((decision, index) => html`<li key=${index}>
      <span class="label">${decision.kind}</span> <${Time} at=${decision.at} zone=${zone} />
      ${decision.job_id ? html` <${JobLink} jobId=${decision.job_id} />` : null}
      <span class="why">${decision.why || decision.note || ""}</span>
    </li>`)}
  </ul>`;
}

function Explained({ explanation }) {
  const zone = explanation.timezone;
  const newestFirst = [...explanation.slots].reverse();
  return html`
    <${Counts} counts=${explanation.counts} />
    ${explanation.notes.map((note) => html`<p class="note" key=${note}>${note}</p>`)}
    ${newestFirst.length
      ? html`<div class="timeline-box" tabindex="0" role="region" aria-label="Slots, newest first">
          <ol class="timeline" reversed>${newestFirst.map((entry) => html`<${Slot}
            key=${`${entry.nominal}|${entry.second_pass}`} entry=${entry} zone=${zone} />`)}</ol>
        </div>
        <p class="muted small">Wall times in ${zone}, newest first.</p>`
      : null}
    <h3>Other runs</h3>
    <${OtherRuns} runs=${explanation.other_runs} zone=${zone} />
    <h3>Other decisions</h3>
    <${OtherDecisions} decisions=${explanation.other_decisions} zone=${zone} />`;
}

function Failure({ error }) {
  if (error.code !== "too_many_slots") return html`<${Problem} error=${error} />`;
  return html`<div class="problem" role="alert" data-testid="too-many-slots">
    <strong>Too many slots to show. </strong>${error.message}.
    Choose a shorter range: a preset above, or closer From and To times.
  </div>`;
}

export function Timeline({ id }) {
  const [range, setRange] = useState(() => lastSpan("1h"));
  const [draft, setDraft] = useState(() => ({ from: isoToLocalInput(range.from), to: isoToLocalInput(range.to) }));
  const loaded = useLoad(
    (signal) => api(`/scheduled-jobs/${id}/explain`, { params: { from: range.from, to: range.to }, signal }),
    [id, range.from, range.to],
  );
  const choose = (next) => {
    setRange(next);
    setDraft({ from: isoToLocalInput(next.from), to: isoToLocalInput(next.to) });
  };
  const change = (field) => (event) => setDraft({ ...draft, [field]: event.target.value });
  return html`
    <form class="filters" aria-label="Timeline range" onSubmit=${(event) => {
      event.preventDefault();
      setRange({ preset: null, from: localInputToIso(draft.from), to: localInputToIso(draft.to) });
    }}>
      <div class="actions" role="group" aria-label="Preset ranges">
        ${PRESETS.map(([key, label]) => html`<button type="button" key=${key} class="secondary"
          aria-pressed=${range.preset === key ? "true" : "false"} onClick=${() => choose(lastSpan(key))}>${label}</button>`)}
      </div>
      <div class="field">
        <label for="timeline-from">From (your zone)</label>
        <input id="timeline-from" type="datetime-local" required value=${draft.from} onInput=${change("from")} />
      </div>
      <div class="field">
        <label for="timeline-to">To (your zone)</label>
        <input id="timeline-to" type="datetime-local" required value=${draft.to} onInput=${change("to")} />
      </div>
      <button type="submit">Show</button>
    </form>
    ${loaded.loading ? html`<${Loading} what="Explaining the range" />` : null}
    ${loaded.error ? html`<${Failure} error=${loaded.error} />` : null}
    ${loaded.data && !loaded.error ? html`<${Explained} explanation=${loaded.data} />` : null}`;
}
