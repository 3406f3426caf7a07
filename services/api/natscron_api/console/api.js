// Calls to the natscron API, on this origin, with the tab's bearer token.
//
// The token is kept in sessionStorage: for this tab only, gone when it closes. Every call
// sends it as `Authorization: Bearer ...`, the live run feed too: it is read with fetch
// and a stream reader rather than EventSource, which cannot send headers, so the token
// never has to travel in a URL (and so in logs and history).

const TOKEN_KEY = "natscron.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const bearer = token();
  return bearer ? { ...extra, Authorization: `Bearer ${bearer}` } : extra;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function api(path, { method = "GET", body, params, signal } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path + query(params), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "the API does not answer; is natscron running?");
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = parsed && parsed.error;
    throw new ApiError(
      response.status,
      error ? error.code : `http_${response.status}`,
      error ? error.message : `${response.status} ${response.statusText}`,
    );
  }
  return parsed;
}

const RECONNECT_MS = 2000;

// Follows GET /api/v1/events/runs: calls `onEvent(name, data)` for each server-sent event
// (`ready`, `runs`, `overrun`), and `onEvent("lost")` when the stream breaks; reconnects
// after a pause until `signal` aborts. A client re-reads its list after each `ready`.
export async function followRuns(params, onEvent, signal) {
  while (!signal.aborted) {
    try {
      const response = await fetch("/api/v1/events/runs" + query(params), {
        headers: headers({ Accept: "text/event-stream" }),
        signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const error = body && body.error;
        onEvent("failed", new ApiError(response.status, error ? error.code : "", error ? error.message : ""));
        if (response.status === 401 || response.status === 403) return;
      } else {
        await readEvents(response.body, onEvent, signal);
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    onEvent("lost", null);
    await pause(RECONNECT_MS, signal);
  }
}

async function readEvents(body, onEvent, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// Validation errors name their fields: `body.cron_expression: ...; body.name: ...`
// (natscron_shared.contract.errors.problems_sentence). Returns [[field, message], ...],
// the field without `body.` (null for the body as a whole).
export function fieldProblems(message) {
  const problems = [];
  for (const part of message.split("; ")) {
    const match = /^(?:body|spec)(?:\.([\w.[\]-]+))?: (.*)$/s.exec(part);
    if (match) problems.push([match[1] || null, match[2]]);
    else if (problems.length) problems[problems.length - 1][1] += `; ${part}`;
    else problems.push([null, part]);
  }
  return problems;
}
