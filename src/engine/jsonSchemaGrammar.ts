// JSON Schema → GBNF, bounded by the token budget so that the output is valid
// by construction.
//
// Every token of every model decodes to at least one byte, so a grammar whose
// longest sentence is at most `maxTokens` bytes always reaches its end within
// `maxTokens` tokens. We therefore compile the schema with a byte budget:
// strings, numbers and arrays get length bounds that make the whole document
// fit; the fixed skeleton (braces, keys) is counted exactly. The output is
// compact JSON (no whitespace), strings are printable ASCII without escapes.
// A schema whose smallest document does not fit is refused up front.
//
// Supported: type (incl. arrays of types), enum, const, string min/maxLength,
// number/integer (minimum/maximum/exclusive* are checked after generation),
// object properties/required (every listed property is emitted, in order),
// array items/minItems/maxItems, anyOf/oneOf, local $ref (#/$defs/x,
// #/definitions/x, non-recursive), annotations (title, description, ...).
// Anything else raises EngineInputError.
import { EngineError, EngineInputError } from './types.ts';

type Schema = boolean | Record<string, unknown>;

const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly', 'deprecated',
  '$defs', 'definitions',
]);
const HANDLED = new Set([
  'type', 'enum', 'const', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'anyOf', 'oneOf', '$ref',
]);
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
type JsonType = (typeof TYPES)[number];

const MAX_INT_DIGITS = 15;
const MAX_FRACTION_DIGITS = 6;
/** Arrays without maxItems get at most this many items (the budget may allow fewer). */
const DEFAULT_MAX_ITEMS = 16;

const STRING_CHAR = '[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]';

