/**
 * Which snapshot names the QEMU backend accepts. qemu-img looks a snapshot
 * up by id *or* name (`-a 2` could mean id 2), and `-l snapshot.name=...`
 * is a QEMU option string where a comma ends the value, so names are kept to
 * a plain alphabet and may not be all digits.
 */
import { StageRejection } from '../../core/contract/index.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Throws a 400 saying what is wrong with a snapshot name; returns it when fine. */
export function checkSnapshotName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new StageRejection(400, 'a snapshot needs a name (dest)');
  if (!NAME.test(name)) {
    throw new StageRejection(400, `snapshot name "${name}" must be 1-80 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  if (/^[0-9]+$/.test(name)) throw new StageRejection(400, `snapshot name "${name}" must not be all digits (qcow2 would confuse it with a snapshot id)`);
  return name;
}
