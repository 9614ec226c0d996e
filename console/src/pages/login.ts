import { useState } from 'preact/hooks';
import { ApiFailure, call, type Me } from '../api.ts';
import { html } from '../html.ts';

/** The token is sent once, to /console/login, and exchanged for an HttpOnly session cookie; it is not kept. */
export function Login(props: { onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('token') as HTMLInputElement;
    try {
      const me = await call<Me>('POST', '/console/login', { token: input.value });
      input.value = '';
      props.onSignedIn(me);
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : String(err));
    }
  };
  return html`<main id="main" class="login">
    <h1>keygate console</h1>
    <form onSubmit=${submit}>
      <label for="token">Admin or operator token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="primary">Sign in</button>
    </form>
    <p class="muted">The token is exchanged for a session cookie that ends after a short time or when you sign out.</p>
  </main>`;
}
