// One run: its timings, every attempt, the error, the items; cancel and retry.
import { useEffect, useState } from "preact/hooks";
import { api, followRuns } from "../api.js";
import {
  Dialog,
  Duration,
  Loading,
  Problem,
  RunStatus,
  Time,
  notify,
  useLoad,
  useNow,
} from "../components.js";
import { html } from "../html.js";
import { progress } from "../live.js";
import { go, href } from "../router.js";

const FINAL = ["completed", "failed", "cancelled", "skipped"];
const REREAD_MS = [500, 2000, 5000];

// Follows the run. Once the feed listens the run is read again, so no change falls between
// the first read and the feed; each change the feed brings is shown at once, and the run is
// read again just after it (the recorder writes attempts, items and metadata just after the
// event that announces them). A run not recorded yet (just retried) is read again a few
// times after the feed listens, and when its events come.
function useRunChanges(id, schedule, reload, unknown, onChange) {
  useEffect(() => {
    const controller = new AbortController();
    const timers = [];
    const rereadSoon = () => {
      timers.forEach(clearTimeout);
      timers.length = 0;
      for (const ms of REREAD_MS) timers.push(setTimeout(reload, ms));
    };
    followRuns(
      schedule ? { scheduled_job_id: schedule } : {},
      (name, data) => {
        if (name === "ready") {
          reload();
          if (unknown) rereadSoon();
          return;
        }
        const change = name === "runs" && data.find((each) => each.job_id === id);
        if (!change) return;
        onChange(change);
        rereadSoon();
      },
      controller.signal,
    );
    return () => {
      controller.abort();
      timers.forEach(clearTimeout);
    };
  }, [id, schedule, unknown]);
}

function Attempts({ attempts }) {
  if (!attempts || !attempts.length) return html`<p class="muted">No attempt has ended yet.</p>`;
  return html`<div class="table-wrap" tabindex="0"><table>
    <caption class="visually-hidden">Attempts, oldest first</caption>
    <thead><tr>
      <th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Started</th>
      <th scope="col">Took</th><th scope="col" class="wide">Runner</th><th scope="col">Error</th>
    </tr></thead>
    <tbody>
      ${attempts.map((attempt) => html`<tr key=${attempt.attempt}>
        <th scope="row">${attempt.attempt}</th>
        <td><${RunStatus} run=${attempt} /></td>
        <td><${Time} at=${attempt.started_at} /></td>
        <td><${Duration} ms=${attempt.duration_ms} /></td>
        <td class="wide">${attempt.runner_id}</td>
        <td>${attempt.error_message
          ? html`<details><summary>${attempt.error_type || "error"}: ${attempt.error_message}</summary>
              <pre>${attempt.traceback || "no traceback"}</pre></details>`
          : html`<span class="muted">—</span>`}</td>
      </tr>`)}
    </tbody>
  </table></div>`;
}

