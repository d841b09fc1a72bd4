/**
 * The host view (#/): every guest, live from the event stream, filtered and
 * sorted in the page, in a virtualised table; above it the host's capacity
 * (totals from GET /host, what is allotted from the live list) and each
 * plugin's health.
 */
import { useMemo, useState } from 'preact/hooks';
import { GUEST_STATES } from '../../core/contract/lifecycle.js';
import { guestName, type Guest } from '../api/types.js';
import { SortButton, VirtualTable, type Column } from '../components/virtual-list.js';
import { guestHref } from '../router.js';
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';

type SortKey = 'name' | 'state' | 'cpu' | 'memory' | 'type';

/**
 * Sort and filter keys, computed once per guest object (a changed guest is
 * a new object from its event): the name in lower case, and a sort key in
 * which every run of digits is zero-padded, so that plain string order is
 * "natural" (web-2 before web-10) and sorting 1,000 rows costs no collator
 * call per comparison.
 */
const keys = new WeakMap<Guest, { lower: string; sort: string }>();
function keyOf(guest: Guest): { lower: string; sort: string } {
  let key = keys.get(guest);
  if (!key) {
    const lower = guestName(guest).toLowerCase();
    keys.set(guest, (key = { lower, sort: lower.replace(/\d+/g, (digits) => digits.padStart(12, '0')) }));
  }
  return key;
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const COMPARE: Record<SortKey, (a: Guest, b: Guest) => number> = {
  name: (a, b) => byString(keyOf(a).sort, keyOf(b).sort),
  state: (a, b) => byString(a.state, b.state),
  cpu: (a, b) => a.cpu - b.cpu,
  memory: (a, b) => a.memory - b.memory,
  type: (a, b) => byString(kind(a), kind(b)),
};

function kind(guest: Guest): string {
  return guest.type === 'container' ? 'container' : 'vm';
}

export function HostView() {
  const { live } = useShell();
  const guests = useStore(live.guests);
  const [text, setText] = useState('');
  const [state, setState] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: 'name', descending: false });

  const all = guests.list();
  const shown = useMemo(() => {
    const needle = text.trim().toLowerCase();
    const kept = all.filter(
      (g) => (state === '' || g.state === state) && (needle === '' || keyOf(g).lower.includes(needle) || g.id.startsWith(needle) || (g.image ?? '').toLowerCase().includes(needle)),
    );
    const compare = COMPARE[sort.key];
    // Ties by id, so rows keep their places while states change under them.
    kept.sort((a, b) => (sort.descending ? compare(b, a) : compare(a, b)) || byString(a.id, b.id));
    return kept;
  }, [all, text, state, sort]);

  const header = (key: SortKey, label: string, width: string, numeric = false): Column => ({
    width,
    numeric,
    sort: sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none',
    header: <SortButton label={label} active={sort.key === key} descending={sort.descending} onSort={() => setSort({ key, descending: sort.key === key ? !sort.descending : false })} />,
  });
  const columns = [header('name', 'Name', 'minmax(10em, 3fr)'), header('state', 'State', '8em'), header('cpu', 'CPUs', '5em', true), header('memory', 'Memory', '7em', true), header('type', 'Type', '7em'), { header: 'Id', width: '7em' }];

  return (
    <section>
      <h1>Guests</h1>
      <HostSummary guests={all} />
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Filter
          <input type="search" value={text} placeholder="name, id or image" onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <label>
          State
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            {GUEST_STATES.filter((s) => s !== 'deleted').map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <p class="count" aria-live="polite">
          {guests.loaded ? `${shown.length} of ${all.length} guests` : 'Loading guests…'}
        </p>
      </form>
      {guests.error && (
        <p class="error" role="alert">
          Could not list the guests: {guests.error}
        </p>
      )}
      <VirtualTable
        label="Guests"
        columns={columns}
        items={shown}
        rowKey={(g) => g.id}
        height="calc(100vh - 20rem)"
        empty={guests.loaded ? (all.length === 0 ? <>No guests yet. <a href="#/create">Create one</a>.</> : 'No guest matches the filter.') : 'Loading…'}
        renderCells={(g) => [
          <div role="cell" class="name" key="n">
            <a href={guestHref(g.id)}>{guestName(g)}</a>
          </div>,
          <div role="cell" key="s">
            <span class={`state state-${g.state}`}>{g.state}</span>
          </div>,
          <div role="cell" class="num" key="c">
            {g.cpu}
          </div>,
          <div role="cell" class="num" key="m">
            {g.memory} MiB
          </div>,
          <div role="cell" key="t">
            {kind(g)}
          </div>,
          <div role="cell" key="i">
            <code>{g.id.slice(0, 8)}</code>
          </div>,
        ]}
      />
    </section>
  );
}

/** Capacity (allotted live from the list, totals from GET /host) and plugin health. */
function HostSummary({ guests }: { guests: Guest[] }) {
  const { live } = useShell();
  const host = useStore(live.host);
  const cpus = guests.reduce((sum, g) => sum + g.cpu, 0);
  const memory = guests.reduce((sum, g) => sum + g.memory, 0);
  const running = guests.filter((g) => g.state === 'running').length;
  const capacity = host.capacity;
  const plugins = Object.entries(host.health?.plugins ?? {});
  return (
    <div class="summary">
      <dl class="facts" aria-label="Host capacity">
        <dt>Guests</dt>
        <dd>
          {guests.length} ({running} running)
        </dd>
        <dt>CPUs allotted</dt>
        <dd>
          {cpus}
          {capacity ? ` of ${capacity.cpus.total}${cpus > capacity.cpus.total ? ' (overcommitted)' : ''}` : ''}
        </dd>
        <dt>Memory allotted</dt>
        <dd>
          {mib(memory)}
          {capacity ? ` of ${mib(capacity.memoryMiB.total)}${memory > capacity.memoryMiB.total ? ' (overcommitted)' : ''}` : ''}
        </dd>
        <dt>Agent</dt>
        <dd>
          {host.health ? `${host.health.status}, version ${host.health.version}` : host.error ? `unknown (${host.error})` : '…'}
        </dd>
      </dl>
      {plugins.length > 0 && (
        <ul class="plugins" aria-label="Plugin health">
          {plugins.map(([id, p]) => (
            <li key={id} class={p.healthy ? 'healthy' : 'unhealthy'} title={p.message}>
              <span class="dot" aria-hidden="true" />
              {id}: {p.healthy ? 'healthy' : 'unhealthy'}
              {p.message ? ` (${p.message})` : ''}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function mib(value: number): string {
  return value >= 10240 ? `${(value / 1024).toFixed(1)} GiB` : `${value} MiB`;
}
