/**
 * The migration bench's view of a guest's downtime (bench/migration.ts):
 * the guest prints its own uptime every 10 ms; guest time stops while the
 * VM is stopped, so the wall time between the last line from the source
 * and the first from the target minus the guest time between them is the
 * pause it lived through (console latency on either side included).
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

/** The pause the guest lived through between its last line on the source and its first on the target. */
export function guestDowntime(source: ClockReader, target: ClockReader, after: number): number | undefined {
  const first = target.stamps.find((s) => s.hostMs > after);
  const last = [...source.stamps].reverse().find((s) => s.guestMs <= (first?.guestMs ?? Infinity));
  if (!first || !last) return undefined;
  return first.hostMs - last.hostMs - (first.guestMs - last.guestMs);
}
