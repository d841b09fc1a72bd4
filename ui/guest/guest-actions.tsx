/**
 * The guest's lifecycle actions, from the kernel's own table
 * (core/contract/lifecycle.ts, bundled into the page): an action its state
 * does not allow is shown disabled with the states it needs. A click queues
 * the job; its progress and outcome show in the job list below. *Migrate…*
 * (allowed from the contract's MIGRATE_LIFECYCLE) opens the move's dialog,
 * a chunk of its own loaded on first use (migrate-dialog.tsx).
 */
import type { ComponentType } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { describeStates, LIFECYCLE, LIFECYCLE_ACTIONS, MIGRATE_LIFECYCLE, type LifecycleAction } from '../../core/contract/lifecycle.js';
import type { Guest } from '../../core/contract/wire-types.js';
import { guestPath, messageOf, queueJob, type AgentRequest } from './guest-client.js';
import { jobEnded, type GuestJobs } from './use-guest-jobs.js';
import type { MigrateDialogProps } from './migrate-dialog.js';

type GuestAction = Exclude<LifecycleAction, 'create'>;

/** What each button says; create is not an action of an existing guest. */
const LABELS: Record<GuestAction, string> = {
  start: 'Start',
  shutdown: 'Shut down',
  reboot: 'Reboot',
  restart: 'Reset',
  poweroff: 'Power off',
  suspend: 'Suspend',
  resume: 'Resume',
  delete: 'Delete',
};
/** The table's actions but create, delete last (it ends the guest). */
const ACTIONS: GuestAction[] = [...LIFECYCLE_ACTIONS.filter((a): a is GuestAction => a !== 'create' && a !== 'delete'), 'delete'];

export interface GuestActionsProps {
  guest: Guest;
  request: AgentRequest;
  jobs: GuestJobs;
}

export function GuestActions({ guest, request, jobs }: GuestActionsProps) {
  const [failure, setFailure] = useState<string>();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [Migrate, setMigrate] = useState<ComponentType<MigrateDialogProps>>();
  const busy = jobs.jobs.some((job) => !jobEnded(job));
  const canMigrate = MIGRATE_LIFECYCLE.from.includes(guest.state);
  const needsForMigrate = `needs the guest ${describeStates(MIGRATE_LIFECYCLE.from)}`;

  const openMigrate = async () => {
    setFailure(undefined);
    setConfirmDelete(false);
    try {
      const { MigrateDialog } = await import('./migrate-dialog.js');
      setMigrate(() => MigrateDialog);
    } catch (error) {
      setFailure(`Migrate: the dialog could not be loaded (${messageOf(error)})`);
    }
  };

  const run = async (action: GuestAction) => {
    setFailure(undefined);
    setConfirmDelete(false);
    try {
      await queueJob(request, action === 'delete' ? 'DELETE' : 'POST', guestPath(guest.id, action === 'delete' ? '' : `/${action}`));
    } catch (error) {
      setFailure(`${LABELS[action]}: ${messageOf(error)}`);
    }
    jobs.refresh();
  };

  const actionButton = (action: GuestAction) => {
    const allowed = LIFECYCLE[action].from.includes(guest.state);
    const needs = `needs the guest ${describeStates(LIFECYCLE[action].from)}`;
    return (
      <button
        type="button"
        key={action}
        data-action={action}
        class={action === 'delete' ? 'danger' : undefined}
        disabled={!allowed}
        title={allowed ? undefined : `${LABELS[action]} ${needs}; it is ${guest.state}`}
        aria-describedby={allowed ? undefined : `needs-${action}`}
        onClick={() => (action === 'delete' ? setConfirmDelete(true) : void run(action))}
      >
        {LABELS[action]}
        {!allowed && (
          <span id={`needs-${action}`} class="sr-only">
            {' '}
            ({needs})
          </span>
        )}
      </button>
    );
  };

  return (
    <section class="guest-actions panel" aria-labelledby="guest-actions-title">
      <h2 id="guest-actions-title">Actions</h2>
      <div role="toolbar" aria-label={`Actions for guest ${guest.id}`} class="guest-action-buttons">
        {ACTIONS.filter((a) => a !== 'delete').map(actionButton)}
        <button
          type="button"
          data-action="migrate"
          disabled={!canMigrate}
          title={canMigrate ? 'Move the guest to another host' : `Migrate ${needsForMigrate}; it is ${guest.state}`}
          aria-describedby={canMigrate ? undefined : 'needs-migrate'}
          aria-haspopup="dialog"
          onClick={() => void openMigrate()}
        >
          Migrate…
          {!canMigrate && (
            <span id="needs-migrate" class="sr-only">
              {' '}
              ({needsForMigrate})
            </span>
          )}
        </button>
        {actionButton('delete')}
      </div>
      {busy && <p class="muted">A job is queued or running: another action waits behind it on the guest's queue.</p>}
      {Migrate && <Migrate guest={guest} request={request} onQueued={jobs.refresh} onClose={() => setMigrate(undefined)} />}
      {confirmDelete && <ConfirmDelete guestId={guest.id} onDelete={() => void run('delete')} onCancel={() => setConfirmDelete(false)} />}
      {failure && (
        <p role="alert" class="error">
          {failure}
        </p>
      )}
    </section>
  );
}

/** Asks once more before a delete; focus moves to it, Escape cancels. */
function ConfirmDelete(props: { guestId: string; onDelete: () => void; onCancel: () => void }) {
  const cancel = useRef<HTMLButtonElement>(null);
  useLayoutEffect(() => cancel.current?.focus(), []);
  return (
    <div role="alertdialog" aria-labelledby="confirm-delete-text" class="guest-confirm" onKeyDown={(e) => e.key === 'Escape' && props.onCancel()}>
      <p id="confirm-delete-text">Delete guest {props.guestId} and its disks? This cannot be undone.</p>
      <button type="button" class="danger" data-confirm="delete" onClick={props.onDelete}>
        Delete
      </button>{' '}
      <button type="button" ref={cancel} onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}
