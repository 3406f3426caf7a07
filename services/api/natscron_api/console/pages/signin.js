// Sign-in with a bearer token, kept for this tab only.
import { useState } from "preact/hooks";
import { Problem } from "../components.js";
import { html } from "../html.js";

export function SignIn({ problem, onToken }) {
  const [value, setValue] = useState("");
  return html`<section class="signin">
    <h1>natscron console</h1>
    <p>
      This API needs a bearer token: a static token from <code>NATSCRON_API_TOKENS</code> or a
      JWT. A <em>read</em> token shows everything; a <em>write</em> token can also change it. The
      token stays in this tab only, until it closes or you sign out.
    </p>
    <${Problem} error=${problem} />
    <form
      onSubmit=${(event) => {
        event.preventDefault();
        if (value.trim()) onToken(value.trim());
      }}
    >
      <label for="token">Bearer token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="off"
        required
        value=${value}
        onInput=${(event) => setValue(event.target.value)}
      />
      <button type="submit">Sign in</button>
    </form>
  </section>`;
}
