/**
 * A guest's snapshots (every disk at one instant): take one, roll back to
 * one, delete one, download one disk's image of it (streamed to disk by
 * the browser: a plain link, with a single-use ticket when auth is on). Take, roll back and
 * delete are jobs on the guest's queue (queued with ?wait=0; their progress
 * shows in the job list), with mistify's SnapshotRequest as the body, every
 * field sent as a Go client sends it. What the guest's state allows comes
 * from the kernel's SNAPSHOT_LIFECYCLE table.
 */
import { useEffect, useState } from 'preact/hooks';
import { describeStates, SNAPSHOT_LIFECYCLE } from '../../core/contract/lifecycle.js';
import type { Guest, Snapshot } from '../../core/contract/wire-types.js';
import { getJson, guestPath, messageOf, queueJob, statusOf, type AgentRequest } from './guest-client.js';

const request_ = (dest: string, destroyMoreRecent: boolean) => ({ id: '', dest, recursive: true, destroyMoreRecent });

export interface SnapshotsPanelProps {
  guest: Guest;
  request: AgentRequest;
  /** Changes whenever a job of the guest ended: the list is read again. */
  version: number;
  /** A job was queued (the job list reads itself again). */
  queued: () => void;
  /** Downloads as plain links (no token to send); else each link carries a single-use download ticket. */
  directDownloads?: boolean;
}

export function SnapshotsPanel({ guest, request, version, queued, directDownloads }: SnapshotsPanelProps) {
  const [snapshots, setSnapshots] = useState<Snapshot[]>([]);
  const [problem, setProblem] = useState<string>();
  const [name, setName] = useState('');
  const [destroyMoreRecent, setDestroyMoreRecent] = useState(false);
  const [failure, setFailure] = useState<string>();
  const settled = SNAPSHOT_LIFECYCLE.listSnapshots.from.includes(guest.state);

  useEffect(() => {
    if (!settled) return;
    let stopped = false;
    getJson<Snapshot[] | null>(request, guestPath(guest.id, '/snapshots'))
      .then((list) => {
        if (stopped) return;
        setSnapshots(list ?? []);
        setProblem(undefined);
      })
      .catch((error) => !stopped && setProblem(statusOf(error) === 501 ? "This guest's backend keeps no snapshots." : messageOf(error)));
    return () => {
      stopped = true;
    };
  }, [guest.id, request, version, settled]);

  const queue = async (what: string, method: string, path: string, body: unknown) => {
    setFailure(undefined);
    try {
      await queueJob(request, method, guestPath(guest.id, path), body);
      queued();
      return true;
    } catch (error) {
      setFailure(`${what}: ${messageOf(error)}`);
      return false;
    }
  };

  const take = async (event: Event) => {
    event.preventDefault();
    // "" asks the agent for a name (snap-<unix seconds>).
    if (await queue('Take a snapshot', 'POST', '/snapshots', request_(name.trim(), false))) setName('');
  };

  const downloadPath = (snapshot: string, disk: string) => guestPath(guest.id, `/disks/${encodeURIComponent(disk)}/snapshots/${encodeURIComponent(snapshot)}/download`);
  const fileName = (snapshot: string, disk: string) => `${guest.id}-${disk}-${snapshot}.qcow2`;

  const download = async (snapshot: string, disk: string) => {
    setFailure(undefined);
    // A plain link cannot carry the token: a single-use ticket for this one
    // download rides in its query instead, so the browser streams the image
    // to disk (the page never holds it). What would refuse the download is
    // answered to the ticket's request, here.
    let url: string;
    try {
      url = (await getJson<{ url: string }>(request, `${downloadPath(snapshot, disk)}/ticket`, 'POST')).url;
    } catch (error) {
      return setFailure(`Download ${snapshot} (${disk}): ${messageOf(error)}`);
    }
    // `download` keeps the page where it is; the agent's Content-Disposition names the file.
    Object.assign(document.createElement('a'), { href: url, download: fileName(snapshot, disk) }).click();
  };

  const allowed = (action: keyof typeof SNAPSHOT_LIFECYCLE) => SNAPSHOT_LIFECYCLE[action].from.includes(guest.state);
  const needs = (action: keyof typeof SNAPSHOT_LIFECYCLE) => `needs the guest ${describeStates(SNAPSHOT_LIFECYCLE[action].from)}; it is ${guest.state}`;

  return (
    <section class="guest-snapshots panel" aria-labelledby="guest-snapshots-title">
      <h2 id="guest-snapshots-title">Snapshots</h2>
      <form onSubmit={take} class="guest-inline-form">
        <label>
          Name <input name="snapshot-name" value={name} placeholder="snap-<time>" maxLength={255} onInput={(e) => setName(e.currentTarget.value)} />
        </label>{' '}
        <button type="submit" disabled={!allowed('createSnapshot')} title={allowed('createSnapshot') ? undefined : needs('createSnapshot')}>
          Take snapshot
        </button>
      </form>
      <label class="check">
        <input type="checkbox" checked={destroyMoreRecent} onChange={(e) => setDestroyMoreRecent(e.currentTarget.checked)} /> A rollback also deletes the snapshots taken after it
      </label>
      {!allowed('rollbackSnapshot') && <p class="muted">Roll back {needs('rollbackSnapshot')}.</p>}
      {problem && <p class="error">{problem}</p>}
      {!settled && <p class="muted">Snapshots are listed once the guest is no longer {guest.state}.</p>}
      {settled && !problem && snapshots.length === 0 && <p class="muted">No snapshots.</p>}
      {snapshots.length > 0 && (
        <table class="plain">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {snapshots.map((snapshot) => (
              <tr key={snapshot.id} data-snapshot={snapshot.id}>
                <td>
                  <code>{snapshot.id}</code>
                </td>
                <td>{snapshot.size ?? 0} MiB</td>
                <td class="guest-row-buttons">
                  <button
                    type="button"
                    disabled={!allowed('rollbackSnapshot')}
                    aria-label={`Roll back to ${snapshot.id}`}
                    onClick={() => void queue(`Roll back to ${snapshot.id}`, 'POST', `/snapshots/${encodeURIComponent(snapshot.id)}/rollback`, request_('', destroyMoreRecent))}
                  >
                    Roll back
                  </button>
                  <button
                    type="button"
                    disabled={!allowed('deleteSnapshot')}
                    aria-label={`Delete snapshot ${snapshot.id}`}
                    onClick={() => void queue(`Delete ${snapshot.id}`, 'DELETE', `/snapshots/${encodeURIComponent(snapshot.id)}`, request_('', false))}
                  >
                    Delete
                  </button>
                  {(guest.disks ?? []).map((disk) =>
                    directDownloads ? (
                      <a key={disk.device} class="button" href={downloadPath(snapshot.id, disk.device)} download={fileName(snapshot.id, disk.device)} aria-label={`Download ${disk.device} of ${snapshot.id}`}>
                        Download {disk.device}
                      </a>
                    ) : (
                      <button type="button" key={disk.device} aria-label={`Download ${disk.device} of ${snapshot.id}`} onClick={() => void download(snapshot.id, disk.device)}>
                        Download {disk.device}
                      </button>
                    ),
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {failure && (
        <p role="alert" class="error">
          {failure}
        </p>
      )}
    </section>
  );
}
