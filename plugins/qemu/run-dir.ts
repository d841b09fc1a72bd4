/**
 * Where a guest's files live: one folder per guest under the plugin's data
 * dir. Everything a restarted agent needs to find the QEMU process again is
 * here (pidfile, QMP socket), next to the disks and the serial log.
 */
import path from 'node:path';

export class RunDir {
  readonly dir: string;
  constructor(dataDir: string, readonly guestId: string) {
    if (!/^[A-Za-z0-9._-]+$/.test(guestId) || guestId === '.' || guestId === '..') {
      throw new Error(`guest id "${guestId}" cannot name a folder`);
    }
    this.dir = path.join(dataDir, guestId);
  }
  get pidFile(): string {
    return path.join(this.dir, 'qemu.pid');
  }
  get qmpSocket(): string {
    return path.join(this.dir, 'qmp.sock');
  }
  /** Serial port 0 (the guest console): everything it printed, appended by QEMU, rotated by the agent to console.log.1. */
  get consoleLog(): string {
    return path.join(this.dir, 'console.log');
  }
  /** Serial port 0 as a unix socket: the agent's connection to the console. */
  get consoleSocket(): string {
    return path.join(this.dir, 'console.sock');
  }
  /** Serial port 1, a unix socket anyone on the host can attach to (e.g. socat). */
  get serialSocket(): string {
    return path.join(this.dir, 'serial1.sock');
  }
  /** The VNC server's unix socket (option vncSocket). */
  get vncSocket(): string {
    return path.join(this.dir, 'vnc.sock');
  }
  /** What QEMU printed before daemonizing (errors in its arguments, mostly). */
  get stderrLog(): string {
    return path.join(this.dir, 'qemu.stderr.log');
  }
  /** Text for a client (job messages): this folder's host path replaced by a name for it. */
  redact(text: string): string {
    return text.replaceAll(this.dir, `<run dir of guest ${this.guestId}>`);
  }
  disk(device: string): string {
    if (!/^[a-z]+$/.test(device)) throw new Error(`disk device "${device}" cannot name a file`);
    return path.join(this.dir, `${device}.qcow2`);
  }
}
