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
  | GoStruct;

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
 * `value` read as Go type `type` (`path` names it in errors): the same
 * value when it already has the type's shape, a new one otherwise.
 * Throws {@link GoReadError}.
 */
export function readGo(value: unknown, type: GoType, path: string): unknown {
  if (value === null || value === undefined) return goZero(type);
  if (type === 'raw') return value;
  const refuse = (): never => {
    throw new GoReadError(path, `${describe(value)} is not a Go ${typeName(type)}`);
  };
  switch (type) {
    case 'string':
      return typeof value === 'string' ? value : refuse();
    case 'bool':
      return typeof value === 'boolean' ? value : refuse();
    case 'float':
      return typeof value === 'number' ? value : refuse();
    case 'int':
      return Number.isInteger(value) ? value : refuse();
    case 'uint':
      return Number.isInteger(value) && (value as number) >= 0 ? value : refuse();
  }
  if ('list' in type) {
    if (!Array.isArray(value)) return refuse();
    let out: unknown[] | undefined;
    value.forEach((item, i) => {
      const read = readGo(item, type.list, `${path}[${i}]`);
      if (read !== item) (out ??= [...value])[i] = read;
    });
    return out ?? value;
  }
  if (!isMap(value)) return refuse();
  if ('map' in type) {
    let out: Record<string, unknown> | undefined;
    for (const [key, item] of Object.entries(value)) {
      const read = readGo(item, type.map, `${path}.${key}`);
      if (read !== item) (out ??= { ...value })[key] = read;
    }
    return out ?? value;
  }
  return readStruct(value, type, path);
}

/** Each struct's fields as a list, made once: reading runs on every stage answer. */
const fieldLists = new WeakMap<GoStruct, readonly [string, GoType][]>();

function readStruct(value: Record<string, unknown>, type: GoStruct, path: string): Record<string, unknown> {
  let fieldList = fieldLists.get(type);
  if (!fieldList) fieldLists.set(type, (fieldList = Object.entries(type.struct)));
  let changed = false;
  let present = 0;
  const fields: [string, unknown][] = [];
  for (const [key, fieldType] of fieldList) {
    const item = value[key];
    if (item === undefined || item === null) {
      // A `null` field is rebuilt away; an absent optional one stays absent, any other gets its zero value.
      if (item === null) changed = true;
      if (type.optional?.includes(key)) continue;
      changed = true;
      fields.push([key, goZero(fieldType)]);
      continue;
    }
    present += 1;
    const read = readGo(item, fieldType, `${path}.${key}`);
    if (read !== item) changed = true;
    fields.push([key, read]);
  }
  // Keys the struct does not have: Go drops them.
  if (!changed && present === Object.keys(value).length) return value;
  return Object.fromEntries(fields);
}
