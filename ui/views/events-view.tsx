/** The event log (#/events): what the event stream brought since the page opened, newest first. */
import { useState } from 'preact/hooks';
import type { AgentEvent } from '../api/types.js';
import { VirtualTable } from '../components/virtual-list.js';
import { guestHref } from '../router.js';
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';
import { shortTime } from './jobs-view.js';

const FAMILIES = ['guest', 'job', 'host', 'plugin', 'console'];

export function EventsView() {
  const { live } = useShell();
  const log = useStore(live.log);
  const stream = useStore(live.stream);
  const [family, setFamily] = useState('');
  const shown = log.list().filter((e) => family === '' || e.type.startsWith(`${family}.`));
  return (
    <section>
      <h1>Events</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Kind
          <select value={family} onChange={(e) => setFamily(e.currentTarget.value)}>
            <option value="">all</option>
            {FAMILIES.map((f) => (
              <option key={f}>{f}</option>
            ))}
          </select>
        </label>
        <p class="count" aria-live="off">
          {shown.length} events since this page opened{stream.lastId !== undefined ? `; last id ${stream.lastId}` : ''}
          {stream.reconnects > 0 ? `; reconnected ${stream.reconnects}×` : ''}
        </p>
      </form>
      <VirtualTable
        label="Events"
        items={shown}
        rowKey={(e) => String(e.id)}
        height="calc(100vh - 16rem)"
        empty="No events yet: they appear here as the agent commits changes."
        columns={[
          { header: 'Id', width: '6em' },
          { header: 'Time', width: '11em' },
          { header: 'Type', width: '10em' },
          { header: 'Guest', width: '7em' },
          { header: 'What', width: 'minmax(10em, 1fr)' },
        ]}
        renderCells={(e) => [
          <div role="cell" class="num" key="i">
            {e.id}
          </div>,
          <div role="cell" key="t">
            <time dateTime={e.time}>{shortTime(e.time)}</time>
          </div>,
          <div role="cell" key="y">
            {e.type}
          </div>,
          <div role="cell" key="g">
            {e.guest ? <a href={guestHref(e.guest)}>{e.guest.slice(0, 8)}</a> : ''}
          </div>,
          <div role="cell" class="message" key="w">
            {describe(e)}
          </div>,
        ]}
      />
    </section>
  );
}

export function describe(event: AgentEvent): string {
  const d = event.data;
  if (d.job) return `${d.job.Action} ${d.job.Status}${d.job.Message ? `: ${d.job.Message}` : ''}`;
  if (d.guest) return `${d.guest.metadata?.name || d.guest.id.slice(0, 8)} ${d.guest.state}${d.reason ? ` (${d.reason})` : ''}`;
  if (event.type === 'guest.deleted') return 'deleted';
  if (event.type === 'plugin.health') return `${d.plugin} ${d.healthy ? 'healthy' : 'unhealthy'}${d.message ? `: ${d.message}` : ''}`;
  if (event.type === 'host.metadata') return `metadata: ${Object.keys(d.metadata ?? {}).join(', ') || '(empty)'}`;
  return JSON.stringify(d).slice(0, 160);
}
