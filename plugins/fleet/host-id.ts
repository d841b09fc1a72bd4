import { readFile } from 'node:fs/promises';

/**
 * The host's id in the fleet: the configured one, else systemd's
 * /etc/machine-id (stable across reboots, unique per installation).
 */
export async function resolveHostId(configured: string | undefined, machineIdFile = '/etc/machine-id'): Promise<string> {
  if (configured) return configured;
  let text: string;
  try {
    text = await readFile(machineIdFile, 'utf8');
  } catch (error) {
    throw new Error(`fleet: no "hostId" in the options and ${machineIdFile} is unreadable (${(error as NodeJS.ErrnoException).code ?? error}); set "hostId"`);
  }
  const id = text.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) throw new Error(`fleet: ${machineIdFile} does not hold a usable id; set "hostId"`);
  return id;
}
