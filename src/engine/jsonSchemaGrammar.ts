// JSON Schema → GBNF, bounded by the token budget so that the output is valid
// by construction.
//
// Every token of every model decodes to at least one byte, so a grammar whose
// longest sentence is at most `maxTokens` bytes always reaches its end within
// `maxTokens` tokens. We therefore compile the schema with a byte budget:
// strings, numbers and arrays get length bounds that make the whole document
// fit; the fixed skeleton (braces, keys) is counted exactly. The output is
// compact JSON (no whitespace); strings may hold any UTF-8 text, counted in
// bytes. A schema whose smallest document does not fit is refused up front.
//
// checkSchema() is the contract: sql/src/25-structured-validation.sql
// (_steadytext_structured_schema_error) walks the schema in the same order
// with the same rules, and test/structured/schemaCorpus.test.ts proves both
// give the same verdict and keyword on every schema of the corpus. Supported:
//   type, enum, const (with type only); properties, required (names outside
//   properties are emitted with any value), additionalProperties,
//   minProperties, maxProperties; items, prefixItems, minItems, maxItems,
//   uniqueItems (at most 1 item); minLength, maxLength, pattern (the regex
//   dialect of regexGrammar.ts), format (date, time, date-time, uuid, email,
//   ipv4, hostname); minimum, maximum, exclusiveMinimum, exclusiveMaximum
//   (a bounded number is written as an integer within the bounds); anyOf;
//   oneOf with branches of disjoint types; allOf whose parts merge;
//   annotations. Anything else is refused (0A000, naming the keyword).
import { EngineError } from './types.ts';
import {
  compileRegex,
  MAX_GBNF_COUNT,
  MAX_GRAMMAR_WORK,
  parseRegex,
  regexWork,
  StructuredInputError,
  workExcess,
  type StructuredSqlState,
} from './regexGrammar.ts';

type Obj = Record<string, unknown>;

/** Validation keywords a grammar cannot guarantee: refused (0A000). Other unknown keys are annotations. */
export const UNSUPPORTED = [
  '$ref', '$dynamicRef', '$recursiveRef', 'not', 'multipleOf', 'patternProperties', 'propertyNames', 'dependentRequired',
  'dependentSchemas', 'dependencies', 'if', 'then', 'else', 'contains', 'minContains', 'maxContains',
  'unevaluatedProperties', 'unevaluatedItems', 'additionalItems',
];
export const KEYWORDS = [
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties',
  'items', 'prefixItems', 'minItems', 'maxItems', 'uniqueItems', 'minLength', 'maxLength', 'pattern', 'format',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'anyOf', 'oneOf', 'allOf',
];
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
type JsonType = (typeof TYPES)[number];

/** `format` → the regex (dialect of regexGrammar.ts) its strings are drawn from; each passes ajv-formats' full check. */
export const FORMATS: Record<string, string> = {
  date: '\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))',
  time: '(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)',
  'date-time': '',
  uuid: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  email: '[a-z0-9_+-]{1,32}(?:\\.[a-z0-9_+-]{1,32}){0,2}@[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,2}\\.[a-z]{2,6}',
  ipv4: '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?:\\.(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}',
  hostname: '[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,3}',
};
FORMATS['date-time'] = `${FORMATS.date}T${FORMATS.time}`;

/** Integers the grammar writes are at most this many digits. */
const MAX_INT_DIGITS = 15;
const MAX_INT = 10 ** MAX_INT_DIGITS - 1;
const MAX_FRACTION_DIGITS = 6;
/** Arrays without maxItems get at most this many items (the budget may allow fewer). */
const DEFAULT_MAX_ITEMS = 16;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const utf8Len = (s: string) => Buffer.byteLength(s, 'utf8');

/** jsonb's key order: shorter keys first, then bytewise. */
export function jsonbKeys(o: Obj): string[] {
  return Object.keys(o).sort((a, b) => {
    const la = utf8Len(a);
    const lb = utf8Len(b);
    return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
  });
}

