/**
 * The documented CTID rule: CTID = VMID + offset (default 1000, `ONEVZ = [ CTID_OFFSET = … ]`
 * in vmm_ssh_ovz.conf). CTIDs ≤ 100 are reserved by OpenVZ, so the offset must keep VMID 0
 * above 100.
 */
export const DEFAULT_CTID_OFFSET = 1000;
export const MAX_CTID = 2147483644;

export function ctidForVmid(vmid: number, offset = DEFAULT_CTID_OFFSET): number {
  if (!Number.isInteger(vmid) || vmid < 0) throw new RangeError(`bad VMID ${vmid}`);
  if (!Number.isInteger(offset) || offset < 101) {
    throw new RangeError(`CTID_OFFSET must be an integer ≥ 101, got ${offset}`);
  }
  const ctid = vmid + offset;
  if (ctid > MAX_CTID) throw new RangeError(`CTID ${ctid} exceeds ${MAX_CTID}`);
  return ctid;
}

/** Parse a deploy id (CTID) given on the command line. */
export function parseCtid(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n > 100 && n <= MAX_CTID ? n : undefined;
}
