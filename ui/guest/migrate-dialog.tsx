/**
 * Moving the guest to another agent (POST /guests/{id}/migrate,
 * docs/migration.md), a chunk of its own loaded when the dialog first
 * opens. With the fleet plugin the target is picked among the fleet's live
 * hosts (GET /fleet/hosts; this host left out, each with what it has free),
 * sent as `{"host"}`: the agent finds it in etcd and has its token. Without
 * the plugin, or for an agent outside the fleet, the target is its base URL
 * and a bearer token of it (`{"url", "token"}`; no token for an agent
 * without auth). An optional cap (`bandwidth`, MiB/s) slows the copies. The agent asks the target first, so what it would refuse
 * (memory, CPUs, a network) is this dialog's answer; once queued, the
 * move's phase and bytes show in the job list, where it can be cancelled.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Guest } from '../../core/contract/wire-types.js';
import type { FleetHost } from '../api/types.js';
import { getJson, guestPath, messageOf, queueJob, statusOf, type AgentRequest } from './guest-client.js';

export interface MigrateDialogProps {
  guest: Guest;
  request: AgentRequest;
  /** The move was queued: the job list reads itself again. */
  onQueued: () => void;
  onClose: () => void;
}

type Fleet = { state: 'loading' } | { state: 'none' } | { state: 'unreadable'; message: string } | { state: 'hosts'; hosts: FleetHost[] };

export function MigrateDialog({ guest, request, onQueued, onClose }: MigrateDialogProps) {
  const [fleet, setFleet] = useState<Fleet>({ state: 'loading' });
  const [byUrl, setByUrl] = useState(false);
  const [host, setHost] = useState('');
  const [url, setUrl] = useState('');
  const [token, setToken] = useState('');
  const [bandwidth, setBandwidth] = useState('');
  const [sending, setSending] = useState(false);
  const [failure, setFailure] = useState<string>();
  const first = useRef<HTMLSelectElement & HTMLInputElement>(null);

  useEffect(() => {
    let stopped = false;
    getJson<{ hosts: FleetHost[] }>(request, '/fleet/hosts')
      .then(({ hosts }) => {
        if (stopped) return;
        const others = hosts.filter((h) => !h.self);
        setFleet({ state: 'hosts', hosts: others });
        setHost(others[0]?.hostId ?? '');
      })
      .catch((error) => !stopped && setFleet(statusOf(error) === 501 ? { state: 'none' } : { state: 'unreadable', message: messageOf(error) }));
    return () => {
      stopped = true;
    };
  }, [request]);

  const pickHost = fleet.state === 'hosts' && fleet.hosts.length > 0 && !byUrl;
  // The first field takes the focus once the dialog knows which it shows.
  useLayoutEffect(() => first.current?.focus(), [fleet.state, byUrl]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure(undefined);
    setSending(true);
    try {
      const cap = bandwidth.trim() === '' ? {} : { bandwidth: Number(bandwidth) };
      await queueJob(request, 'POST', guestPath(guest.id, '/migrate'), { ...(pickHost ? { host } : { url: url.trim(), token }), ...cap });
      onQueued();
      onClose();
      return;
    } catch (error) {
      setFailure(messageOf(error));
      setSending(false);
      // The disabled button lost the focus: back to the first field, in the dialog (Escape still closes it).
      setTimeout(() => first.current?.focus());
    }
  };

  const live = guest.state === 'running';
  return (
    <div role="dialog" aria-labelledby="migrate-title" aria-describedby="migrate-what" class="guest-confirm guest-migrate" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <h3 id="migrate-title">Move {guest.id} to another host</h3>
      <p id="migrate-what" class="muted">
        {live ? 'Live: the guest keeps running while its disks and memory are copied, then runs on the target.' : 'Cold: its disks are copied; it stays off on the target.'}
      </p>
      {fleet.state === 'loading' && <p aria-busy="true">Reading the fleet…</p>}
      {fleet.state === 'unreadable' && <p class="error">The fleet could not be read ({fleet.message}): give the target agent's address.</p>}
      {fleet.state === 'hosts' && fleet.hosts.length === 0 && <p class="muted">The fleet has no other live host: give the target agent's address.</p>}
      {fleet.state !== 'loading' && (
        <form onSubmit={submit} class="guest-migrate-form">
          {pickHost ? (
            <label>
              Target host{' '}
              <select name="migrate-host" ref={first} value={host} onChange={(e) => setHost(e.currentTarget.value)} required>
                {fleet.hosts.map((h) => (
                  <option key={h.hostId} value={h.hostId}>
                    {h.hostId}: {h.cpus.free} CPUs, {h.memoryMiB.free} MiB free{h.health === 'ok' ? '' : ` (${h.health})`}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <>
              <label>
                Target agent URL{' '}
                <input name="migrate-url" ref={first} type="url" required placeholder="http://10.0.0.2:8080" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
              </label>{' '}
              <label>
                Its token{' '}
                <input name="migrate-token" type="password" autoComplete="off" placeholder="none if it has no auth" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
              </label>
            </>
          )}
          {fleet.state === 'hosts' && fleet.hosts.length > 0 && (
            <label class="check">
              <input type="checkbox" checked={byUrl} onChange={(e) => setByUrl(e.currentTarget.checked)} /> An agent outside the fleet (by its URL)
            </label>
          )}
          <label>
            Bandwidth cap{' '}
            <input name="migrate-bandwidth" type="number" min={1} step={1} inputMode="numeric" placeholder="none" value={bandwidth} onInput={(e) => setBandwidth(e.currentTarget.value)} /> MiB/s
          </label>
          <p>
            <button type="submit" data-confirm="migrate" disabled={sending}>
              {sending ? 'Checking with the target…' : 'Move'}
            </button>{' '}
            <button type="button" onClick={onClose}>
              Cancel
            </button>
          </p>
        </form>
      )}
      {failure && (
        <p role="alert" class="error">
          Migrate: {failure}
        </p>
      )}
    </div>
  );
}
