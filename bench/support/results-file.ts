/** bench/RESULTS.md is shared: each bench script rewrites only its own marked section. */

/** This script's part of bench/RESULTS.md; other benches (images, scrape, fleet, …) own the rest. */
export const OWN_BEGIN = '<!-- bench run: begin (written by npm run bench) -->';
export const OWN_END = '<!-- bench run: end -->';

/**
 * `current` with this script's section replaced by `section`, everything
 * else kept byte for byte. A file written before the markers existed held
 * this script's output from the top up to the first section another script
 * wrote (a marker comment or a heading none of ours uses), so that prefix is
 * what gets replaced then.
 */
export function withOwnSection(current: string, section: string): string {
  const marked = `${OWN_BEGIN}\n${section.trim()}\n${OWN_END}`;
  const begin = current.indexOf(OWN_BEGIN);
  const end = current.indexOf(OWN_END);
  if (begin >= 0 && end > begin) return current.slice(0, begin) + marked + current.slice(end + OWN_END.length);
  if (!current.trim()) return `${marked}\n`;
  if (!current.startsWith('# Benchmark results')) return `${marked}\n\n${current.trimStart()}`;
  const foreign = /^(<!-- |## (Image transfers|GET \/metrics|Fleet link|QEMU and libvirt metrics))/m.exec(current);
  const rest = foreign ? current.slice(foreign.index) : '';
  return rest ? `${marked}\n\n${rest}` : `${marked}\n`;
}

/**
 * `current` with the section between `begin` and `end` replaced by
 * `section` (markers included), or `section` appended when there is none;
 * the rest is kept byte for byte. For the benches other than run.ts.
 */
export function withMarkedSection(current: string, begin: string, end: string, section: string): string {
  const marked = `${begin}\n${section.trim()}\n${end}`;
  const at = current.indexOf(begin);
  const to = current.indexOf(end);
  if (at >= 0 && to > at) return current.slice(0, at) + marked + current.slice(to + end.length);
  return current.trim() ? `${current.trimEnd()}\n\n${marked}\n` : `${marked}\n`;
}
