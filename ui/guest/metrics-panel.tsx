/**
 * CPU, network and disk rates of a guest over the last minutes, from its
 * metrics endpoints (GET /guests/{id}/metrics/cpu|nic|disk). Polled every
 * POLL_MS while the panel is mounted and the page visible; a hidden tab
 * polls nothing, and its first sample after it is shown again starts a new
 * base (no rate spans the time nobody looked). A kind the backend does not
 * serve (501) stops being asked for.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics } from '../../core/contract/wire-types.js';
import { getJson, guestPath, messageOf, statusOf, type AgentRequest } from './guest-client.js';
import { cpuCounters, diskCounters, formatBytes, nicCounters, RateWindow, type Counters } from './rates.js';
import { RateChart } from './rate-chart.js';

/** Often enough that a chart moves while one watches, rarely enough to cost the backend nothing. */
export const POLL_MS = 2000;
/** Minutes drawn; the points kept per chart are those. */
const MINUTES = 5;
const CAPACITY = (MINUTES * 60 * 1000) / POLL_MS;

interface Kind {
  id: 'cpu' | 'nic' | 'disk';
  title: string;
  names: readonly string[];
  labels: readonly string[];
  scale?: (name: string) => number;
  floor: number;
  counters: (body: never) => Counters;
  format: (value: number) => string;
}

const percent = (value: number) => `${value.toFixed(1)} %`;
const perSecond = (value: number) => `${formatBytes(value)}/s`;

const KINDS: readonly Kind[] = [
  { id: 'cpu', title: 'CPU', names: ['cpu'], labels: ['CPU (% of its vCPUs)'], floor: 10, scale: () => 100, counters: (b: GuestCpuMetrics[]) => cpuCounters(b), format: percent },
  { id: 'nic', title: 'Network', names: ['rx', 'tx'], labels: ['received', 'sent'], floor: 1024, counters: (b: Record<string, GuestNicMetrics>) => nicCounters(b), format: perSecond },
  { id: 'disk', title: 'Disk', names: ['read', 'write'], labels: ['read', 'written'], floor: 1024, counters: (b: Record<string, GuestDiskMetrics>) => diskCounters(b), format: perSecond },
];

export interface MetricsPanelProps {
  guestId: string;
  request: AgentRequest;
  /** The charts' data, kept by the view while another tab is open (useRateWindows). */
  windows: RateWindow[];
}

/** One window per chart for this guest, made once per guest and kept while the view shows it. */
export function useRateWindows(guestId: string): RateWindow[] {
  return useMemo(() => KINDS.map((kind) => new RateWindow(kind.names, CAPACITY, kind.scale)), [guestId]);
}

/** True while the page is visible (document.visibilityState). */
function usePageVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  useEffect(() => {
    const update = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', update);
    return () => document.removeEventListener('visibilitychange', update);
  }, []);
  return visible;
}

export function MetricsPanel({ guestId, request, windows }: MetricsPanelProps) {
  const [version, setVersion] = useState(0);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const visible = usePageVisible();

  useEffect(() => {
    if (!visible) return;
    for (const window of windows) window.rebase(Date.now());
    const unserved = new Set<string>();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      const found: Record<string, string> = {};
      await Promise.all(
        KINDS.map(async (kind, i) => {
          if (unserved.has(kind.id)) return;
          try {
            const body = await getJson<never>(request, guestPath(guestId, `/metrics/${kind.id}`));
            windows[i].add(Date.now(), kind.counters(body));
          } catch (error) {
            if (statusOf(error) === 501) unserved.add(kind.id);
            found[kind.id] = messageOf(error);
          }
        }),
      );
      if (stopped) return;
      setProblems(found);
      setVersion((v) => v + 1);
      // The next poll after this one answered: a slow backend is never asked twice at once.
      timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [guestId, request, windows, visible]);

  return (
    <section class="guest-metrics panel" aria-labelledby="guest-metrics-title">
      <h2 id="guest-metrics-title">Load</h2>
      <p class="muted">Rates from the guest's counters, every {POLL_MS / 1000} s, the last {MINUTES} minutes.</p>
      {KINDS.map((kind, i) => (
        <RateChart key={kind.id} id={kind.id} title={kind.title} window={windows[i]} version={version} labels={kind.labels} format={kind.format} spanSeconds={MINUTES * 60} floor={kind.floor} problem={problems[kind.id]} />
      ))}
    </section>
  );
}
