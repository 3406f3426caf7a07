// The scheduler as a whole: which ticker leads and since when, every ticker and runner,
// the lag of each runner lane, the recorder's backlog; links to Grafana when configured.
import { useEffect } from "preact/hooks";
import { api } from "../api.js";
import { Loading, Percent, Problem, StatusBadge, Time, useLoad, useNow } from "../components.js";
import { html } from "../html.js";

const REFRESH_MS = 15000;

function Lag({ consumers, caption }) {
  return html`<div class="table-wrap" tabindex="0"><table>
    <caption>${caption}</caption>
    <thead><tr><th scope="col">Consumer</th><th scope="col">Waiting</th><th scope="col">Being handled</th>
      <th scope="col" class="wide">Redelivered</th><th scope="col" class="wide">Pulls waiting</th></tr></thead>
    <tbody>${consumers.map((lag) => html`<tr key=${lag.consumer}>
      <th scope="row">${lag.consumer}</th><td>${lag.pending}</td><td>${lag.ack_pending}</td>
      <td class="wide">${lag.redelivered}</td><td class="wide">${lag.waiting_pulls}</td></tr>`)}</tbody>
  </table></div>`;
}

// The recorder is ready when one pulls from its consumers; its backlog is what waits.
function Recorder({ consumers }) {
  const backlog = consumers.reduce((sum, lag) => sum + lag.pending + lag.ack_pending, 0);
  const pulling = consumers.every((lag) => lag.waiting_pulls > 0 || lag.ack_pending > 0);
  return html`<p>
    <${StatusBadge} status=${pulling ? "ready" : "not-ready"} label=${pulling ? "recording" : "no recorder pulling"} />
    ${" "}Backlog: <strong data-testid="recorder-backlog">${backlog}</strong> messages not yet recorded.
  </p>`;
}

export function SystemPage({ session }) {
  const now = useNow(1000);
  const status = useLoad((signal) => api("/api/v1/scheduler/status", { signal }), []);
  const metrics = useLoad((signal) => api("/api/v1/scheduler/metrics", { signal }), []);
  useEffect(() => {
    const timer = setInterval(() => {
      status.reload();
      metrics.reload();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const grafana = session.grafana_url && session.grafana_url.replace(/\/$/, "");
  const s = status.data;
  const m = metrics.data;
  return html`
    <div class="heading">
      <h1>System</h1>
      <button type="button" class="secondary" onClick=${() => {
        status.reload();
        metrics.reload();
      }}>Refresh</button>
    </div>
    ${grafana
      ? html`<p class="links">Dashboards: <a href=${`${grafana}/d/natscron`} target="_blank" rel="noopener noreferrer">natscron in Grafana</a></p>`
      : null}
    <${Problem} error=${status.error} />
    ${!s ? html`<${Loading} what="Asking the tickers" />` : html`
      <section aria-labelledby="leader-heading">
        <h2 id="leader-heading">Leader</h2>
        ${s.leader
          ? html`<p data-testid="leader"><strong>${s.leader}</strong> leads since <${Time} at=${s.leader_since} relativeTo=${now} />.</p>`
          : html`<p class="problem" role="alert">No ticker leads: nothing fires.</p>`}
        <p>${s.schedules_loaded} schedules in KV.</p>
        <div class="table-wrap" tabindex="0"><table>
          <caption>Tickers that answered</caption>
          <thead><tr><th scope="col">Ticker</th><th scope="col">Leads</th><th scope="col" class="wide">Schedules</th>
            <th scope="col" class="wide">Last check</th><th scope="col" class="wide">Slots fired</th></tr></thead>
          <tbody>${s.tickers.map((ticker) => html`<tr key=${ticker.ticker_id}>
            <th scope="row">${ticker.ticker_id}</th><td>${ticker.leading ? "yes" : "no"}</td>
            <td class="wide">${ticker.schedules_loaded ?? "—"}</td>
            <td class="wide"><${Time} at=${ticker.last_check} relativeTo=${now} /></td>
            <td class="wide">${ticker.slots_fired ?? "—"}</td></tr>`)}</tbody>
        </table></div>
      </section>
      <section aria-labelledby="runners-heading">
        <h2 id="runners-heading">Runners</h2>
        ${s.runners.length
          ? html`<ul>${s.runners.map((runner) => html`<li key=${runner}>${runner}</li>`)}</ul>`
          : html`<p class="problem" role="alert">No runner advertises a scraper.</p>`}
        <dl class="facts">${Object.entries(s.pools).map(([pool, scrapers]) => html`
          <dt>Pool ${pool}</dt><dd>${scrapers.join(", ")}</dd>`)}</dl>
        <${Lag} consumers=${s.lanes} caption="Runner lanes (stream JOBS)" />
      </section>
      <section aria-labelledby="recorder-heading">
        <h2 id="recorder-heading">Recorder</h2>
        <${Recorder} consumers=${s.recorder} />
        <${Lag} consumers=${s.recorder} caption="Recorder consumers" />
      </section>`}
    <section aria-labelledby="totals-heading">
      <h2 id="totals-heading">Totals</h2>
      <${Problem} error=${metrics.error} />
      ${!m ? html`<${Loading} what="Counting" />` : html`<dl class="facts">
        <dt>Schedules</dt><dd>${m.scheduled_jobs.active} active, ${m.scheduled_jobs.paused} paused, ${m.scheduled_jobs.inactive} deleted</dd>
        <dt>Runs queued</dt><dd>${m.jobs.queued}</dd>
        <dt>Runs running</dt><dd>${m.jobs.running}</dd>
        <dt>Last 24 h</dt><dd>${m.last_24h.runs} runs, <${Percent} value=${m.last_24h.success_rate} /> succeeded</dd>
        <dt>All time</dt><dd>${m.all_time.runs} runs, <${Percent} value=${m.all_time.success_rate} /> succeeded</dd>
      </dl>`}
    </section>
  `;
}
