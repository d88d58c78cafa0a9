// Regex → GBNF for the subset a grammar can express exactly:
//   literals; escapes \d \w \s \D \W \S, \n \t \r \f \v and escaped punctuation;
//   [...] classes with ranges and negation; .; groups (...) and (?:...);
//   alternation |; quantifiers * + ? {n} {n,} {n,m}; ^ only at the very start,
//   $ only at the very end.
// Everything else (backreferences, lookaround, \b, lazy quantifiers, \p, ...)
// is rejected with EngineInputError. The same AST also yields an anchored JS
// RegExp (u flag) that the engine uses to check every output before returning.
import { EngineInputError } from './types.ts';

/** Inclusive code point ranges, sorted and merged. */
type CharSet = Array<[number, number]>;

export type RegexNode =
  | { t: 'char'; cp: number }
  | { t: 'set'; set: CharSet }
  | { t: 'seq'; items: RegexNode[] }
  | { t: 'alt'; options: RegexNode[] }
  | { t: 'group'; node: RegexNode }
  | { t: 'repeat'; node: RegexNode; min: number; max: number | null };

const MAX_CP = 0x10ffff;
const MAX_REPEAT = 1000;

function normalise(set: CharSet): CharSet {
  const s = set.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: CharSet = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function complement(set: CharSet): CharSet {
  const out: CharSet = [];
  let next = 0;
  for (const [a, b] of normalise(set)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  // Surrogates are not characters: never generate them.
  return normalise(out.flatMap(([a, b]): CharSet => {
    if (b < 0xd800 || a > 0xdfff) return [[a, b]];
    const parts: CharSet = [];
    if (a < 0xd800) parts.push([a, 0xd7ff]);
    if (b > 0xdfff) parts.push([0xe000, b]);
    return parts;
  }));
}

const c = (ch: string) => ch.codePointAt(0)!;
const DIGIT: CharSet = [[c('0'), c('9')]];
const WORD: CharSet = normalise([[c('0'), c('9')], [c('A'), c('Z')], [c('_'), c('_')], [c('a'), c('z')]]);
// JavaScript's \s.
const SPACE: CharSet = normalise([
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a],
  [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
]);
// JavaScript's . without the s flag: anything but line terminators.
const DOT: CharSet = complement([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]);

const CLASS_ESCAPES: Record<string, CharSet> = {
  d: DIGIT, D: complement(DIGIT), w: WORD, W: complement(WORD), s: SPACE, S: complement(SPACE),
};
const CHAR_ESCAPES: Record<string, number> = { n: 0x0a, t: 0x09, r: 0x0d, f: 0x0c, v: 0x0b };

function reject(pattern: string, pos: number, what: string): never {
  throw new EngineInputError(
    `unsupported regex ${JSON.stringify(pattern)} at position ${pos}: ${what}. ` +
      'Supported: literals, \\d \\w \\s \\D \\W \\S, escaped punctuation, [...] classes, ., groups, |, * + ? {n} {n,} {n,m}, ^ at the start, $ at the end',
  );
}

/** Parses `pattern` into the supported subset; throws EngineInputError otherwise. */
export function parseRegex(pattern: string): RegexNode {
  const chars = Array.from(pattern);
  let i = 0;
  let end = chars.length;
  if (chars[0] === '^') i = 1;
  if (end > i && chars[end - 1] === '$' && !isEscaped(chars, end - 1)) end -= 1;

  const peek = () => (i < end ? chars[i] : undefined);

  function parseAlt(): RegexNode {
    const options = [parseSeq()];
    while (peek() === '|') {
      i++;
      options.push(parseSeq());
    }
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  function parseSeq(): RegexNode {
    const items: RegexNode[] = [];
    while (i < end && peek() !== '|' && peek() !== ')') {
      let atom = parseAtom();
      for (;;) {
        const q = parseQuantifier();
        if (!q) break;
        if (atom.t === 'repeat') reject(pattern, i - 1, 'a quantifier cannot follow another quantifier');
        atom = { t: 'repeat', node: atom, min: q.min, max: q.max };
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  function parseQuantifier(): { min: number; max: number | null } | null {
    const ch = peek();
    let q: { min: number; max: number | null } | null = null;
    if (ch === '*') { i++; q = { min: 0, max: null }; }
    else if (ch === '+') { i++; q = { min: 1, max: null }; }
    else if (ch === '?') { i++; q = { min: 0, max: 1 }; }
    else if (ch === '{') {
      const rest = chars.slice(i, end).join('');
      const m = /^\{(\d+)(,(\d*))?\}/.exec(rest);
      if (!m) reject(pattern, i, "'{' that is not a quantifier {n}, {n,} or {n,m} (escape it as \\{)");
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? null : Number(m[3]);
      if (max !== null && max < min) reject(pattern, i, `quantifier {${min},${max}} has max < min`);
      if (min > MAX_REPEAT || (max ?? 0) > MAX_REPEAT) reject(pattern, i, `repetition counts above ${MAX_REPEAT}`);
      i += Array.from(m[0]).length;
      q = { min, max };
    }
    if (!q) return null;
    if (peek() === '?') reject(pattern, i, 'lazy quantifiers (*?, +?, ??, {n,m}?)');
    if (peek() === '+') reject(pattern, i, 'possessive quantifiers');
    return q;
  }

  function parseAtom(): RegexNode {
    const pos = i;
    const ch = chars[i++];
    switch (ch) {
      case '(': {
        if (peek() === '?') {
          if (chars[i + 1] === ':') i += 2;
          else reject(pattern, pos, 'lookaround and named or special groups ((?=, (?!, (?<, ...)');
        }
        const node = parseAlt();
        if (peek() !== ')') reject(pattern, pos, 'unclosed group');
        i++;
        return { t: 'group', node };
      }
      case ')':
        return reject(pattern, pos, "unmatched ')'");
      case '[':
        return parseClass(pos);
      case '.':
        return { t: 'set', set: DOT };
      case '*': case '+': case '?': case '{':
        return reject(pattern, pos, `'${ch}' with nothing to repeat`);
      case '}': case ']':
        return reject(pattern, pos, `unescaped '${ch}' (escape it)`);
      case '^':
        return reject(pattern, pos, "'^' anywhere but the very start");
      case '$':
        return reject(pattern, pos, "'$' anywhere but the very end");
      case '\\': {
        const e = parseEscape(pos, false);
        return typeof e === 'number' ? { t: 'char', cp: e } : { t: 'set', set: e };
      }
      default:
        return { t: 'char', cp: c(ch) };
    }
  }

  function parseEscape(pos: number, inClass: boolean): number | CharSet {
    if (i >= chars.length) reject(pattern, pos, 'trailing backslash');
    const e = chars[i++];
    if (CLASS_ESCAPES[e]) return CLASS_ESCAPES[e];
    if (CHAR_ESCAPES[e] !== undefined) return CHAR_ESCAPES[e];
    if (/^[0-9]$/.test(e)) reject(pattern, pos, inClass ? 'octal or numeric escapes' : 'backreferences (\\1, ...)');
    if (e === 'b' || e === 'B') reject(pattern, pos, 'word boundaries (\\b, \\B)');
    if (e === 'p' || e === 'P') reject(pattern, pos, 'Unicode property escapes (\\p{...})');
    if (/^[A-Za-z]$/.test(e)) reject(pattern, pos, `the escape \\${e}`);
    if (e.codePointAt(0)! > 0x7e || e.codePointAt(0)! < 0x20) reject(pattern, pos, 'escaping a non-punctuation character');
    return c(e); // escaped punctuation
  }

  function parseClass(pos: number): RegexNode {
    let negate = false;
    if (chars[i] === '^') {
      negate = true;
      i++;
    }
    const set: CharSet = [];
    let first = true;
    for (;;) {
      if (i >= chars.length) reject(pattern, pos, 'unclosed character class');
      if (chars[i] === ']' && !first) break;
      if (chars[i] === ']' && first) reject(pattern, i, "empty class '[]' (escape ']' as \\])");
      first = false;
      const lo = classAtom();
      if (chars[i] === '-' && chars[i + 1] !== ']' && i + 1 < chars.length) {
        const dashPos = i;
        i++;
        const hi = classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') reject(pattern, dashPos, 'a range with a class escape as an end');
        if (hi < lo) reject(pattern, dashPos, 'a range out of order');
        set.push([lo, hi]);
      } else if (typeof lo === 'number') set.push([lo, lo]);
      else set.push(...lo);
    }
    i++; // ]
    const s = normalise(set);
    return { t: 'set', set: negate ? complement(s) : s };
  }

  function classAtom(): number | CharSet {
    const pos = i;
    const ch = chars[i++];
    if (ch === '\\') return parseEscape(pos, true);
    if (ch === '[') reject(pattern, pos, "'[' inside a class (escape it as \\[)");
    return c(ch);
  }

  const node = parseAlt();
  if (i < end) reject(pattern, i, "unmatched ')'");
  return node;
}

function isEscaped(chars: string[], pos: number): boolean {
  let n = 0;
  for (let j = pos - 1; j >= 0 && chars[j] === '\\'; j--) n++;
  return n % 2 === 1;
}

// ---- GBNF ------------------------------------------------------------------

function gbnfCp(cp: number): string {
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\U${cp.toString(16).padStart(8, '0')}`;
}

function gbnfLiteral(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = c(ch);
    out += /[A-Za-z0-9 ]/.test(ch) ? ch : gbnfCp(cp);
  }
  return `${out}"`;
}

/**
 * The characters a set may generate. llama.cpp's grammar sampler can end
 * generation in the middle of a multi-byte character drawn from a wide class
 * (measured: \\s ended after 2 of the 3 bytes of U+3000), so classes, . and
 * class escapes generate ASCII only (never NUL, which PostgreSQL text cannot
 * hold). A class that lists only non-ASCII characters keeps them. Every string
 * of the restricted language still fully matches the pattern.
 */
export function generatable(set: CharSet): CharSet {
  const ascii = normalise(set.map(([a, b]): [number, number] => [Math.max(a, 1), Math.min(b, 0x7f)]));
  return ascii.length > 0 ? ascii : set;
}

function gbnfSet(set: CharSet): string {
  if (set.length === 0) throw new EngineInputError('regex has a character class that matches nothing');
  return `[${set.map(([a, b]) => (a === b ? gbnfCp(a) : `${gbnfCp(a)}-${gbnfCp(b)}`)).join('')}]`;
}

function toGbnf(node: RegexNode): string {
  switch (node.t) {
    case 'char':
      return gbnfLiteral(String.fromCodePoint(node.cp));
    case 'set':
      return gbnfSet(generatable(node.set));
    case 'seq':
      return node.items.length === 0 ? '""' : `(${node.items.map(toGbnf).join(' ')})`;
    case 'alt':
      return `(${node.options.map(toGbnf).join(' | ')})`;
    case 'group':
      return `(${toGbnf(node.node)})`;
    case 'repeat': {
      const inner = `(${toGbnf(node.node)})`;
      const { min, max } = node;
      if (min === 0 && max === null) return `${inner}*`;
      if (min === 1 && max === null) return `${inner}+`;
      if (min === 0 && max === 1) return `${inner}?`;
      if (max === null) return `${inner}{${min},}`;
      if (min === max) return `${inner}{${min}}`;
      return `${inner}{${min},${max}}`;
    }
  }
}

// ---- JS RegExp (for checking outputs) ---------------------------------------

function jsCp(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function toJs(node: RegexNode): string {
  switch (node.t) {
    case 'char':
      return jsCp(node.cp);
    case 'set':
      return `[${generatable(node.set).map(([a, b]) => (a === b ? jsCp(a) : `${jsCp(a)}-${jsCp(b)}`)).join('')}]`;
    case 'seq':
      return node.items.map(toJs).join('');
    case 'alt':
      return node.options.map(toJs).join('|');
    case 'group':
      return `(?:${toJs(node.node)})`;
    case 'repeat': {
      const { min, max } = node;
      return `(?:${toJs(node.node)}){${min},${max ?? ''}}`;
    }
  }
}

export interface CompiledRegex {
  /** GBNF grammar whose root matches exactly the strings the pattern fully matches. */
  gbnf: string;
  /** Anchored equivalent, for checking outputs. */
  matcher: RegExp;
}

export function compileRegex(pattern: string): CompiledRegex {
  const node = parseRegex(pattern);
  return {
    gbnf: `root ::= ${toGbnf(node)}\n`,
    matcher: new RegExp(`^(?:${toJs(node)})$`, 'u'),
  };
}

/** Grammar whose root is exactly one of `choices`. */
export function choiceGbnf(choices: string[]): string {
  if (!Array.isArray(choices) || choices.length === 0) throw new EngineInputError('choices must be a non-empty array of strings');
  for (const ch of choices) {
    if (typeof ch !== 'string' || ch.length === 0) throw new EngineInputError('every choice must be a non-empty string');
  }
  return `root ::= ${choices.map(gbnfLiteral).join(' | ')}\n`;
}
