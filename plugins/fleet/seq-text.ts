/**
 * Every record the fleet link writes carries the `seq` of the transaction
 * that wrote it, as its last field: the rest of the text then compares byte
 * for byte with what the link would write now, and the highest seq under
 * a host's prefix is where its numbering goes on after a restart.
 */

/** The record's text with `seq` appended as its last field. */
export function withSeq(text: string, seq: number): string {
  return `${text.slice(0, -1)},"seq":${seq}}`;
}

/** A stored record's text without its `seq`, to compare; undefined for none or not JSON. */
export function withoutSeq(text: string | null | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const { seq: _seq, ...rest } = JSON.parse(text) as Record<string, unknown>;
    return JSON.stringify(rest);
  } catch {
    return undefined;
  }
}

/** The highest seq among stored records (0 when none has one). */
export function maxSeq(texts: Array<string | null>): number {
  let max = 0;
  for (const text of texts) {
    if (!text) continue;
    try {
      const seq = (JSON.parse(text) as { seq?: unknown }).seq;
      if (typeof seq === 'number' && seq > max) max = seq;
    } catch {
      /* not ours: ignored, and overwritten by the reconcile */
    }
  }
  return max;
}
