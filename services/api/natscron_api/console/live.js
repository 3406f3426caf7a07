// A list of runs that keeps itself current: the API's run feed (server-sent events from
// stream EVENTS, batched every 250 ms) updates rows and adds new runs without a reload.
//
// Order of things: listen first, and read the list once the feed says it listens
// (`ready`), so no change falls between the two; changes that arrive before the list are
// applied to it after. A change replaces what a row shows only if it is as advanced, by
// (attempt, status rank), as what the row shows.
import { useEffect, useState } from "preact/hooks";
import { api, followRuns } from "./api.js";

const MAX_ROWS = 200;
const RANK = { pending: 0, running: 1 };

// How far a run has come: a change older than what is shown is left out.
export function progress(run) {
  return (run.attempt || 1) * 3 + (RANK[run.status] ?? 2);
}

function newestFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.job_id < b.job_id ? 1 : -1;
}

function wanted(run, filters) {
  if (filters.scheduled_job_id && run.scheduled_job_id !== filters.scheduled_job_id) return false;
  if (filters.status && run.status !== filters.status) return false;
  if (filters.trigger && run.trigger !== filters.trigger) return false;
  const created = new Date(run.created_at).getTime();
  if (filters.since && created < new Date(filters.since).getTime()) return false;
  if (filters.until && created >= new Date(filters.until).getTime()) return false;
  return true;
}

function applied(rows, changes, filters, limit) {
  const byId = new Map(rows.map((row) => [row.job_id, row]));
  const fresh = new Set();
  for (const change of changes) {
    const known = byId.get(change.job_id);
    if (known ? progress(change) >= progress(known) : wanted(change, filters)) {
      byId.set(change.job_id, { ...known, ...change });
      fresh.add(change.job_id);
    }
  }
  return {
    rows: [...byId.values()].sort(newestFirst).slice(0, Math.max(limit, MAX_ROWS)),
    fresh,
  };
}

// {rows, fresh (job ids just changed), state: connecting | live | reconnecting, error}
export function useLiveRuns(filters, limit = 50) {
  const [view, setView] = useState({ rows: [], fresh: new Set(), state: "connecting", error: null });
  const key = JSON.stringify(filters);

  useEffect(() => {
    const controller = new AbortController();
    let rows = null;
    let early = [];
    let reading = 0;

    async function readList() {
      const round = ++reading;
      rows = null;
      try {
        const page = await api("/api/v1/executions", {
          params: { ...filters, limit },
          signal: controller.signal,
        });
        if (round !== reading) return;
        const result = applied(page.executions, early, filters, limit);
        rows = result.rows;
        early = [];
        setView({ rows, fresh: new Set(), state: "live", error: null });
      } catch (error) {
        if (error.name !== "AbortError") setView((v) => ({ ...v, error }));
      }
    }

    followRuns(
      filters.scheduled_job_id ? { scheduled_job_id: filters.scheduled_job_id } : {},
      (name, data) => {
        if (name === "ready") readList();
        else if (name === "runs") {
          if (rows === null) early.push(...data);
          else {
            const result = applied(rows, data, filters, limit);
            rows = result.rows;
            setView({ rows, fresh: result.fresh, state: "live", error: null });
          }
        } else if (name === "lost" || name === "overrun") {
          setView((v) => ({ ...v, state: "reconnecting" }));
        } else if (name === "failed") {
          setView((v) => ({ ...v, state: "reconnecting", error: data }));
        }
      },
      controller.signal,
    );
    return () => controller.abort();
  }, [key, limit]);

  return view;
}
