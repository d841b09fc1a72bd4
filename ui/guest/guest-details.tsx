/**
 * The guest view's content (#/guests/ID; index.tsx gives it the shell's
 * client and event stream): the guest's state and the actions it
 * allows with their jobs' progress, its load over the last minutes, its
 * metadata, its snapshots, its console and, where it has one, its screen.
 * Tabs follow the WAI-ARIA tabs pattern (arrow keys move between them);
 * only the open tab is mounted, so a closed tab polls and holds nothing (the
 * charts stop polling, the console's WebSocket closes).
 */
import { useMemo, useState } from 'preact/hooks';
import type { AgentRequest, SubscribeEvents } from './guest-client.js';
import { GuestActions } from './guest-actions.js';
import { JobList } from './job-list.js';
import { MetricsPanel, useRateWindows } from './metrics-panel.js';
import { MetadataPanel } from './metadata-panel.js';
import { SnapshotsPanel } from './snapshots-panel.js';
import { ConsolePanel } from './console-panel.js';
import { ScreenPanel } from './screen-panel.js';
import { jobEnded, useGuestJobs } from './use-guest-jobs.js';
import { useGuest } from './use-guest.js';
import './guest-view.css';

export interface GuestDetailsProps {
  guestId: string;
  /** The shell's authenticated fetch against the agent. */
  request: AgentRequest;
  /** The shell's event stream, if it has one (else the view polls the guest). */
  subscribe?: SubscribeEvents;
  /** Snapshot downloads as plain links (no token to send): the browser streams them to disk. */
  directDownloads?: boolean;
}

const TABS = ['overview', 'metadata', 'snapshots', 'console', 'screen'] as const;
type Tab = (typeof TABS)[number];
const TAB_LABELS: Record<Tab, string> = { overview: 'Overview', metadata: 'Metadata', snapshots: 'Snapshots', console: 'Console', screen: 'Screen' };

/** States in which a guest has a screen (docs/vnc.md: running or suspended); the panel asks the agent whether it has one. */
const SCREEN_STATES: readonly string[] = ['running', 'suspended'];

export function GuestDetails({ guestId, request, subscribe, directDownloads }: GuestDetailsProps) {
  const jobs = useGuestJobs(guestId, request, subscribe);
  // Each job that ended is a reason to read the guest (and its snapshots) again.
  const ended = useMemo(() => jobs.jobs.filter(jobEnded).map((j) => j.ID).join(','), [jobs.jobs]);
  const endedCount = useMemo(() => hashOf(ended), [ended]);
  const { guest, gone, movedTo, problem } = useGuest(guestId, request, endedCount, subscribe);
  const [tab, setTab] = useState<Tab>('overview');
  // The charts' points outlive a visit to another tab (polling does not).
  const rateWindows = useRateWindows(guestId);
  const tabs = TABS.filter((t) => t !== 'screen' || (guest !== undefined && SCREEN_STATES.includes(guest.state)));
  const current = tabs.includes(tab) ? tab : 'overview';

  if (gone) {
    return (
      <section class="guest-view">
        <h1>Guest {guestId}</h1>
        <p role="alert">{gone}</p>
        {movedTo && (
          <p>
            <a href={`${movedTo.url.replace(/\/+$/, '')}/ui#/guests/${encodeURIComponent(guestId)}`}>Open it on {movedTo.hostId ?? movedTo.url}</a>
          </p>
        )}
        <p>
          <a href="#/">Back to the guests</a>
        </p>
      </section>
    );
  }
  if (!guest) return <section class="guest-view" aria-busy="true">{problem ? <p role="alert">{problem}</p> : <p>Loading guest {guestId}…</p>}</section>;

  const name = guest.metadata?.name;
  const onKey = (event: KeyboardEvent) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    const to = event.key === 'Home' ? tabs[0] : event.key === 'End' ? tabs[tabs.length - 1] : step ? tabs[(tabs.indexOf(current) + step + tabs.length) % tabs.length] : undefined;
    if (!to) return;
    event.preventDefault();
    setTab(to);
    // Every tab is drawn whichever is open: the focus moves at once.
    (event.currentTarget as HTMLElement).querySelector<HTMLElement>(`#guest-tab-${to}`)?.focus();
  };

  return (
    <section class="guest-view" aria-labelledby="guest-title" data-guest={guest.id} data-state={guest.state}>
      <header class="guest-header">
        <h1 id="guest-title">
          {name ? `${name} ` : ''}
          <small class="guest-id">{guest.id}</small>
        </h1>
        <p class="guest-facts">
          <span class={`state state-${guest.state}`} role="status" aria-label={`state: ${guest.state}`} data-guest-state={guest.state}>
            {guest.state}
          </span>{' '}
          {guest.type || 'VM'} · {guest.cpu} vCPU · {guest.memory} MiB · {(guest.disks ?? []).length} disk(s) · {(guest.nics ?? []).length} NIC(s)
          {guest.image ? ` · image ${guest.image}` : ''}
        </p>
      </header>
      <div role="tablist" aria-label="Guest sections" class="guest-tabs" onKeyDown={onKey}>
        {tabs.map((t) => (
          <button type="button" role="tab" key={t} id={`guest-tab-${t}`} aria-selected={t === current} aria-controls={`guest-panel-${t}`} tabIndex={t === current ? 0 : -1} onClick={() => setTab(t)}>
            {TAB_LABELS[t]}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`guest-panel-${current}`} aria-labelledby={`guest-tab-${current}`} class="guest-panel">
        {current === 'overview' && (
          <>
            <GuestActions guest={guest} request={request} jobs={jobs} />
            <JobList jobs={jobs} />
            <MetricsPanel guestId={guest.id} request={request} windows={rateWindows} />
          </>
        )}
        {current === 'metadata' && <MetadataPanel guestId={guest.id} request={request} version={hashOf(JSON.stringify(guest.metadata ?? {}))} />}
        {current === 'snapshots' && (
          <>
            <SnapshotsPanel guest={guest} request={request} version={endedCount} queued={jobs.refresh} directDownloads={directDownloads} />
            <JobList jobs={jobs} />
          </>
        )}
        {current === 'console' && <ConsolePanel guestId={guest.id} request={request} />}
        {current === 'screen' && <ScreenPanel guestId={guest.id} request={request} />}
      </div>
    </section>
  );
}

/** A small number that changes when the text does (a dependency for effects). */
function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return hash;
}
