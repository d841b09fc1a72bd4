/**
 * Which image a guest's disk is built on, as mistify defines it: a disk's
 * own `image`, else the guest's `image` for its first disk. Backends build
 * disks by it, and image stores check uses and refusals by it, so all of
 * them read it the same way.
 */
import type { Guest } from '../wire-types.js';

/** The image disk number `index` of `guest` is built on; "" for a blank disk. */
export function diskImage(guest: Pick<Guest, 'image' | 'disks'>, index: number): string {
  return guest.disks[index]?.image || (index === 0 ? guest.image : '');
}

/** Every image the guest's disks are built on, each once, in disk order. */
export function imagesOfDisks(guest: Pick<Guest, 'image' | 'disks'>): Set<string> {
  const named = new Set<string>();
  guest.disks.forEach((_, index) => {
    const name = diskImage(guest, index);
    if (name) named.add(name);
  });
  return named;
}
