/**
 * The console's shell: the token gate, the header (navigation, the event
 * stream's state), and the view of the current hash route. Views get the
 * API client and the live stores from ShellContext (shell.ts).
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiClient, ApiError } from './api/client.js';
import { GuestView } from './guest/index.js';
import { href, useRoute, type Route } from './router.js';
import { ShellContext, useShell, type Shell } from './shell.js';
import { LiveSync } from './store/live-sync.js';
import { useStore } from './store/observable.js';
import { CreateView } from './views/create-view.js';
import { EventsView } from './views/events-view.js';
import { FleetView } from './views/fleet-view.js';
import { HostView } from './views/host-view.js';
import { ImagesView } from './views/images-view.js';
import { JobsView } from './views/jobs-view.js';
import { TokenPrompt } from './views/token-prompt.js';

type Gate = { state: 'checking' } | { state: 'open' } | { state: 'token'; message?: string } | { state: 'down'; message: string };

export function App() {
  const api = useMemo(() => new ApiClient(), []);
  const live = useMemo(() => new LiveSync(api), [api]);
  const shell = useMemo<Shell>(() => ({ api, live }), [api, live]);
  const [gate, setGate] = useState<Gate>({ state: 'checking' });
  const probing = useRef(false);

  /** Asks the agent whether the page may read: 401 means a token is needed (or the one held is wrong). */
  const probe = async (): Promise<void> => {
    const withToken = api.hasToken;
    probing.current = true;
    try {
      await api.get('/host');
      setGate({ state: 'open' });
      live.start();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        api.setToken(undefined);
        setGate({ state: 'token', message: withToken ? `The agent refused the token: ${error.message}` : undefined });
      } else setGate({ state: 'down', message: error instanceof Error ? error.message : String(error) });
    } finally {
      probing.current = false;
    }
  };

  useEffect(() => {
    void probe();
    // A 401 later (tokens changed and the agent restarted): ask again. (A
    // probe's own 401 is answered by the probe.)
    const off = api.onUnauthorized((error) => {
      if (probing.current) return;
      const withToken = api.hasToken;
      live.stop();
      api.setToken(undefined);
      setGate({ state: 'token', message: withToken ? `The agent refused the token: ${error.message}` : 'The agent now asks for a token.' });
    });
    return () => {
      off();
      live.stop();
    };
  }, []);

  // An agent that is not up yet (restarting, booting): ask again every few seconds.
  useEffect(() => {
    if (gate.state !== 'down') return;
    const timer = setTimeout(() => void probe(), 3000);
    return () => clearTimeout(timer);
  }, [gate]);

  if (gate.state === 'checking') return <p class="boot">Connecting to the agent…</p>;
  if (gate.state === 'down') {
    return (
      <main class="gate">
        <h1>hyperkern</h1>
        <p role="alert">The agent could not be reached: {gate.message}. Trying again every few seconds.</p>
        <button type="button" onClick={() => void probe()}>
          Try again
        </button>
      </main>
    );
  }
  if (gate.state === 'token') {
    return (
      <TokenPrompt
        message={gate.message}
        onToken={async (token) => {
          api.setToken(token);
          await probe();
        }}
      />
    );
  }
  return (
    <ShellContext.Provider value={shell}>
      <Frame
        onSignOut={
          api.hasToken
            ? () => {
                live.stop();
                api.setToken(undefined);
                setGate({ state: 'token' });
              }
            : undefined
        }
      />
    </ShellContext.Provider>
  );
}

const NAV: Array<{ route: Route; label: string }> = [
  { route: { view: 'host' }, label: 'Guests' },
  { route: { view: 'create' }, label: 'Create' },
  { route: { view: 'images' }, label: 'Images' },
  { route: { view: 'jobs' }, label: 'Jobs' },
  { route: { view: 'events' }, label: 'Events' },
  { route: { view: 'fleet' }, label: 'Fleet' },
];

function Frame({ onSignOut }: { onSignOut?: () => void }) {
  const { live } = useShell();
  const route = useRoute();
  const stream = useStore(live.stream);
  const host = useStore(live.host);
  const nav = NAV.filter((item) => item.route.view !== 'fleet' || host.hasFleet);
  const current = route.view === 'guest' ? 'host' : route.view;
  useEffect(() => {
    document.title = `${titleOf(route)} · hyperkern`;
  }, [route]);
  return (
    <div class="frame">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to the content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          hyperkern
        </a>
        <nav aria-label="Views">
          <ul>
            {nav.map((item) => (
              <li key={item.label}>
                <a href={href(item.route)} aria-current={current === item.route.view ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <p class={`stream stream-${stream.status}`} role="status" aria-live="polite" title={stream.lastError}>
          {streamLabel(stream.status, stream.lastError)}
        </p>
        {onSignOut && (
          <button type="button" class="quiet" onClick={onSignOut}>
            Forget token
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <RouteView route={route} />
      </main>
    </div>
  );
}

function RouteView({ route }: { route: Route }) {
  switch (route.view) {
    case 'host':
      return <HostView />;
    case 'guest':
      return <GuestView key={route.id} id={route.id} />;
    case 'create':
      return <CreateView />;
    case 'images':
      return <ImagesView />;
    case 'jobs':
      return <JobsView />;
    case 'events':
      return <EventsView />;
    case 'fleet':
      return <FleetView />;
    case 'missing':
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no view at <code>{route.path}</code>. <a href="#/">Back to the guests</a>.
          </p>
        </section>
      );
  }
}

function titleOf(route: Route): string {
  if (route.view === 'guest') return `Guest ${route.id.slice(0, 8)}`;
  if (route.view === 'missing') return 'Not found';
  return NAV.find((item) => item.route.view === route.view)?.label ?? 'hyperkern';
}

function streamLabel(status: string, error: string | undefined): string {
  switch (status) {
    case 'live':
      return 'Live';
    case 'connecting':
      return 'Connecting…';
    case 'reconnecting':
      return error ? `Reconnecting (${error})…` : 'Reconnecting…';
    case 'unauthorized':
      return 'Token refused';
    default:
      return 'Stopped';
  }
}