function utf8Len(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

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

class Compiler {
  private refStack: string[] = [];
  constructor(private root: Schema) {}

  private fail(msg: string): never {
    throw new EngineInputError(`unsupported JSON schema: ${msg}`);
  }

  private deref(s: Record<string, unknown>): [Record<string, unknown> | boolean, () => void] {
    const ref = s.$ref;
    if (typeof ref !== 'string') return [s, () => {}];
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m || typeof this.root !== 'object') this.fail(`$ref '${String(ref)}' (only local #/$defs/name refs)`);
    if (this.refStack.includes(ref)) this.fail(`recursive $ref '${ref}'`);
    const defs = this.root[m[1]] as Record<string, Schema> | undefined;
    const target = defs?.[m[2]];
    if (target === undefined) this.fail(`$ref '${ref}' points nowhere`);
    this.refStack.push(ref);
    return [target as Record<string, unknown> | boolean, () => this.refStack.pop()];
  }

  private check(s: unknown): asserts s is Schema {
    if (typeof s === 'boolean') {
      if (!s) this.fail('false (nothing validates)');
      return;
    }
    if (s === null || typeof s !== 'object' || Array.isArray(s)) this.fail('a schema must be an object or true');
    for (const k of Object.keys(s)) {
      if (!HANDLED.has(k) && !ANNOTATIONS.has(k)) this.fail(`keyword '${k}'`);
    }
  }

  private types(s: Record<string, unknown>): JsonType[] {
    const t = s.type;
    if (t === undefined) {
      if (s.properties) return ['object'];
      if (s.items) return ['array'];
      return ['string', 'number', 'boolean', 'null'];
    }
    const list = Array.isArray(t) ? t : [t];
    for (const x of list) if (!TYPES.includes(x as JsonType)) this.fail(`type '${String(x)}'`);
    return list as JsonType[];
  }

  /** Length in bytes of the shortest document `s` admits. */
  minLen(s0: unknown): number {
    this.check(s0);
    if (typeof s0 === 'boolean') return 1;
    const [s, done] = this.deref(s0);
    try {
      if (typeof s === 'boolean') return this.minLen(s);
      this.check(s);
      if ('const' in s) return utf8Len(JSON.stringify(s.const));
      if (Array.isArray(s.enum)) {
        if (s.enum.length === 0) this.fail('empty enum');
        return Math.min(...s.enum.map((v) => utf8Len(JSON.stringify(v))));
      }
      const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
      if (branches) {
        if (!Array.isArray(branches) || branches.length === 0) this.fail('empty anyOf/oneOf');
        return Math.min(...branches.map((b) => this.minLen(b)));
      }
      return Math.min(...this.types(s).map((t) => this.minLenOfType(s, t)));
    } finally {
      done();
    }
  }

  private minLenOfType(s: Record<string, unknown>, t: JsonType): number {
    switch (t) {
      case 'string':
        return 2 + num(s.minLength, 0);
      case 'number':
      case 'integer':
        return 1;
      case 'boolean':
        return 4;
      case 'null':
        return 4;
      case 'object': {
        const props = Object.entries((s.properties ?? {}) as Record<string, unknown>);
        return 2 + props.reduce((a, [k, v]) => a + utf8Len(JSON.stringify(k)) + 1 + this.minLen(v), 0) + Math.max(0, props.length - 1);
      }
      case 'array': {
        const n = num(s.minItems, 0);
        return 2 + n * this.minLen(s.items ?? true) + Math.max(0, n - 1);
      }
    }
  }

  /** A GBNF expression for documents of `s` at most `budget` bytes long (budget >= minLen). */
  expr(s0: unknown, budget: number): string {
    this.check(s0);
    if (typeof s0 === 'boolean') return this.expr({}, budget);
    const [s, done] = this.deref(s0);
    try {
      if (typeof s === 'boolean') return this.expr(s, budget);
      this.check(s);
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
      const fits = this.types(s).filter((t) => this.minLenOfType(s, t) <= budget);
      return `(${fits.map((t) => this.exprOfType(s, t, budget)).join(' | ')})`;
    } finally {
      done();
    }
  }

  private exprOfType(s: Record<string, unknown>, t: JsonType, budget: number): string {
    switch (t) {
      case 'string': {
        const min = num(s.minLength, 0);
        const max = Math.min(num(s.maxLength, Infinity), budget - 2);
        if (max < min) this.fail('minLength > maxLength');
        return `"\\"" ${repeat('char', min, max)} "\\""`;
      }
      case 'boolean':
        return '("true" | "false")';
      case 'null':
        return '"null"';
      case 'integer':
      case 'number': {
        const unsigned = (typeof s.minimum === 'number' && s.minimum >= 0) || (typeof s.exclusiveMinimum === 'number' && s.exclusiveMinimum >= 0);
        const sign = !unsigned && budget >= 2;
        let room = budget - (sign ? 1 : 0);
        let fraction = '';
        if (t === 'number' && room >= 3) {
          const f = Math.min(MAX_FRACTION_DIGITS, Math.floor((room - 1) / 2));
          fraction = ` ("." ${repeat('[0-9]', 1, f)})?`;
          room -= 1 + f;
        }
        const digits = Math.min(MAX_INT_DIGITS, room);
        const int = digits <= 1 ? '[0-9]' : `("0" | [1-9] ${repeat('[0-9]', 0, digits - 1)})`;
        return `(${sign ? '"-"? ' : ''}${int}${fraction})`;
      }
      case 'object': {
        const props = Object.entries((s.properties ?? {}) as Record<string, unknown>);
        if (props.length === 0) {
          if (num(s.minProperties, 0) > 0) this.fail('minProperties without properties');
          return '"{}"';
        }
        const required = Array.isArray(s.required) ? (s.required as string[]) : [];
        for (const r of required) if (!props.some(([k]) => k === r)) this.fail(`required property '${r}' not in properties`);
        const slack = budget - this.minLenOfType(s, 'object');
        const share = Math.floor(slack / props.length);
        const parts = props.map(([k, v]) => `${gbnfString(JSON.stringify(k))} ":" ${this.expr(v, this.minLen(v) + share)}`);
        return `("{" ${parts.join(' "," ')} "}")`;
      }
      case 'array': {
        const item = s.items ?? true;
        if (Array.isArray(item)) this.fail('items as an array (tuple form)');
        const minItems = num(s.minItems, 0);
        const itemMin = this.minLen(item);
        const fit = Math.floor((budget - 1) / (itemMin + 1));
        const maxItems = Math.max(minItems, Math.min(num(s.maxItems, DEFAULT_MAX_ITEMS), fit));
        if (maxItems === 0) return '"[]"';
        const per = Math.floor((budget - 2 - (maxItems - 1)) / maxItems);
        const one = this.expr(item, per);
        const rest = repeat(`"," ${one}`, Math.max(0, minItems - 1), maxItems - 1);
        const body = `${one} ${rest}`;
        return minItems > 0 ? `("[" ${body} "]")` : `("[" (${body})? "]")`;
      }
    }
  }
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function repeat(x: string, min: number, max: number): string {
  if (max <= 0) return '""';
  if (min === max) return `(${x}){${min}}`;
  return `(${x}){${min},${max}}`;
}

export interface CompiledJsonSchema {
  gbnf: string;
  /** Longest document the grammar admits, in bytes (<= the budget). */
  budget: number;
}

/**
 * A grammar for compact JSON documents valid against `schema` and at most
 * `maxBytes` long. Throws EngineInputError for unsupported schemas and
 * EngineError when even the smallest valid document is longer than maxBytes.
 */
export function compileJsonSchema(schema: unknown, maxBytes: number): CompiledJsonSchema {
  const c = new Compiler(schema as Schema);
  const min = c.minLen(schema);
  if (min > maxBytes) {
    throw new EngineError(
      `max_tokens (${maxBytes}) is too small for this schema: its smallest document is ${min} bytes, and JSON output is bounded to max_tokens bytes`,
    );
  }
  const root = c.expr(schema, maxBytes);
  return { gbnf: `root ::= ${root}\nchar ::= ${STRING_CHAR}\n`, budget: maxBytes };
}