export function RunPage({ session, id }) {
  const now = useNow(1000);
  const run = useLoad((signal) => api(`/api/v1/executions/${id}`, { signal }), [id]);
  const [dialog, setDialog] = useState(null);
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const [change, setChange] = useState(null);
  const unknown = Boolean(run.error && run.error.code === "unknown_job");
  useRunChanges(id, run.data && run.data.scheduled_job_id, run.reload, unknown, setChange);

  if (unknown) {
    return html`<h1>Run ${id}</h1><${Problem} error=${run.error} />
      <p class="muted" role="status">Waiting for the recorder: the page shows the run once it is recorded.</p>`;
  }
  if (run.error) return html`<h1>Run ${id}</h1><${Problem} error=${run.error} />`;
  if (!run.data) return html`<h1>Run ${id}</h1><${Loading} />`;
  const newer = change && change.job_id === id && progress(change) > progress(run.data);
  const job = newer ? { ...run.data, ...change } : run.data;
  const final = FINAL.includes(job.status);
  const retryable = job.status === "failed" || job.status === "cancelled";

  async function act(request, done) {
    setBusy(true);
    setProblem(null);
    try {
      done(await request());
    } catch (error) {
      setProblem(error);
    }
    setBusy(false);
  }

  const cancel = () =>
    act(
      () => api(`/api/v1/jobs/${id}/cancel`, { method: "POST", body: { reason: reason || null } }),
      (reply) => {
        setDialog(null);
        notify(`Cancel asked: the runner found the run ${reply.found}.`);
        run.reload();
      },
    );
  const retry = () =>
    act(
      () => api(`/api/v1/jobs/${id}/retry`, { method: "POST" }),
      (reply) => {
        notify(`Retried as ${reply.job_id}.`);
        go(`/runs/${reply.job_id}`);
      },
    );

  return html`
    <div class="heading">
      <h1>Run <span class="id">${job.job_id}</span></h1>
      <${RunStatus} run=${job} />
    </div>
    ${session.canWrite
      ? html`<div class="actions">
          ${!final ? html`<button type="button" class="danger" disabled=${busy}
            onClick=${() => setDialog("cancel")}>Cancel run</button>` : null}
          ${retryable ? html`<button type="button" disabled=${busy} onClick=${retry}>Retry</button>` : null}
        </div>`
      : null}
    <${Problem} error=${problem} />
    <section aria-labelledby="timings">
      <h2 id="timings">Timings</h2>
      <dl class="facts">
        <dt>Schedule</dt><dd>${job.scheduled_job_id
          ? html`<a href=${href(`/schedules/${job.scheduled_job_id}`)}>${job.scheduled_job_id}</a>`
          : "ad hoc"}</dd>
        <dt>Trigger</dt><dd>${job.trigger}${job.retry_of
          ? html` of <a href=${href(`/runs/${job.retry_of}`)}>${job.retry_of}</a>` : null}</dd>
        <dt>Scraper</dt><dd>${job.scraper}</dd>
        <dt>Created</dt><dd><${Time} at=${job.created_at} relativeTo=${now} /></dd>
        <dt>Slot</dt><dd><${Time} at=${job.scheduled_for} /></dd>
        <dt>Started</dt><dd><${Time} at=${job.started_at} relativeTo=${now} /></dd>
        <dt>Completed</dt><dd><${Time} at=${job.completed_at} relativeTo=${now} /></dd>
        <dt>Took</dt><dd><${Duration} ms=${job.duration_ms} /></dd>
        <dt>Attempt</dt><dd>${job.attempt}</dd>
        <dt>Runner</dt><dd>${job.runner_id || html`<span class="muted">—</span>`}</dd>
        ${job.cancelled_by ? html`<dt>Cancelled by</dt><dd>${job.cancelled_by}</dd>` : null}
      </dl>
    </section>
    <section aria-labelledby="items">
      <h2 id="items">Items</h2>
      <dl class="facts">
        <dt>Scraped</dt><dd data-testid="items-scraped">${job.properties_scraped ?? "—"}</dd>
        <dt>Saved</dt><dd data-testid="items-saved">${job.properties_saved ?? "—"}</dd>
      </dl>
    </section>
    ${job.error_message
      ? html`<section aria-labelledby="error">
          <h2 id="error">Error</h2>
          <p class="error-text">${job.error_type ? html`<strong>${job.error_type}</strong>: ` : null}${job.error_message}</p>
        </section>`
      : null}
    <section aria-labelledby="attempts">
      <h2 id="attempts">Attempts</h2>
      <${Attempts} attempts=${job.attempts} />
    </section>
    ${job.metadata && Object.keys(job.metadata).length
      ? html`<section aria-labelledby="metadata">
          <h2 id="metadata">What the scraper reported</h2>
          <pre>${JSON.stringify(job.metadata, null, 2)}</pre>
        </section>`
      : null}
    <section aria-labelledby="params">
      <h2 id="params">Params</h2>
      <pre>${JSON.stringify(job.params || {}, null, 2)}</pre>
    </section>
    <${Dialog} title="Cancel this run?" open=${dialog === "cancel"} onClose=${() => setDialog(null)}>
      <form method="dialog" onSubmit=${(event) => {
        event.preventDefault();
        cancel();
      }}>
        <label for="cancel-reason">Reason (kept with the run)</label>
        <input id="cancel-reason" value=${reason} maxlength="500" onInput=${(e) => setReason(e.target.value)} />
        <div class="actions">
          <button type="submit" class="danger" disabled=${busy}>Cancel run</button>
          <button type="button" class="secondary" onClick=${() => setDialog(null)}>Keep it running</button>
        </div>
      </form>
    </${Dialog}>
  `;
}