/** Deep equality as jsonb compares values (object key order ignored). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObj(a) || isObj(b)) {
    if (!isObj(a) || !isObj(b)) return false;
    const ka = jsonbKeys(a);
    const kb = jsonbKeys(b);
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && jsonEqual(a[k], b[k]));
  }
  return a === b;
}

function refuse(state: StructuredSqlState, keyword: string, path: string, what: string): never {
  throw new StructuredInputError(state, `JSON schema: ${path}.${keyword} ${what}`, undefined, keyword);
}

function jsonTypeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

function typeList(s: Obj): JsonType[] | null {
  if (s.type === undefined) return null;
  return (Array.isArray(s.type) ? s.type : [s.type]) as JsonType[];
}

function admits(types: JsonType[], v: unknown): boolean {
  const t = jsonTypeOf(v);
  return types.includes(t) || (t === 'integer' && types.includes('number'));
}

const isCount = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Integer bounds a schema's numbers are generated within (inclusive), or null if unbounded on that side. */
export function intBounds(s: Obj): { lo: number | null; hi: number | null } {
  let lo: number | null = null;
  let hi: number | null = null;
  if (typeof s.minimum === 'number') lo = Math.ceil(s.minimum);
  if (typeof s.exclusiveMinimum === 'number') lo = Math.max(lo ?? -Infinity, Math.floor(s.exclusiveMinimum) + 1);
  if (typeof s.maximum === 'number') hi = Math.floor(s.maximum);
  if (typeof s.exclusiveMaximum === 'number') hi = Math.min(hi ?? Infinity, Math.ceil(s.exclusiveMaximum) - 1);
  return { lo, hi };
}

/** allOf folded into one schema (checkSchema has ensured the parts merge). */
export function mergeAllOf(s: Obj): Obj {
  if (!Array.isArray(s.allOf)) return s;
  const out: Obj = {};
  for (const [k, v] of Object.entries(s)) if (k !== 'allOf') out[k] = v;
  for (const part of s.allOf) {
    if (!isObj(part)) continue;
    for (const [k, v] of Object.entries(part)) {
      if (k === 'properties' && isObj(v)) out.properties = { ...(out.properties as Obj | undefined), ...v };
      else if (k === 'required' && Array.isArray(v)) out.required = [...new Set([...((out.required as string[]) ?? []), ...v])];
      else out[k] = v;
    }
  }
  return out;
}

/**
 * Throws StructuredInputError (0A000 not supported, 22023 malformed, naming
 * the keyword) unless every document the compiled grammar writes validates.
 * Breadth first, keys in jsonb order: the order the SQL validator walks.
 */
export function checkSchema(schema: unknown): void {
  if (schema === true) return;
  if (!isObj(schema)) refuse('22023', '', 'schema', 'must be a JSON object (or true)');
  const queue: Array<[unknown, string]> = [[schema, 'schema']];
  for (let head = 0; head < queue.length; head++) {
    const [node, path] = queue[head];
    if (node === true) continue;
    if (node === false) refuse('0A000', 'false', path, '(a schema nothing validates)');
    if (!isObj(node)) refuse('22023', '', path, 'must be a schema object or boolean');
    checkNode(node, path);
    for (const k of jsonbKeys(node)) {
      const v = node[k];
      if (k === 'properties') for (const p of jsonbKeys(v as Obj)) queue.push([(v as Obj)[p], `${path}.properties.${p}`]);
      else if ((k === 'additionalProperties' || k === 'items') && isObj(v)) queue.push([v, `${path}.${k}`]);
      else if (['prefixItems', 'anyOf', 'oneOf', 'allOf'].includes(k)) (v as unknown[]).forEach((x, i) => queue.push([x, `${path}.${k}[${i}]`]));
    }
  }
  const work = schemaWork(schema);
  if (work > MAX_GRAMMAR_WORK) throw new StructuredInputError('54000', `JSON schema: schema ${workExcess(work)}`, undefined, '');
}

// ---- sampler work per character ------------------------------------------------
//
// The regex rule's measure (grammarWork in regexGrammar.ts: per character, the
// sum over the grammar positions that can match it of (4 + follow)^2, follow
// counting the parts that can come next, an alternation as one),
// bounded per schema without listing the document grammar's positions, which
// depend on max_tokens. Everything this compiler writes is deterministic but
// alternatives: anyOf/oneOf branches, type lists (integer and number both
// start with digits), enum values and booleans. Parses of alternatives that
// share a prefix run side by side, so the work of alternatives adds up and,
// nested (anyOf of arrays of anyOf ...), multiplies: an anyOf of 3 arrays
// nested 5 deep took 42 ms a character on the tiny model, 12x a plain one.
// Properties and items are written one after another: an object or array
// costs what its most expensive member costs. Leaves, from the grammar above
// (what follows a value is at most 3 parts: a comma, a closing bracket, the end):
//   string   5 kinds of character (ascii, escape, 2-, 3-, 4-byte) can match,
//            each followed by 2 parts (the next character, the closing
//            quote), and the closing quote, followed by at most 3: 5 * 6^2 + 7^2
//   number   at most 3 digit-length alternatives side by side (intRange), each
//            digit followed by at most 5 parts (a digit, the fraction, 3
//            after the value): 3 * 9^2
//   n literals (enum, const, true/false, null): all can match the first
//            character, each followed by 1 part; distinct values end at
//            different characters, one at most followed by 3: 25n + 7^2
//   pattern, format: grammarWork of the regex.
// sql/src/25-structured-validation.sql (_steadytext_structured_schema_work)
// computes the same; test/structured/schemaCorpus.test.ts compares them.
const STRING_WORK = 5 * 6 ** 2 + 7 ** 2;
const NUMBER_WORK = 3 * 9 ** 2;
const literalWork = (n: number) => 25 * n + 7 ** 2;

