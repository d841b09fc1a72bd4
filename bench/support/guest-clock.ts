/**
 * The migration bench's view of a guest's downtime (bench/migration.ts):
 * the guest prints its own uptime every 10 ms; guest time stops while the
 * VM is stopped, so the wall time between a line from the source and one
 * from the target minus the guest time between them is the pause it lived
 * through, plus the consoles' delivery lag, which guestDowntime() takes
 * out as far as the lines allow.
 */

/** The guest's clock every 10 ms, with the host's arrival time of each line kept by the reader. */
export const CLOCK_LOOP = 'while true; do read up rest < /proc/uptime; echo "up $up"; sleep 0.01; done &\r';

interface Stamp {
  hostMs: number;
  guestMs: number;
}

/** "up 12.34" lines as they arrive, each with the host's time. */
export class ClockReader {
  readonly stamps: Stamp[] = [];
  private text = '';
  feed(chunk: Buffer): void {
    const hostMs = performance.now();
    this.text += chunk.toString('latin1');
    const lines = this.text.split('\n');
    this.text = lines.pop() ?? '';
    for (const line of lines) {
      const m = /up (\d+\.\d+)/.exec(line);
      if (m) this.stamps.push({ hostMs, guestMs: Number(m[1]) * 1000 });
    }
  }
}

/** How much guest time, on each side of the pause, the line that arrived soonest is picked from. */
const WINDOW_MS = 1000;

/**
 * The pause the guest lived through. While the guest runs, a line's host
 * arrival time minus the guest time it prints is constant but for the
 * console's delivery lag (each agent's console, a busy event loop); the
 * pause adds to it. So the pause is the least of that difference among the
 * target's first lines minus the least among the source's last lines: a
 * lag only ever adds, and the line that arrived soonest on each side
 * carries the least of it (one line each, as first measured, went negative
 * when the source's last lines arrived late).
 */
export function guestDowntime(source: ClockReader, target: ClockReader, after: number): number | undefined {
  const first = target.stamps.find((s) => s.hostMs > after);
  if (!first) return undefined;
  const before = source.stamps.filter((s) => s.guestMs <= first.guestMs && s.guestMs > first.guestMs - WINDOW_MS);
  const afterwards = target.stamps.filter((s) => s.hostMs > after && s.guestMs < first.guestMs + WINDOW_MS);
  if (before.length === 0) return undefined;
  const offset = (stamps: Stamp[]) => Math.min(...stamps.map((s) => s.hostMs - s.guestMs));
  return offset(afterwards) - offset(before);
}
