/**
 * ?guest= and ?type= of GET /events. A type is a full event type
 * ("job.failed") or a family ("job" = every job.* event).
 */
import { Errors } from '../errors.js';
import { EVENT_TYPES, type KernelEvent } from './kernel-event.js';

const FAMILIES = [...new Set(EVENT_TYPES.map((t) => t.split('.')[0]))];

export type EventFilter = (event: KernelEvent) => boolean;

function list(raw: string | string[] | undefined): string[] {
  const joined = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  return joined.split(',').map((s) => s.trim()).filter(Boolean);
}

export function eventFilter(query: Record<string, string | string[] | undefined>): EventFilter {
  const guests = new Set(list(query.guest));
  const types = list(query.type);
  for (const type of types) {
    if (!FAMILIES.includes(type) && !(EVENT_TYPES as readonly string[]).includes(type)) {
      throw Errors.badRequest(`type "${type}" is not an event type; use one of ${[...FAMILIES, ...EVENT_TYPES].join(', ')}`);
    }
  }
  const wanted = new Set(types);
  return (event) =>
    (guests.size === 0 || (event.guest !== undefined && guests.has(event.guest))) &&
    (wanted.size === 0 || wanted.has(event.type) || wanted.has(event.type.split('.')[0]));
}