/** The types a schema admits: its `type`, else the one its keywords imply, else any scalar. */
function schemaTypes(s: Obj): JsonType[] {
  const t = typeList(s);
  if (t) return t;
  if (s.properties || s.required || s.minProperties !== undefined) return ['object'];
  if (s.items || s.prefixItems) return ['array'];
  return ['string', 'number', 'boolean', 'null'];
}

/** The sampler work per character of a checked schema's grammar (an upper bound, see above). */
export function schemaWork(s0: unknown): number {
  if (s0 === true) return schemaWork({});
  const s = mergeAllOf(s0 as Obj);
  if ('const' in s) return literalWork(1);
  if (Array.isArray(s.enum)) return literalWork(s.enum.length);
  const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (branches) return branches.reduce((a: number, b) => a + schemaWork(b), 0);
  return schemaTypes(s).reduce((a, t) => a + typeWork(s, t), 0);
}

function typeWork(s: Obj, t: JsonType): number {
  switch (t) {
    case 'string':
      // Checked patterns: within the weight limit, so measured.
      if (typeof s.pattern === 'string') return regexWork(s.pattern)!;
      if (typeof s.format === 'string') return regexWork(FORMATS[s.format])!;
      return STRING_WORK;
    case 'number':
    case 'integer':
      return NUMBER_WORK;
    case 'boolean':
      return literalWork(2);
    case 'null':
      return literalWork(1);
    case 'object': {
      const properties = isObj(s.properties) ? s.properties : {};
      const parts = Object.values(properties).map(schemaWork);
      const required = Array.isArray(s.required) ? (s.required as string[]) : [];
      if (required.some((r) => !Object.hasOwn(properties, r))) parts.push(schemaWork(true));
      return Math.max(literalWork(1), ...parts);
    }
    case 'array': {
      if (Array.isArray(s.prefixItems)) return Math.max(literalWork(1), ...s.prefixItems.map(schemaWork));
      if (s.items === false) return literalWork(1);
      return Math.max(literalWork(1), schemaWork(s.items ?? true));
    }
  }
}

