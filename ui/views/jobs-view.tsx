/** Recent jobs (#/jobs), newest first, live; a queued or running one can be cancelled. */
import { useState } from 'preact/hooks';
import type { JobView } from '../api/types.js';
import { VirtualTable } from '../components/virtual-list.js';
import { guestHref } from '../router.js';
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';

export function JobsView() {
  const { api, live } = useShell();
  const jobs = useStore(live.jobs);
  const guests = useStore(live.guests);
  const [status, setStatus] = useState('');
  const [notice, setNotice] = useState<{ error: boolean; text: string }>();
  const shown = jobs.list().filter((j) => status === '' || j.Status === status);

  const cancel = async (job: JobView) => {
    setNotice(undefined);
    try {
      const answer = await api.cancelJob(job.ID);
      live.jobs.put(answer.body);
      setNotice({ error: false, text: answer.status === 202 ? `Cancelling ${job.Action} ${job.ID.slice(0, 8)}: its stage was told to stop` : `Cancelled ${job.Action} ${job.ID.slice(0, 8)}` });
    } catch (error) {
      setNotice({ error: true, text: `Could not cancel ${job.Action} ${job.ID.slice(0, 8)}: ${error instanceof Error ? error.message : String(error)}` });
    }
  };

  return (
    <section>
      <h1>Jobs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">any</option>
            {['Queued', 'Running', 'Complete', 'Error'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <p class="count" aria-live="polite">
          {jobs.loaded ? `${shown.length} jobs` : 'Loading jobs…'}
        </p>
      </form>
      {notice && (
        <p class={notice.error ? 'error' : 'notice'} role={notice.error ? 'alert' : 'status'}>
          {notice.text}
        </p>
      )}
      <VirtualTable
        label="Jobs"
        items={shown}
        rowKey={(j) => j.ID}
        height="calc(100vh - 16rem)"
        empty={jobs.loaded ? 'No jobs.' : 'Loading…'}
        columns={[
          { header: 'Queued', width: '11em' },
          { header: 'Action', width: '9em' },
          { header: 'Guest', width: 'minmax(8em, 1fr)' },
          { header: 'Status', width: '7em' },
          { header: 'Message', width: 'minmax(10em, 3fr)' },
          { header: 'Cancel', width: '7em' },
        ]}
        renderCells={(j) => {
          const guest = j.GuestID ? guests.get(j.GuestID) : undefined;
          return [
            <div role="cell" key="q">
              <time dateTime={j.QueuedAt}>{shortTime(j.QueuedAt)}</time>
            </div>,
            <div role="cell" key="a">
              {j.Action}
            </div>,
            <div role="cell" key="g">
              {j.GuestID === '' ? <span class="muted">host</span> : <a href={guestHref(j.GuestID)}>{guest?.metadata?.name || j.GuestID.slice(0, 8)}</a>}
            </div>,
            <div role="cell" key="s">
              <span class={`status status-${j.Status}`}>{j.Status}</span>
            </div>,
            <div role="cell" class="message" key="m" title={j.Message}>
              {j.Status === 'Running' && j.Stage ? `${j.Stage}: ` : ''}
              {j.Message}
            </div>,
            <div role="cell" key="c">
              {(j.Status === 'Queued' || j.Status === 'Running') && (
                <button type="button" class="small" onClick={() => void cancel(j)} aria-label={`Cancel ${j.Action} job ${j.ID.slice(0, 8)}`}>
                  Cancel
                </button>
              )}
            </div>,
          ];
        }}
      />
    </section>
  );
}

export function shortTime(rfc3339: string): string {
  if (rfc3339.startsWith('0001-')) return '—';
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
