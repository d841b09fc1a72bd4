/**
 * The fleet (#/fleet), when the fleet plugin is on: every live host in etcd
 * (GET /fleet/hosts) with its health and free capacity, each linking to its
 * own agent's console. Refreshed every few seconds (hosts come and go with
 * their etcd leases; there is no event for another host).
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api/client.js';
import type { FleetHost } from '../api/types.js';
import { useShell } from '../shell.js';

const REFRESH_MS = 5000;

export function FleetView() {
  const { api } = useShell();
  const [hosts, setHosts] = useState<FleetHost[]>();
  const [error, setError] = useState<{ status: number; message: string }>();

  useEffect(() => {
    let alive = true;
    const load = async () => {
      try {
        const answer = await api.get<{ hosts: FleetHost[] }>('/fleet/hosts');
        if (!alive) return;
        setHosts(answer.hosts);
        setError(undefined);
      } catch (e) {
        if (alive) setError({ status: e instanceof ApiError ? e.status : 0, message: e instanceof Error ? e.message : String(e) });
      }
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, []);

  if (error?.status === 501) {
    return (
      <section>
        <h1>Fleet</h1>
        <p>This agent has no fleet plugin: it knows no other hosts (docs/fleet.md says how to add one).</p>
      </section>
    );
  }
  return (
    <section>
      <h1>Fleet</h1>
      {error && (
        <p class="error" role="alert">
          Could not read the fleet: {error.message}
        </p>
      )}
      <table class="plain">
        <caption class="muted">{hosts === undefined ? 'Loading…' : `${hosts.length} live host${hosts.length === 1 ? '' : 's'} in etcd`}</caption>
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Health</th>
            <th scope="col">CPUs free / total</th>
            <th scope="col">Memory free / total</th>
            <th scope="col">Guests</th>
            <th scope="col">Version</th>
          </tr>
        </thead>
        <tbody>
          {(hosts ?? []).map((h) => (
            <tr key={h.hostId}>
              <th scope="row">
                <a href={consoleUrl(h.apiUrl)} aria-label={`${h.hostId}: open its console`}>
                  {h.hostId}
                </a>
                {h.self && <span class="muted"> (this host)</span>}
              </th>
              <td>
                <span class={`state ${h.health === 'ok' ? 'state-running' : 'state-error'}`}>{h.health}</span>
              </td>
              <td class={h.cpus.free < 0 ? 'error' : undefined}>
                {h.cpus.free} / {h.cpus.total}
              </td>
              <td class={h.memoryMiB.free < 0 ? 'error' : undefined}>
                {h.memoryMiB.free} / {h.memoryMiB.total} MiB
              </td>
              <td>{Object.entries(h.guests).map(([state, n]) => `${n} ${state}`).join(', ') || 'none'}</td>
              <td>{h.version}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The host's own console: its advertised API URL + /ui (only http(s) URLs become links). */
export function consoleUrl(apiUrl: string): string {
  try {
    const url = new URL(apiUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return '#/fleet';
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/ui`;
    return url.toString();
  } catch {
    return '#/fleet';
  }
}