function checkNode(s: Obj, path: string): void {
  const keys = jsonbKeys(s);
  for (const k of keys) {
    if (UNSUPPORTED.includes(k)) refuse('0A000', k, path, 'is not supported');
  }
  // values, in KEYWORDS order
  const has = (k: string) => Object.hasOwn(s, k);
  if (has('type')) {
    const t = s.type;
    const ok = (x: unknown) => typeof x === 'string' && (TYPES as readonly string[]).includes(x);
    if (!(ok(t) || (Array.isArray(t) && t.length > 0 && t.every(ok)))) refuse('22023', 'type', path, `must be one of ${TYPES.join(', ')} (or an array of them)`);
  }
  if (has('enum') && !(Array.isArray(s.enum) && s.enum.length > 0)) refuse('22023', 'enum', path, 'must be a non-empty array');
  if (has('properties') && !isObj(s.properties)) refuse('22023', 'properties', path, 'must be an object of schemas');
  if (has('required') && !(Array.isArray(s.required) && s.required.every((x) => typeof x === 'string'))) refuse('22023', 'required', path, 'must be an array of strings');
  if (has('additionalProperties') && !(typeof s.additionalProperties === 'boolean' || isObj(s.additionalProperties))) {
    refuse('22023', 'additionalProperties', path, 'must be a boolean or a schema');
  }
  for (const k of ['minProperties', 'maxProperties']) if (has(k) && !isCount(s[k])) refuse('22023', k, path, 'must be a non-negative integer');
  if (has('items')) {
    if (Array.isArray(s.items)) refuse('0A000', 'items', path, 'as an array (tuple form) is not supported; use prefixItems');
    if (!(typeof s.items === 'boolean' || isObj(s.items))) refuse('22023', 'items', path, 'must be a schema');
  }
  if (has('prefixItems') && !Array.isArray(s.prefixItems)) refuse('22023', 'prefixItems', path, 'must be an array of schemas');
  for (const k of ['minItems', 'maxItems']) if (has(k) && !isCount(s[k])) refuse('22023', k, path, 'must be a non-negative integer');
  if (has('uniqueItems') && typeof s.uniqueItems !== 'boolean') refuse('22023', 'uniqueItems', path, 'must be a boolean');
  for (const k of ['minLength', 'maxLength']) if (has(k) && !isCount(s[k])) refuse('22023', k, path, 'must be a non-negative integer');
  if (has('pattern')) {
    if (typeof s.pattern !== 'string') refuse('22023', 'pattern', path, 'must be a string');
    try {
      parseRegex(s.pattern);
    } catch (err) {
      if (err instanceof StructuredInputError) refuse(err.sqlstate, 'pattern', path, err.message);
      throw err;
    }
  }
  if (has('format')) {
    if (typeof s.format !== 'string') refuse('22023', 'format', path, 'must be a string');
    if (!Object.hasOwn(FORMATS, s.format)) refuse('0A000', 'format', path, `'${s.format}' is not supported (supported: ${Object.keys(FORMATS).join(', ')})`);
  }
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
    if (has(k) && !(typeof s[k] === 'number' && Number.isFinite(s[k]))) refuse('22023', k, path, 'must be a number');
  }
  for (const k of ['anyOf', 'oneOf', 'allOf']) {
    if (has(k) && !(Array.isArray(s[k]) && (s[k] as unknown[]).length > 0)) refuse('22023', k, path, 'must be a non-empty array of schemas');
  }

  // combinations
  const validating = keys.filter((k) => KEYWORDS.includes(k));
  if (has('enum') || has('const')) {
    const k = has('const') ? 'const' : 'enum';
    if (validating.some((x) => x !== 'type' && x !== 'enum' && x !== 'const') || (has('enum') && has('const'))) {
      refuse('0A000', k, path, 'combines only with type');
    }
    const types = typeList(s);
    const values = has('const') ? [s.const] : (s.enum as unknown[]);
    if (types && values.some((v) => !admits(types, v))) refuse('22023', k, path, `holds a value that is not of type ${types.join(' or ')}`);
  }
  for (const k of ['anyOf', 'oneOf']) {
    if (!has(k)) continue;
    if (validating.some((x) => x !== k)) refuse('0A000', k, path, 'combines with no other validation keyword');
    if (k === 'oneOf') {
      const seen = new Set<string>();
      for (const b of s.oneOf as unknown[]) {
        const types = isObj(b) ? typeList(b) : null;
        if (!types) refuse('0A000', 'oneOf', path, 'needs a type on every branch');
        for (const t of types) {
          const family = t === 'integer' ? 'number' : t;
          if (seen.has(family)) refuse('0A000', 'oneOf', path, 'branches must have disjoint types (so exactly one matches)');
        }
        for (const t of types) seen.add(t === 'integer' ? 'number' : t);
      }
    }
  }
  let m = s;
  if (has('allOf')) {
    if (has('additionalProperties')) refuse('0A000', 'allOf', path, 'beside additionalProperties is not supported');
    const seen: Obj = {};
    for (const [k, v] of Object.entries(s)) if (k !== 'allOf') seen[k] = v;
    for (const part of s.allOf as unknown[]) {
      if (!isObj(part)) continue;
      for (const k of jsonbKeys(part)) {
        const v = part[k];
        if (['allOf', 'anyOf', 'oneOf', 'additionalProperties'].includes(k)) refuse('0A000', 'allOf', path, `parts with ${k} do not merge`);
        if (k === 'required') continue;
        if (k === 'properties' && isObj(v) && isObj(seen.properties)) {
          for (const p of jsonbKeys(v)) {
            if (Object.hasOwn(seen.properties, p) && !jsonEqual(seen.properties[p], v[p])) refuse('0A000', 'allOf', path, `parts give property '${p}' different schemas`);
          }
          seen.properties = { ...seen.properties, ...v };
          continue;
        }
        if (Object.hasOwn(seen, k) && !jsonEqual(seen[k], v)) refuse('0A000', 'allOf', path, `parts give '${k}' different values`);
        seen[k] = v;
      }
    }
    m = mergeAllOf(s);
    if ((Object.hasOwn(m, 'enum') || Object.hasOwn(m, 'const')) && Object.keys(m).some((x) => KEYWORDS.includes(x) && !['type', 'enum', 'const'].includes(x))) {
      refuse('0A000', 'allOf', path, 'merges enum or const with other keywords');
    }
  }
  const mhas = (k: string) => Object.hasOwn(m, k);
  // Merged values come from parts not yet walked: compare numbers only.
  const nm = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : NaN);
  for (const [lo, hi] of [['minLength', 'maxLength'], ['minItems', 'maxItems'], ['minProperties', 'maxProperties']]) {
    if (nm(lo) > nm(hi)) refuse('22023', hi, path, `is below ${lo}`);
  }
  if (mhas('pattern') || mhas('format')) {
    const k = mhas('pattern') ? 'pattern' : 'format';
    if ((mhas('pattern') && mhas('format')) || mhas('minLength') || mhas('maxLength')) refuse('0A000', k, path, 'combines with no other string keyword');
  }
  if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some(mhas)) {
    const { lo, hi } = intBounds(m);
    if (lo !== null && hi !== null && lo > hi) {
      const k = mhas('maximum') ? 'maximum' : mhas('exclusiveMaximum') ? 'exclusiveMaximum' : 'minimum';
      refuse('0A000', k, path, 'leaves no integer between the bounds (bounded numbers are written as integers)');
    }
    if ((lo !== null && lo > MAX_INT) || (hi !== null && hi < -MAX_INT)) {
      refuse('0A000', mhas('minimum') ? 'minimum' : mhas('exclusiveMinimum') ? 'exclusiveMinimum' : 'maximum', path, `bounds beyond ±${MAX_INT}`);
    }
  }
  const props = isObj(m.properties) ? jsonbKeys(m.properties) : [];
  const required = Array.isArray(m.required) ? (m.required as string[]) : [];
  const extra = [...new Set(required)].filter((r) => !props.includes(r));
  if (extra.length > 0 && m.additionalProperties === false) refuse('22023', 'required', path, `names '${extra[0]}', which additionalProperties: false forbids`);
  if (nm('maxProperties') < new Set(required).size) refuse('22023', 'maxProperties', path, 'is below the number of required properties');
  if (nm('minProperties') > props.length + extra.length) refuse('0A000', 'minProperties', path, 'is above the number of properties the schema names');
  if (Array.isArray(m.prefixItems) && nm('minItems') > m.prefixItems.length) {
    refuse('0A000', 'prefixItems', path, 'with minItems above its length is not supported');
  }
  if (m.uniqueItems === true && !(nm('maxItems') <= 1)) refuse('0A000', 'uniqueItems', path, 'is supported only with maxItems <= 1');
  if (m.items === false && !mhas('prefixItems') && nm('minItems') > 0) refuse('22023', 'items', path, 'is false, so minItems cannot be met');
}

