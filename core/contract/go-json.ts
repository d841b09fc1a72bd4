/**
 * A JSON value read as Go's encoding/json reads it into a struct: an absent
 * or `null` field holds its zero value (`""`, `0`, an empty list or map, a
 * zero struct), fields the struct does not have are dropped, and a value
 * the field's Go type cannot hold (a string into a uint, -1 or 1.5 into a
 * uint, a number into a map[string]string) fails the read with the path and
 * the type. Sub-agents are Go programs: they leave out every `omitempty`
 * field that holds its zero value, and this is how such an answer means
 * what its sender meant.
 *
 * Reading is done on every stage answer, so a value that already has its
 * type's shape comes back as the same object (nothing copied); only a value
 * with something absent, `null` or unknown is rebuilt.
 */

/** A Go type, as far as JSON decoding tells them apart. */
export type GoType =
  | 'string'
  | 'bool'
  /** uint, uint64: whole and not negative. */
  | 'uint'
  /** int, int64: whole. */
  | 'int'
  | 'float'
  /** Any JSON, passed on as it is (json.RawMessage). */
  | 'raw'
  | { readonly list: GoType }
  /** map[string]T */
  | { readonly map: GoType }
  | GoStruct
  | GoVariant;

/**
 * One of two structs, told apart by whether `key` is present: hyperkern's
 * own answers carry entries Go's types have no room for (a NIC without
 * counters says so in `counters` instead of claiming zeros), and reading
 * them as the Go struct would replace that word with zeros.
 */
export interface GoVariant {
  readonly variant: { readonly key: string; readonly present: GoStruct; readonly absent: GoStruct };
}

export interface GoStruct {
  readonly struct: Readonly<Record<string, GoType>>;
  /**
   * Fields the kernel's own type declares optional (`message?`): absent or
   * `null` they stay absent, which the kernel reads as the zero value.
   */
  readonly optional?: readonly string[];
}

/** A value Go could not read into its type: `path` says where. */
export class GoReadError extends Error {
  override readonly name = 'GoReadError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

const TYPE_NAMES: Record<string, string> = { string: 'string', bool: 'bool', uint: 'uint', int: 'int', float: 'float64', raw: 'json.RawMessage' };

function typeName(type: GoType): string {
  if (typeof type === 'string') return TYPE_NAMES[type];
  if ('list' in type) return `[]${typeName(type.list)}`;
  if ('map' in type) return `map[string]${typeName(type.map)}`;
  if ('variant' in type) return typeName(type.variant.absent);
  return 'struct';
}

/** The zero value of a Go type, as JSON would show it. */
export function goZero(type: GoType): unknown {
  if (type === 'string') return '';
  if (type === 'bool') return false;
  if (type === 'raw') return null;
  if (typeof type === 'string') return 0;
  if ('list' in type) return [];
  if ('map' in type) return {};
  if ('variant' in type) return goZero(type.variant.absent);
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(type.struct)) if (!type.optional?.includes(key)) out[key] = goZero(field);
  return out;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (isMap(value)) return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * A refusal on its way out of the nested reads: each level adds its key to
 * `where`, so no path is built while nothing is wrong (reading runs on
 * every stage answer). Not an Error: no stack is captured.
 */
class Refusal {
  where = '';
  constructor(readonly problem: string) {}
}

function refuse(value: unknown, type: GoType): never {
  throw new Refusal(`${describe(value)} is not a Go ${typeName(type)}`);
}

/** A refusal from inside `key` (".name", "[2]") names it. */
function within(error: unknown, key: string): unknown {
  if (error instanceof Refusal) error.where = key + error.where;
  return error;
}

/**
 * `value` read as Go type `type` (`path` names it in errors): the same
 * value when it already has the type's shape, a new one otherwise.
 * Throws {@link GoReadError}.
 */
export function readGo(value: unknown, type: GoType, path: string): unknown {
  try {
    return read(value, type);
  } catch (error) {
    if (error instanceof Refusal) throw new GoReadError(path + error.where, error.problem);
    throw error;
  }
}

function read(value: unknown, type: GoType): unknown {
  if (value === null || value === undefined) return goZero(type);
  switch (type) {
    case 'raw':
      return value;
    case 'string':
      return typeof value === 'string' ? value : refuse(value, type);
    case 'bool':
      return typeof value === 'boolean' ? value : refuse(value, type);
    case 'float':
      return typeof value === 'number' ? value : refuse(value, type);
    case 'int':
      return Number.isInteger(value) ? value : refuse(value, type);
    case 'uint':
      return Number.isInteger(value) && (value as number) >= 0 ? value : refuse(value, type);
  }
  if ('list' in type) return Array.isArray(value) ? readList(value, type.list) : refuse(value, type);
  if (!isMap(value)) return refuse(value, type);
  if ('map' in type) return readMap(value, type.map);
  if ('variant' in type) {
    const { key, present, absent } = type.variant;
    return readStruct(value, value[key] === undefined || value[key] === null ? absent : present);
  }
  return readStruct(value, type);
}

function readList(value: unknown[], itemType: GoType): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    let next: unknown;
    try {
      next = read(item, itemType);
    } catch (error) {
      throw within(error, `[${i}]`);
    }
    if (next !== item) (out ??= value.slice())[i] = next;
  }
  return out ?? value;
}

function readMap(value: Record<string, unknown>, itemType: GoType): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    const item = value[key];
    let next: unknown;
    try {
      next = read(item, itemType);
    } catch (error) {
      throw within(error, `.${key}`);
    }
    if (next !== item) (out ??= { ...value })[key] = next;
  }
  return out ?? value;
}

type Field = readonly [key: string, type: GoType, optional: boolean];

/** Each struct's fields as a list, made once. */
const fieldLists = new WeakMap<GoStruct, readonly Field[]>();

function fieldsOf(type: GoStruct): readonly Field[] {
  let fields = fieldLists.get(type);
  if (!fields) fieldLists.set(type, (fields = Object.entries(type.struct).map(([key, field]) => [key, field, type.optional?.includes(key) ?? false] as const)));
  return fields;
}

/** The first `count` fields of `value`, all of which read as they are, in a new object (absent ones left out). */
function copyFields(value: Record<string, unknown>, fields: readonly Field[], count: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const key = fields[i][0];
    const item = value[key];
    if (item !== undefined && item !== null) out[key] = item;
  }
  return out;
}

function readStruct(value: Record<string, unknown>, type: GoStruct): Record<string, unknown> {
  const fields = fieldsOf(type);
  let out: Record<string, unknown> | undefined;
  let present = 0;
  for (let i = 0; i < fields.length; i++) {
    const [key, fieldType, optional] = fields[i];
    const item = value[key];
    let next: unknown;
    if (item === undefined || item === null) {
      if (item === null) present += 1;
      // An optional field stays absent (a `null` one becomes absent); any other gets its zero value.
      if (optional) {
        if (item === null) out ??= copyFields(value, fields, i);
        continue;
      }
      next = goZero(fieldType);
    } else {
      present += 1;
      try {
        next = read(item, fieldType);
      } catch (error) {
        throw within(error, `.${key}`);
      }
      if (next === item) {
        if (out) out[key] = item;
        continue;
      }
    }
    (out ??= copyFields(value, fields, i))[key] = next;
  }
  if (out) return out;
  // Keys the struct does not have: Go drops them.
  let keys = 0;
  for (const _key in value) keys += 1;
  return keys === present ? value : copyFields(value, fields, fields.length);
}
