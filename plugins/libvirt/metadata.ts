/**
 * Guest metadata keys the libvirt plugin writes and reads back. The manifest
 * marks the ones that say which domain a guest is as owned by the plugin.
 */
export const LIBVIRT_METADATA = {
  /** The libvirt domain name of the guest. */
  domain: 'libvirt.domain',
  /** The domain's UUID (the guest id for domains hyperkern defined). */
  uuid: 'libvirt.uuid',
  /** "true" when the domain existed before and was adopted; its storage is not hyperkern's. */
  adopted: 'libvirt.adopted',
  /** Set by a client on create: adopt this existing domain instead of defining one. */
  adopt: 'libvirt.adopt',
} as const;