// ---- generation ----------------------------------------------------------------

function gbnfString(s: string): string {
  // Any UTF-8 string as a GBNF literal (non-ASCII through \u escapes).
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (/[A-Za-z0-9 ]/.test(ch)) out += ch;
    else if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

function digits(n: number): number {
  return String(Math.abs(n)).length;
}

/** GBNF for the decimal strings of the integers lo..hi, all of the same digit count. */
function sameLength(lo: string, hi: string): string {
  if (lo === hi) return `"${lo}"`;
  if (/^0+$/.test(lo) && /^9+$/.test(hi)) return `[0-9]{${lo.length}}`;
  if (lo[0] === hi[0]) return `"${lo[0]}" ${sameLength(lo.slice(1), hi.slice(1))}`;
  const rest = lo.length - 1;
  const d = (x: number) => String.fromCharCode(48 + x);
  const a = Number(lo[0]);
  const b = Number(hi[0]);
  const parts: string[] = [];
  if (rest === 0) return `[${lo[0]}-${hi[0]}]`;
  parts.push(`"${lo[0]}" ${sameLength(lo.slice(1), '9'.repeat(rest))}`);
  if (b - a > 1) parts.push(`[${d(a + 1)}-${d(b - 1)}] [0-9]{${rest}}`);
  parts.push(`"${hi[0]}" ${sameLength('0'.repeat(rest), hi.slice(1))}`);
  return `(${parts.join(' | ')})`;
}

/** GBNF for the non-negative integers lo..hi (lo <= hi), without leading zeros. */
function naturalRange(lo: number, hi: number): string {
  const parts: string[] = [];
  const full = (n: number) => 10 ** (n - 1) <= lo || 10 ** n - 1 > hi ? false : n > 1;
  let fullFrom = 0;
  let fullTo = 0;
  for (let n = digits(lo); n <= digits(hi); n++) {
    if (full(n)) {
      // Every n-digit number: merged with its full neighbours into one [1-9] [0-9]{a,b}.
      if (!fullFrom) fullFrom = n;
      fullTo = n;
      continue;
    }
    const a = Math.max(lo, n === 1 ? 0 : 10 ** (n - 1));
    const b = Math.min(hi, 10 ** n - 1);
    if (a <= b) parts.push(sameLength(String(a), String(b)));
  }
  if (fullFrom) parts.push(fullFrom === fullTo ? `[1-9] [0-9]{${fullFrom - 1}}` : `[1-9] [0-9]{${fullFrom - 1},${fullTo - 1}}`);
  return parts.length === 1 ? parts[0] : `(${parts.join(' | ')})`;
}

/** GBNF for the integers lo..hi (lo <= hi). */
function intRange(lo: number, hi: number): string {
  const parts: string[] = [];
  if (lo < 0) parts.push(`"-" ${naturalRange(Math.max(1, -hi), -lo)}`);
  if (hi >= 0) parts.push(naturalRange(Math.max(0, lo), hi));
  return parts.length === 1 ? `(${parts[0]})` : `(${parts.join(' | ')})`;
}

/** Shortest decimal length of an integer in lo..hi. */
function shortestInt(lo: number, hi: number): number {
  if (lo <= 0 && hi >= 0) return 1;
  return lo > 0 ? digits(lo) : 1 + digits(hi);
}

class Compiler {
  /** Longest byte-bounded string tail the grammar uses (rules str0..strN). */
  maxTail = -1;
  private extra: string[] = [];
  /** Regexes compiled so far: each names its rules rx<k>-<n>. */
  private regexes = 0;

  named(expr: string): string {
    const name = `item${this.extra.length}`;
    this.extra.push(`${name} ::= ${expr}`);
    return name;
  }

  /**
   * `x` (a rule name or one terminal) repeated min..max times, as llama.cpp
   * reads it (see MAX_GBNF_COUNT). The body is never a parenthesised group:
   * a group counts the rules first named inside it, so (char){0,1000} was 2 x
   * 1000 and failed with "Failed to parse grammar". A min above
   * MAX_GBNF_COUNT is written in blocks of 1000 (minLength 2500 failed too);
   * at most MAX_GBNF_COUNT optional copies follow the minimum: fewer items or
   * characters than the schema allows, never more.
   */
  repeat(x: string, min: number, max: number): string {
    if (max <= 0) return '""';
    if (max <= MAX_GBNF_COUNT) return min === max ? `${x}{${min}}` : `${x}{${min},${max}}`;
    const parts: string[] = [];
    if (min > MAX_GBNF_COUNT) parts.push(`${this.named(`${x}{1000}`)}{${Math.floor(min / 1000)}}`);
    const rest = min > MAX_GBNF_COUNT ? min % 1000 : min;
    if (rest > 0) parts.push(`${x}{${rest}}`);
    const more = Math.min(max - min, MAX_GBNF_COUNT);
    if (more > 0) parts.push(`${x}{0,${more}}`);
    return `(${parts.join(' ')})`;
  }

  /** Length in bytes of the shortest document `s` admits. */
  minLen(s0: unknown): number {
    if (s0 === true) return 1;
    const s = mergeAllOf(s0 as Obj);
    if ('const' in s) return utf8Len(JSON.stringify(s.const));
    if (Array.isArray(s.enum)) return Math.min(...s.enum.map((v) => utf8Len(JSON.stringify(v))));
    const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
    if (branches) return Math.min(...branches.map((b) => this.minLen(b)));
    return Math.min(...schemaTypes(s).map((t) => this.minLenOfType(s, t)));
  }

  private objectProps(s: Obj): Array<[string, unknown]> {
    // jsonb key order: the order a schema read back from the queue has anyway.
    const properties = (s.properties ?? {}) as Obj;
    const props: Array<[string, unknown]> = jsonbKeys(properties).map((k) => [k, properties[k]]);
    const required = Array.isArray(s.required) ? (s.required as string[]) : [];
    for (const r of required) if (!props.some(([k]) => k === r)) props.push([r, true]);
    if (typeof s.maxProperties === 'number' && props.length > s.maxProperties) {
      // Required ones first, then optional ones while maxProperties allows.
      const req = props.filter(([k]) => required.includes(k));
      const opt = props.filter(([k]) => !required.includes(k)).slice(0, s.maxProperties - req.length);
      return props.filter((p) => req.includes(p) || opt.includes(p));
    }
    return props;
  }

  private arrayShape(s: Obj): { prefix: unknown[] | null; item: unknown } {
    if (Array.isArray(s.prefixItems)) {
      const n = Math.min(s.prefixItems.length, typeof s.maxItems === 'number' ? s.maxItems : Infinity);
      return { prefix: s.prefixItems.slice(0, n), item: true };
    }
    if (s.items === false) return { prefix: [], item: true };
    return { prefix: null, item: s.items ?? true };
  }

  private minLenOfType(s: Obj, t: JsonType): number {
    switch (t) {
      case 'string':
        if (typeof s.pattern === 'string') return 2 + compileRegex(s.pattern, Infinity, 'json').minBytes;
        if (typeof s.format === 'string') return 2 + compileRegex(FORMATS[s.format], Infinity, 'json').minBytes;
        return 2 + num(s.minLength, 0);
      case 'number':
      case 'integer': {
        const { lo, hi } = intBounds(s);
        return shortestInt(lo ?? -MAX_INT, hi ?? MAX_INT);
      }
      case 'boolean':
        return 4;
      case 'null':
        return 4;
      case 'object': {
        const props = this.objectProps(s);
        return 2 + props.reduce((a, [k, v]) => a + utf8Len(JSON.stringify(k)) + 1 + this.minLen(v), 0) + Math.max(0, props.length - 1);
      }
      case 'array': {
        const { prefix, item } = this.arrayShape(s);
        if (prefix) return 2 + prefix.reduce((a: number, x) => a + this.minLen(x), 0) + Math.max(0, prefix.length - 1);
        const n = num(s.minItems, 0);
        return 2 + n * this.minLen(item) + Math.max(0, n - 1);
      }
    }
  }

  /** A GBNF expression for documents of `s` at most `budget` bytes long (budget >= minLen). */
  expr(s0: unknown, budget: number): string {
    if (s0 === true) return this.expr({}, budget);
    const s = mergeAllOf(s0 as Obj);
    if ('const' in s) return gbnfString(JSON.stringify(s.const));
    if (Array.isArray(s.enum)) {
      const fits = s.enum.map((v) => JSON.stringify(v)).filter((j) => utf8Len(j) <= budget);
      return `(${fits.map(gbnfString).join(' | ')})`;
    }
    const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
    if (branches) {
      const fits = branches.filter((b) => this.minLen(b) <= budget);
      return `(${fits.map((b) => this.expr(b, budget)).join(' | ')})`;
    }
    const fits = schemaTypes(s).filter((t) => this.minLenOfType(s, t) <= budget);
    return `(${fits.map((t) => this.exprOfType(s, t, budget)).join(' | ')})`;
  }

  private share(items: unknown[], budget: number, fixed: number): number[] {
    const mins = items.map((x) => this.minLen(x));
    const slack = budget - fixed - mins.reduce((a, b) => a + b, 0);
    const each = Math.floor(slack / Math.max(items.length, 1));
    return mins.map((m) => m + each);
  }

  private exprOfType(s: Obj, t: JsonType, budget: number): string {
    switch (t) {
      case 'string': {
        const source = typeof s.pattern === 'string' ? s.pattern : typeof s.format === 'string' ? FORMATS[s.format] : null;
        if (source !== null) {
          const rx = compileRegex(source, budget - 2, 'json', `rx${this.regexes++}-`);
          if (rx.rules) this.extra.push(rx.rules.trimEnd());
          return `"\\"" ${rx.expr} "\\""`;
        }
        const min = num(s.minLength, 0);
        const max = num(s.maxLength, Infinity);
        const room = budget - 2;
        if (max * 4 <= room) return `"\\"" ${this.repeat('char', min, max)} "\\""`;
        // min ASCII characters, then a tail bounded in bytes (so in characters too).
        const tail = Math.min(room - min, max - min);
        this.maxTail = Math.max(this.maxTail, tail);
        return `"\\"" ${this.repeat('ascii', min, min)} str${tail} "\\""`;
      }
      case 'boolean':
        return '("true" | "false")';
      case 'null':
        return '"null"';
      case 'integer':
      case 'number': {
        const { lo, hi } = intBounds(s);
        if (lo !== null || hi !== null) {
          // Within the bounds, and within the budget: at most `budget` characters.
          const top = Math.min(hi ?? MAX_INT, 10 ** Math.min(budget, MAX_INT_DIGITS) - 1);
          const bottom = Math.max(lo ?? -MAX_INT, -(10 ** Math.min(budget - 1, MAX_INT_DIGITS) - 1));
          return intRange(bottom, top);
        }
        const sign = budget >= 2;
        let room = budget - (sign ? 1 : 0);
        let fraction = '';
        if (t === 'number' && room >= 3) {
          const f = Math.min(MAX_FRACTION_DIGITS, Math.floor((room - 1) / 2));
          fraction = ` ("." ${this.repeat('[0-9]', 1, f)})?`;
          room -= 1 + f;
        }
        const n = Math.min(MAX_INT_DIGITS, room);
        const int = n <= 1 ? '[0-9]' : `("0" | [1-9] ${this.repeat('[0-9]', 0, n - 1)})`;
        return `(${sign ? '"-"? ' : ''}${int}${fraction})`;
      }
      case 'object': {
        const props = this.objectProps(s);
        if (props.length === 0) return '"{}"';
        const skeleton = 2 + props.reduce((a, [k]) => a + utf8Len(JSON.stringify(k)) + 1, 0) + (props.length - 1);
        const budgets = this.share(props.map(([, v]) => v), budget, skeleton);
        const parts = props.map(([k, v], j) => `${gbnfString(JSON.stringify(k))} ":" ${this.expr(v, budgets[j])}`);
        return `("{" ${parts.join(' "," ')} "}")`;
      }
      case 'array': {
        const { prefix, item } = this.arrayShape(s);
        if (prefix) {
          if (prefix.length === 0) return '"[]"';
          const budgets = this.share(prefix, budget, 2 + prefix.length - 1);
          return `("[" ${prefix.map((x, j) => this.expr(x, budgets[j])).join(' "," ')} "]")`;
        }
        const minItems = num(s.minItems, 0);
        const itemMin = this.minLen(item);
        const fit = Math.floor((budget - 1) / (itemMin + 1));
        const maxItems = Math.max(minItems, Math.min(num(s.maxItems, DEFAULT_MAX_ITEMS), fit));
        if (maxItems === 0) return '"[]"';
        const per = Math.floor((budget - 2 - (maxItems - 1)) / maxItems);
        // A named rule: llama.cpp limits how many rules a repetition may copy.
        const one = this.named(this.expr(item, per));
        const rest = maxItems > 1 ? this.repeat(this.named(`"," ${one}`), Math.max(0, minItems - 1), maxItems - 1) : '""';
        const body = `${one} ${rest}`;
        return minItems > 0 ? `("[" ${body} "]")` : `("[" (${body})? "]")`;
      }
    }
  }

  /** Shared rules: `char` (one character of any width), `ascii`, and str0..strN (strings of at most N bytes). */
  rules(): string {
    const lines = [
      ...this.extra,
      'ascii ::= [\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]',
      'esc ::= "\\\\" ["\\\\nt]',
      'u2 ::= [\\u0080-\\u07ff]',
      'u3 ::= [\\u0800-\\ud7ff\\ue000-\\uffff]',
      'u4 ::= [\\U00010000-\\U0010ffff]',
      'char ::= ascii | esc | u2 | u3 | u4',
    ];
    for (let b = 0; b <= this.maxTail; b++) {
      const alts = ['""'];
      if (b >= 1) alts.push(`ascii str${b - 1}`);
      if (b >= 2) alts.push(`esc str${b - 2}`, `u2 str${b - 2}`);
      if (b >= 3) alts.push(`u3 str${b - 3}`);
      if (b >= 4) alts.push(`u4 str${b - 4}`);
      lines.push(`str${b} ::= ${alts.join(' | ')}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}



/** Bytes of the smallest document the grammar writes for a checked schema (the enqueue computes the same). */
export function schemaMinBytes(schema: unknown): number {
  checkSchema(schema);
  return new Compiler().minLen(schema);
}

export interface CompiledJsonSchema {
  gbnf: string;
  /** Longest document the grammar admits, in bytes (<= the budget). */
  budget: number;
}

/**
 * A grammar for compact JSON documents valid against `schema` and at most
 * `maxBytes` long. Throws StructuredInputError for schemas checkSchema
 * refuses, and EngineError when even the smallest valid document is longer
 * than maxBytes.
 */
export function compileJsonSchema(schema: unknown, maxBytes: number): CompiledJsonSchema {
  checkSchema(schema);
  const c = new Compiler();
  const min = c.minLen(schema);
  if (min > maxBytes) {
    throw new EngineError(
      `max_tokens (${maxBytes}) is too small for this schema: its smallest document is ${min} bytes, and JSON output is bounded to max_tokens bytes`,
    );
  }
  const root = c.expr(schema, maxBytes);
  return { gbnf: `root ::= ${root}\n${c.rules()}`, budget: maxBytes };
}
