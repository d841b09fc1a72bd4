/**
 * The simulator's serial console: a line-echo shell, so the console API
 * (and a terminal on it) has something real to show. Each boot prints a
 * banner and a prompt; typed bytes are echoed as a terminal in cooked mode
 * would (backspace erases, Ctrl-C drops the line); Enter answers the line:
 * `echo WORDS` prints WORDS, any other line is printed back as it was. Input
 * reaches the shell only while the guest runs.
 *
 * The output log is kept in memory (the simulated hypervisor has nothing
 * on disk), at most `logBytes` per guest, made at a guest's first output.
 */
import { ConsoleSwitchboard, type ConsolePurpose, type GuestConsole } from '../../core/contract/index.js';

const BACKSPACES = new Set([0x08, 0x7f]);
const CTRL_C = 0x03;

export class SimulatedConsoles {
  private readonly board = new ConsoleSwitchboard();
  /** Output kept per guest, as latin1 text (one byte per char: binary-safe, and cheaper than Buffers). */
  private readonly logs = new Map<string, string>();
  /** The line being typed, per guest. */
  private readonly lines = new Map<string, string>();

  constructor(
    private readonly logBytes: number,
    /** Whether the guest runs now (typed bytes reach its shell only then). */
    private readonly isRunning: (guestId: string) => boolean,
  ) {}

  /** The console stage: the guest's console, typed bytes going to its shell. */
  open(guestId: string, purpose: ConsolePurpose): GuestConsole {
    this.board.connectInput(guestId, (bytes) => this.type(guestId, bytes));
    return this.board.open(guestId, purpose, async (bytes) => {
      const text = this.logs.get(guestId) ?? '';
      return Buffer.from(text.slice(Math.max(0, text.length - bytes)), 'latin1');
    });
  }

  /** The guest (re)booted: open consoles hear of it, and the banner and prompt are printed. */
  boot(guestId: string, reason: string): void {
    this.lines.delete(guestId);
    this.board.reset(guestId, reason);
    this.print(guestId, `\r\nhyperkern simulator: guest ${guestId} boots (${reason})\r\nline-echo console: "echo WORDS" prints WORDS, other lines come back as typed\r\n${prompt(guestId)}`);
  }

  /** The guest OS powered off (ACPI). */
  halted(guestId: string): void {
    this.lines.delete(guestId);
    this.print(guestId, '\r\nsimulated guest: power down\r\n');
  }

  /** The guest is deleted: its consoles end, its log is gone. */
  forget(guestId: string): void {
    this.board.closeAll(guestId);
    this.logs.delete(guestId);
    this.lines.delete(guestId);
  }

  stop(): void {
    this.board.closeAll();
  }

  private type(guestId: string, bytes: Buffer): void {
    if (!this.isRunning(guestId)) return;
    let line = this.lines.get(guestId) ?? '';
    let echo = '';
    for (const byte of bytes) {
      if (byte === 0x0d || byte === 0x0a) {
        echo += `\r\n${answer(line)}${prompt(guestId)}`;
        line = '';
      } else if (BACKSPACES.has(byte)) {
        if (line.length > 0) {
          line = line.slice(0, -1);
          echo += '\b \b';
        }
      } else if (byte === CTRL_C) {
        echo += `^C\r\n${prompt(guestId)}`;
        line = '';
      } else if (byte >= 0x20) {
        line += String.fromCharCode(byte);
        echo += String.fromCharCode(byte);
      }
    }
    this.lines.set(guestId, line);
    if (echo) this.print(guestId, echo);
  }

  private print(guestId: string, text: string): void {
    const kept = (this.logs.get(guestId) ?? '') + text;
    this.logs.set(guestId, kept.length > this.logBytes ? kept.slice(kept.length - this.logBytes) : kept);
    this.board.output(guestId, Buffer.from(text, 'latin1'));
  }
}

function prompt(guestId: string): string {
  return `sim-${guestId.slice(0, 8)}$ `;
}

/** What the shell prints for a line: echo's words, else the line itself; nothing for an empty line. */
function answer(line: string): string {
  const trimmed = line.trim();
  if (trimmed === '') return '';
  if (trimmed === 'echo' || trimmed.startsWith('echo ')) return `${trimmed.slice(5)}\r\n`;
  return `${line}\r\n`;
}
