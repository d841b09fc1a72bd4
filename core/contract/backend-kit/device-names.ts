/**
 * Host network device names. The kernel gives each NIC a host device name
 * at create (`Nic.device`) and backends use it for the tap (or libvirt's
 * `<target dev>`), so one function makes it: stable for a guest, unique
 * enough across guests, and within Linux's limit.
 */

/** Longest Linux interface name (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME = 15;

const INTERFACE_NAME = /^[A-Za-z0-9_.-]+$/;

/** The host device of a guest's NIC number `index`: "hk" + 8 hex digits of the id + "n" + index. */
export function tapName(guestId: string, index: number): string {
  return `hk${guestId.replaceAll('-', '').slice(0, 8)}n${index}`;
}

/** Whether `name` can be a Linux interface (letters, digits, _ . -, at most {@link MAX_INTERFACE_NAME}). */
export function isInterfaceName(name: string): boolean {
  return name.length <= MAX_INTERFACE_NAME && INTERFACE_NAME.test(name) && name !== '.' && name !== '..';
}
