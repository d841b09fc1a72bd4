/**
 * A guest's NICs as a backend may hand them to its hypervisor. The kernel
 * checked the request's shape; these checks guard what ends up inside a
 * hypervisor's own syntax (a QEMU `-device` option, domain XML), where a
 * model such as `e1000,romfile=/etc/shadow` would smuggle in options.
 */
import { StageRejection } from '../plugin-api.js';
import type { Nic } from '../wire-types.js';

/** The NIC models every backend offers. */
export const NIC_MODELS = ['virtio', 'e1000', 'e1000e', 'rtl8139', 'vmxnet3'] as const;
export type NicModel = (typeof NIC_MODELS)[number];

/** What clients may write for each model ("" is the default: virtio). */
const MODEL_NAMES: Record<string, NicModel> = {
  '': 'virtio',
  virtio: 'virtio',
  'virtio-net': 'virtio',
  'virtio-net-pci': 'virtio',
  e1000: 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  vmxnet3: 'vmxnet3',
};

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** Safe as a device id in a hypervisor's option syntax. */
const NIC_NAME = /^[A-Za-z0-9_-]+$/;

/** The NIC's model as one of {@link NIC_MODELS}; a 400 for anything else. */
export function nicModel(nic: Pick<Nic, 'name' | 'model'>): NicModel {
  const model = MODEL_NAMES[nic.model ?? ''];
  if (!model) throw new StageRejection(400, `nic ${nic.name}: unknown model "${nic.model}" (one of ${Object.keys(MODEL_NAMES).filter(Boolean).join(', ')})`);
  return model;
}

/** A 400 unless the NIC's MAC is six hex pairs joined by ":". */
export function checkMac(nic: Pick<Nic, 'name' | 'mac'>): void {
  if (!MAC.test(nic.mac)) throw new StageRejection(400, `nic ${nic.name}: bad MAC "${nic.mac}"`);
}

/** A 400 unless the NIC's name is letters, digits, _ and - (for backends that use it as a device id). */
export function checkNicName(nic: Pick<Nic, 'name'>): void {
  if (!NIC_NAME.test(nic.name)) throw new StageRejection(400, `nic name "${nic.name}" must be letters, digits, _ and -`);
}
