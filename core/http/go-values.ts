/**
 * Body fields as Go clients send them: every field present, `null` or the
 * zero value (`""`, `false`) when unset. These read both as the zero value,
 * so routes see one spelling of "not given".
 */
import { z } from 'zod';

/** A string of at most `max` characters; `null` or absent reads as `""`. */
export const goString = (max: number) => z.string().max(max).nullish().transform((v) => v ?? '');
/** A boolean; `null` or absent reads as `false`. */
export const goBool = z.boolean().nullish().transform((v) => v ?? false);
