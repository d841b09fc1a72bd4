/**
 * The token form, shown when the agent answers 401: the token is checked
 * against the agent before it is kept (for this tab's session only), and a
 * refusal says so in an alert a screen reader announces.
 */
import { useState } from 'preact/hooks';

export function TokenPrompt({ message, onToken }: { message?: string; onToken: (token: string) => Promise<void> }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="gate">
      <h1>hyperkern</h1>
      <form
        aria-labelledby="token-title"
        onSubmit={async (e) => {
          e.preventDefault();
          if (token.trim() === '') return;
          setBusy(true);
          try {
            await onToken(token.trim());
          } finally {
            setBusy(false);
          }
        }}
      >
        <h2 id="token-title">This agent needs a token</h2>
        <p>Enter one of the bearer tokens from the agent's configuration. It is kept for this browser tab only.</p>
        <label for="token">Bearer token</label>
        <input id="token" name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} autoFocus />
        {message && (
          <p class="error" role="alert">
            {message}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Use token'}
        </button>
      </form>
    </main>
  );
}
