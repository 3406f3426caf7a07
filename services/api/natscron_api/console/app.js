// The console's shell: who is signed in, the navigation, and the page of the route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, keepToken, token } from "./api.js";
import { Loading, Notices } from "./components.js";
import { html } from "./html.js";
import { useRoute } from "./router.js";
import { RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { ScheduleEditor } from "./pages/editor.js";
import { SchedulePage } from "./pages/schedule.js";
import { SchedulesPage } from "./pages/schedules.js";
import { SignIn } from "./pages/signin.js";
import { SystemPage } from "./pages/system.js";

function page(route, session) {
  const [section, id, action] = route.parts;
  const props = { session, params: route.params };
  if (section === "schedules" && id === undefined) return html`<${SchedulesPage} ...${props} />`;
  if (section === "schedules" && action === "edit") return html`<${ScheduleEditor} ...${props} id=${id} />`;
  if (section === "schedules") return html`<${SchedulePage} ...${props} id=${id} />`;
  if (section === "new") return html`<${ScheduleEditor} ...${props} />`;
  if (section === "runs" && id === undefined) return html`<${RunsPage} ...${props} />`;
  if (section === "runs") return html`<${RunPage} ...${props} id=${id} />`;
  if (section === "system") return html`<${SystemPage} ...${props} />`;
  return html`<h1>Not found</h1><p>No page here. <a href="#/schedules">Schedules</a></p>`;
}

const SECTIONS = [
  ["schedules", "Schedules"],
  ["runs", "Runs"],
  ["system", "System"],
];

function Shell({ session, onSignOut }) {
  const route = useRoute();
  const here = route.parts[0] || "schedules";
  useEffect(() => {
    const main = document.getElementById("main");
    if (main && document.activeElement === document.body) main.focus({ preventScroll: true });
  }, [route.parts.join("/")]);
  return html`
    <a class="skip" href="#main" onClick=${(event) => {
      event.preventDefault();
      document.getElementById("main").focus();
    }}>Skip to content</a>
    <header class="top">
      <span class="brand">natscron</span>
      <nav aria-label="Sections">
        <ul>
          ${SECTIONS.map(
            ([key, label]) => html`<li>
              <a href=${`#/${key}`} aria-current=${here === key ? "page" : null}>${label}</a>
            </li>`,
          )}
        </ul>
      </nav>
      <span class="who">
        ${session.auth === "none"
          ? html`<span title="NATSCRON_API_AUTH=none">open access</span>`
          : html`<span>${session.name} (${session.scopes.includes("write") ? "read, write" : "read only"})</span>
              <button type="button" class="link" onClick=${onSignOut}>Sign out</button>`}
      </span>
    </header>
    <main id="main" tabindex="-1">${page(route, session)}</main>
    <${Notices} />
  `;
}

function App() {
  const [session, setSession] = useState(null);
  const [problem, setProblem] = useState(null);
  const [checking, setChecking] = useState(true);

  async function check() {
    setChecking(true);
    try {
      const who = await api("/api/v1/whoami");
      setSession({ ...who, canWrite: who.scopes.includes("write") });
      setProblem(null);
    } catch (error) {
      setSession(null);
      setProblem(error.status === 401 && !token() ? null : error);
    }
    setChecking(false);
  }

  useEffect(() => {
    check();
  }, []);

  if (checking) return html`<main id="main"><${Loading} what="Connecting to the API" /></main>`;
  if (!session) {
    return html`<main id="main" tabindex="-1">
      <${SignIn}
        problem=${problem}
        onToken=${(value) => {
          keepToken(value);
          check();
        }}
      />
    </main>`;
  }
  return html`<${Shell}
    session=${session}
    onSignOut=${() => {
      keepToken(null);
      setSession(null);
      setProblem(null);
    }}
  />`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
