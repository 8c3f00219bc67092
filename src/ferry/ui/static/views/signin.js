// Sign-in: paste a server token (ferry ui puts its own token in the first URL instead).
import { html, useState } from "../vendor/htm-preact-standalone.module.js";
import { get, setToken } from "../api.js";
import { navigate, useTitle } from "../common.js";

export function SignInPage() {
  useTitle("Sign in");
  const [token, setValue] = useState("");
  const [error, setError] = useState(null);
  const next = new URLSearchParams(location.search).get("next") || "/";
  const submit = async (event) => {
    event.preventDefault();
    setToken(token.trim());
    try {
      await get("/ui/info", { retry: false });
      navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    } catch (err) {
      setToken("");
      setError(err.status === 401 ? "This token was refused: check it and try again." : err.message);
    }
  };
  return html`<section class="signin" data-testid="signin">
    <h1>Sign in</h1>
    <p>Paste your ferry token (from <code>ferry ui</code>'s address, or the one your server's administrator gave you).</p>
    <form onSubmit=${submit}>
      <label for="token">Token</label>
      <input id="token" type="password" autocomplete="off" value=${token} onInput=${(e) => setValue(e.target.value)} required />
      <button type="submit" class="primary">Sign in</button>
    </form>
    ${error && html`<p class="filter-error" role="alert">${error}</p>`}
  </section>`;
}
