// Regex → GBNF for the subset a grammar can express exactly, plus a
// linear-time matcher (Thompson NFA) for checking outputs. The dialect:
//   literals; escapes \d \w \s \D \W \S, \n \t \r \f \v, \uHHHH and any escaped
//   non-alphanumeric character; [...] classes with ranges and negation (a ']'
//   first in a class is a literal, as in POSIX); .; groups (...) and (?:...);
//   alternation |; quantifiers * + ? {n} {n,} {,m} {n,m}; ^ only at the very
//   start, $ only at the very end.
// sql/src/25-structured-validation.sql implements the same parser: both give
// the same verdict, SQLSTATE and character position on every pattern
// (test/structured/regexCorpus.test.ts runs the shared corpus through both).
//   0A000 a construct a grammar cannot express (backreferences, lookaround,
//         \b, lazy or possessive quantifiers, \p, \x, POSIX [:classes:], ...)
//   22023 a malformed pattern (unclosed group or class, nothing to repeat, ...)
//   54000 a repetition count above 1000, a pattern whose expansion has more
//         than 10000 character positions, or one whose grammar makes the
//         sampler do more than 10000 units of work per character (grammarWork)
// Every check is linear in the pattern (the work measure in its expansion) or
// the output: nothing backtracks.
import { EngineInputError } from './types.ts';

/** Inclusive code point ranges, sorted and merged. */
export type CharSet = Array<[number, number]>;

export type RegexNode =
  | { t: 'char'; cp: number }
  /** `wide`: from ., a class escape other than \d \w, or a negation (see generatable). */
  | { t: 'set'; set: CharSet; wide: boolean }
  | { t: 'seq'; items: RegexNode[] }
  | { t: 'alt'; options: RegexNode[] }
  | { t: 'repeat'; node: RegexNode; min: number; max: number | null };

export interface ParsedRegex {
  node: RegexNode;
  anchoredStart: boolean;
  anchoredEnd: boolean;
}

export type StructuredSqlState = '0A000' | '22023' | '54000';

/** A pattern or schema the engine refuses, with the SQLSTATE the enqueue raises for it. */
export class StructuredInputError extends EngineInputError {
  constructor(
    readonly sqlstate: StructuredSqlState,
    message: string,
    /** 1-based character position in the pattern, when the error has one. */
    readonly position?: number,
    /** The JSON Schema keyword the error names, when it has one. */
    readonly keyword?: string,
  ) {
    super(message);
  }
}

export const MAX_REPEAT = 1000;
/** Character positions after expanding counted repeats (the NFA's size). */
export const MAX_REGEX_WEIGHT = 10000;
/**
 * Most grammarWork() a pattern (or JSON schema) may have: about 1 ms more per
 * token on the tiny model, 4x a plain pattern's token (docs/engine.md).
 */
export const MAX_GRAMMAR_WORK = 10000;
const MAX_CP = 0x10ffff;

function normalise(set: CharSet): CharSet {
  const s = set.filter(([a, b]) => a <= b).map(([a, b]): [number, number] => [a, b]).sort((x, y) => x[0] - y[0]);
  const out: CharSet = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function minus(set: CharSet, remove: CharSet): CharSet {
  let out = normalise(set);
  for (const [a, b] of normalise(remove)) {
    out = out.flatMap(([x, y]): CharSet => {
      if (y < a || x > b) return [[x, y]];
      const parts: CharSet = [];
      if (x < a) parts.push([x, a - 1]);
      if (y > b) parts.push([b + 1, y]);
      return parts;
    });
  }
  return out;
}

const NOT_CHARACTERS: CharSet = [[0, 0], [0xd800, 0xdfff]];
/** Everything but NUL (PostgreSQL text cannot hold it) and surrogates. */
const complement = (set: CharSet): CharSet => minus([[0, MAX_CP]], [...set, ...NOT_CHARACTERS]);

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

const CLASS_ESCAPES: Record<string, { set: CharSet; wide: boolean }> = {
  d: { set: DIGIT, wide: false },
  D: { set: complement(DIGIT), wide: true },
  w: { set: WORD, wide: false },
  W: { set: complement(WORD), wide: true },
  s: { set: SPACE, wide: true },
  S: { set: complement(SPACE), wide: true },
};
const CHAR_ESCAPES: Record<string, number> = { n: 0x0a, t: 0x09, r: 0x0d, f: 0x0c, v: 0x0b };

const SUPPORTED =
  'Supported: literals, \\d \\w \\s \\D \\W \\S \\n \\t \\r \\f \\v \\uHHHH, escaped punctuation, [...] classes, ., (...), (?:...), |, * + ? {n} {n,} {,m} {n,m}, ^ at the start and $ at the end';

function fail(state: StructuredSqlState, pattern: string, pos: number, what: string): never {
  const hint = state === '0A000' ? `, which a grammar cannot express. ${SUPPORTED}` : '';
  throw new StructuredInputError(state, `regex ${JSON.stringify(pattern)} at character ${pos + 1}: ${what}${hint}`, pos + 1);
}

/** Parses `pattern` (code points, positions 1-based in errors); throws StructuredInputError. */
export function parseRegex(pattern: string): ParsedRegex {
  const parsed = parseSyntax(pattern);
  const w = weight(parsed.node);
  if (w > MAX_REGEX_WEIGHT) {
    throw new StructuredInputError(
      '54000',
      `regex ${JSON.stringify(pattern)} expands to ${w} character positions (counted repeats multiplied out), over the limit of ${MAX_REGEX_WEIGHT}`,
    );
  }
  const work = grammarWork(parsed.node);
  if (work > MAX_GRAMMAR_WORK) {
    throw new StructuredInputError('54000', `regex ${JSON.stringify(pattern)} ${workExcess(work)}`);
  }
  return parsed;
}

/**
 * grammarWork() of a pattern in the dialect, whether or not it is within
 * MAX_GRAMMAR_WORK; undefined when it expands past MAX_REGEX_WEIGHT (not
 * measured, as the enqueue's work is NULL then). Throws for a pattern outside the dialect.
 */
export function regexWork(pattern: string): number | undefined {
  const { node } = parseSyntax(pattern);
  return weight(node) > MAX_REGEX_WEIGHT ? undefined : grammarWork(node);
}

function parseSyntax(pattern: string): ParsedRegex {
  const chars = Array.from(pattern);
  if (chars.length === 0) throw new StructuredInputError('22023', 'regex must not be empty');
  let i = 0;
  let end = chars.length;
  const anchoredStart = chars[0] === '^';
  if (anchoredStart) i = 1;
  let anchoredEnd = false;
  if (end > i && chars[end - 1] === '$' && !isEscaped(chars, end - 1)) {
    end -= 1;
    anchoredEnd = true;
  }

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
      let quantified = false;
      for (;;) {
        const qpos = i;
        const q = parseQuantifier();
        if (!q) break;
        if (quantified) fail('22023', pattern, qpos, 'a quantifier cannot follow another quantifier');
        quantified = true;
        atom = { t: 'repeat', node: atom, min: q.min, max: q.max };
        if (peek() === '?') fail('0A000', pattern, i, 'a lazy quantifier');
        if (peek() === '+') fail('0A000', pattern, i, 'a possessive quantifier');
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  /** `{` at i: the quantifier {n} {n,} {,m} {n,m} {,}, or null. */
  function braces(): { min: number; max: number | null; len: number; big: boolean } | null {
    let j = i + 1;
    let a = '';
    let b = '';
    let comma = false;
    while (j < end && /^[0-9]$/.test(chars[j])) a += chars[j++];
    if (j < end && chars[j] === ',') {
      comma = true;
      j++;
      while (j < end && /^[0-9]$/.test(chars[j])) b += chars[j++];
    }
    if (j >= end || chars[j] !== '}' || (a === '' && !comma)) return null;
    const big = a.length > 4 || b.length > 4 || Number(a || 0) > MAX_REPEAT || Number(b || 0) > MAX_REPEAT;
    const min = a === '' ? 0 : Number(a);
    const max = !comma ? min : b === '' ? null : Number(b);
    return { min, max, len: j + 1 - i, big };
  }

  function parseQuantifier(): { min: number; max: number | null } | null {
    const ch = peek();
    if (ch === '*') { i++; return { min: 0, max: null }; }
    if (ch === '+') { i++; return { min: 1, max: null }; }
    if (ch === '?') { i++; return { min: 0, max: 1 }; }
    if (ch !== '{') return null;
    const q = braces();
    if (!q) fail('22023', pattern, i, "'{' that is not a quantifier {n}, {n,}, {,m} or {n,m} (escape it as \\{)");
    if (q.big) fail('54000', pattern, i, `a repetition count above ${MAX_REPEAT}`);
    if (q.max !== null && q.max < q.min) fail('22023', pattern, i, `the quantifier {${q.min},${q.max}} has max < min`);
    i += q.len;
    return { min: q.min, max: q.max };
  }

  function parseAtom(): RegexNode {
    const pos = i;
    const ch = chars[i++];
    switch (ch) {
      case '(': {
        if (peek() === '?') {
          if (chars[i + 1] === ':') i += 2;
          else fail('0A000', pattern, pos, 'a (?...) group other than (?:...) (lookaround, named or flag groups)');
        }
        const node = parseAlt();
        if (peek() !== ')') fail('22023', pattern, pos, 'an unclosed group');
        i++;
        return node;
      }
      case '[':
        return parseClass(pos);
      case '.':
        return { t: 'set', set: DOT, wide: true };
      case '*': case '+': case '?': case '{':
        return fail('22023', pattern, pos, `'${ch}' with nothing to repeat`);
      case '^':
        return fail('0A000', pattern, pos, "the anchor '^' anywhere but the very start");
      case '$':
        return fail('0A000', pattern, pos, "the anchor '$' anywhere but the very end");
      case '\\': {
        const e = parseEscape(pos);
        return typeof e === 'number' ? { t: 'char', cp: e } : { t: 'set', ...e };
      }
      default:
        return { t: 'char', cp: c(ch) };
    }
  }

  function parseEscape(pos: number): number | { set: CharSet; wide: boolean } {
    if (i >= chars.length) fail('22023', pattern, pos, 'a trailing backslash');
    const e = chars[i++];
    if (CLASS_ESCAPES[e]) return CLASS_ESCAPES[e];
    if (CHAR_ESCAPES[e] !== undefined) return CHAR_ESCAPES[e];
    if (e === 'u') {
      const hex = chars.slice(i, i + 4).join('');
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) fail('22023', pattern, pos, '\\u not followed by 4 hex digits');
      const cp = parseInt(hex, 16);
      if (cp === 0 || (cp >= 0xd800 && cp <= 0xdfff)) fail('22023', pattern, pos, `\\u${hex} is not a character text can hold`);
      i += 4;
      return cp;
    }
    if (/^[0-9]$/.test(e)) fail('0A000', pattern, pos, `a backreference or numeric escape (\\${e})`);
    if (/^[A-Za-z]$/.test(e)) fail('0A000', pattern, pos, `the escape \\${e}`);
    return c(e); // an escaped non-alphanumeric character stands for itself
  }

  function parseClass(pos: number): RegexNode {
    let negate = false;
    if (i < end && chars[i] === '^') {
      negate = true;
      i++;
    }
    const set: CharSet = [];
    let wide = negate;
    let first = true;
    for (;;) {
      if (i >= end) fail('22023', pattern, pos, 'an unclosed character class');
      if (chars[i] === ']' && !first) break;
      first = false;
      const lo = classAtom();
      if (chars[i] === '-' && i + 1 < end && chars[i + 1] !== ']') {
        const dashPos = i;
        i++;
        const hi = classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') fail('22023', pattern, dashPos, 'a range with a class escape as an end');
        if (hi < lo) fail('22023', pattern, dashPos, 'a range out of order');
        set.push([lo, hi]);
      } else if (typeof lo === 'number') set.push([lo, lo]);
      else {
        set.push(...lo.set);
        wide ||= lo.wide;
      }
    }
    i++; // ]
    const s = minus(set, NOT_CHARACTERS);
    const result = negate ? complement(s) : s;
    if (result.length === 0) fail('22023', pattern, pos, 'a character class that matches nothing');
    return { t: 'set', set: result, wide };
  }

  function classAtom(): number | { set: CharSet; wide: boolean } {
    const pos = i;
    const ch = chars[i++];
    if (ch === '\\') return parseEscape(pos);
    if (ch === '[' && i < end && (chars[i] === ':' || chars[i] === '.' || chars[i] === '=')) {
      fail('0A000', pattern, pos, `a POSIX bracket expression ([${chars[i]})`);
    }
    return c(ch);
  }

  const node = parseAlt();
  if (i < end) fail('22023', pattern, i, "an unmatched ')'");
  return { node, anchoredStart, anchoredEnd };
}

function isEscaped(chars: string[], pos: number): boolean {
  let n = 0;
  for (let j = pos - 1; j >= 0 && chars[j] === '\\'; j--) n++;
  return n % 2 === 1;
}

/**
 * Character positions of the expanded pattern: X{n,m} counts X m times, X{n,}
 * n+1 times, X{0} once (so no part of a pattern, even one repeated zero times,
 * expands to more than the limit: the enqueue's one-pass check relies on it).
 */
export function weight(node: RegexNode): number {
  switch (node.t) {
    case 'char':
    case 'set':
      return 1;
    case 'seq':
      return node.items.reduce((a, x) => a + weight(x), 0);
    case 'alt':
      return node.options.reduce((a, x) => a + weight(x), 0);
    case 'repeat':
      return weight(node.node) * Math.max(node.max ?? node.min + 1, 1);
  }
}

// ---- Sampler work per character -----------------------------------------------
//
// llama.cpp's grammar sampler keeps one parse stack per grammar position that
// can match the next character. For every token it tests each stack against
// the vocabulary, then advances each stack that matched into every position
// that may follow it, walking the grammar's rules to get there: one step per
// optional part it skips. Ambiguity multiplies that work: in
// ([ab]?[ab]?){200} any of 400 optional positions can take the next
// character and each walks past all the later ones, so one token took
// seconds and a job minutes.
//
// grammarWork() bounds it without running the sampler, over the expansion's
// positions (counted repeats multiplied out as llama.cpp expands them: X{n,m}
// = n copies, then m-n nested optional ones; X{n,} = n copies and one looping
// copy), each with
//   lo..hi   the character offsets at which it can match (hi may be infinite),
//   follow   what can match right after it: the next part is one step,
//            however many branches it has (llama.cpp opens them together),
//            and every position reached only by skipping an optional part
//            that has positions counts (llama.cpp walks to each of those),
// work = max over offsets k of the sum, over the positions with lo <= k <= hi,
// of (4 + follow)^2. The 4 stands for testing a stack against the vocabulary,
// the square for walking past what it skips. Measured on the tiny model (2
// shared cores), a token took about 0.1 us more per unit whatever the shape
// (docs/engine.md, "Sampler work"): the limit, MAX_GRAMMAR_WORK, is about 1 ms
// a token. It ignores which characters a position matches, so it is an upper
// bound; plain patterns stay small (\d{3}-\d{4}: 25, the email format: 6320),
// nested optional repeats do not ((a?){27}: 9441, (a?){28}: 10402).
// sql/src/25-structured-validation.sql computes the same numbers in one pass
// (test/structured/regexCorpus.test.ts compares them on every pattern).

/** The shapes grammarWork() reads: RegexNode and the generator's GenNode alike. */
type WorkNode =
  | { t: 'seq'; items: WorkNode[] }
  | { t: 'alt'; options: WorkNode[] }
  | { t: 'repeat'; node: WorkNode; min: number; max: number | null }
  | { t: 'char' | 'set' | 'lit' | 'class' };

/** Positions of a fragment (offsets relative to its start) and what composing it needs. */
interface Positions {
  lo: number[];
  hi: number[];
  follow: number[];
  /** In the fragment's Last set: its follow grows with whatever comes next. */
  open: boolean[];
  /** Open, and reaches the fragment's end by skipping an optional part that has positions. */
  skipped: boolean[];
  minLen: number;
  maxLen: number;
  /** First positions reached directly (without skipping a part that has positions). */
  direct: number;
  /** First positions reached only by skipping such a part. */
  skip: number;
  nullable: boolean;
}

/**
 * What a position gains from the parts after it: `fresh` if it has not
 * skipped anything yet (the next part with positions is one step, plus what
 * that part reaches by skipping inside; every later one is skipped into),
 * `skipped` once it has (every position it can reach counts).
 */
interface Rest {
  fresh: number;
  skipped: number;
  nullable: boolean;
  /** A fresh position reaching the end of the rest has skipped a part with positions. */
  skips: boolean;
}

const shift = (j: number, len: number) => (j === 0 ? 0 : j * len); // 0 * Infinity is 0 here
const step = (p: Positions) => (p.direct > 0 ? 1 : 0) + p.skip;
const allFirst = (p: Positions) => p.direct + p.skip;
const NOTHING: Rest = { fresh: 0, skipped: 0, nullable: true, skips: false };

/** Rest after `p` followed by `after`. */
function restBefore(p: Positions, after: Rest): Rest {
  if (p.lo.length === 0) return after; // nothing to step to or past
  return {
    fresh: step(p) + (p.nullable ? after.skipped : 0),
    skipped: allFirst(p) + (p.nullable ? after.skipped : 0),
    nullable: p.nullable && after.nullable,
    skips: p.nullable && after.nullable,
  };
}

/** Appends `x`'s positions shifted by (dlo, dhi), each open one followed by `rest`, open after it if `stayOpen`. */
function append(out: Positions, x: Positions, dlo: number, dhi: number, rest: Rest, stayOpen: boolean, hiOverride?: number) {
  for (let q = 0; q < x.lo.length; q++) {
    out.lo.push(x.lo[q] + dlo);
    out.hi.push(hiOverride ?? x.hi[q] + dhi);
    out.follow.push(x.follow[q] + (x.open[q] ? (x.skipped[q] ? rest.skipped : rest.fresh) : 0));
    out.open.push(x.open[q] && rest.nullable && stayOpen);
    out.skipped.push(x.skipped[q] || rest.skips);
  }
}

function positions(n: WorkNode): Positions {
  const empty = (): Positions => ({ lo: [], hi: [], follow: [], open: [], skipped: [], minLen: 0, maxLen: 0, direct: 0, skip: 0, nullable: true });
  switch (n.t) {
    case 'seq': {
      const parts = n.items.map(positions);
      const rests: Rest[] = [];
      let rest = NOTHING;
      for (let k = parts.length - 1; k >= 0; k--) {
        rests[k] = rest;
        rest = restBefore(parts[k], rest);
      }
      const out = empty();
      let reached = false; // a part with positions came before
      parts.forEach((p, k) => {
        append(out, p, out.minLen, out.maxLen, rests[k], true);
        out.minLen += p.minLen;
        out.maxLen += p.maxLen;
        if (p.lo.length === 0) return;
        if (!reached) {
          out.direct += p.direct;
          out.skip += p.skip;
        } else if (out.nullable) {
          out.skip += allFirst(p);
        }
        reached = true;
        out.nullable = out.nullable && p.nullable;
      });
      return out;
    }
    case 'alt': {
      const parts = n.options.map(positions);
      const out = empty();
      for (const p of parts) append(out, p, 0, 0, NOTHING, true);
      out.minLen = Math.min(...parts.map((p) => p.minLen));
      out.maxLen = Math.max(...parts.map((p) => p.maxLen));
      out.direct = parts.reduce((a, p) => a + p.direct, 0);
      out.skip = parts.reduce((a, p) => a + p.skip, 0);
      out.nullable = parts.some((p) => p.nullable);
      return out;
    }
    case 'repeat': {
      const { min, max } = n;
      const out = empty();
      if (max === 0) return out;
      const x = positions(n.node);
      if (x.lo.length === 0) return out;
      // Copies 0..min-1, then max-min nested optional copies, or one looping copy (X{n,}).
      const copies = max ?? min + 1;
      for (let j = 0; j < copies; j++) {
        const looping = max === null && j === min;
        // Inside the repeat, copy j is followed by copy j+1 (itself when looping), and
        // the copies after that only by skipping; leaving it early (an optional copy's
        // end, the loop's exit) skips the rest of the repeat.
        const later = looping ? 0 : copies - 1 - j;
        const rest: Rest = later === 0 && !looping
          ? NOTHING
          : {
              fresh: step(x) + (x.nullable && !looping ? (later - 1) * allFirst(x) : 0),
              skipped: allFirst(x) * (x.nullable && !looping ? later : 1),
              nullable: true,
              skips: true,
            };
        append(out, x, shift(j, x.minLen), shift(j, x.maxLen), rest, x.nullable || j >= min - 1, looping ? Infinity : undefined);
      }
      out.minLen = min * x.minLen;
      out.maxLen = max === null ? Infinity : shift(max, x.maxLen);
      out.direct = x.direct;
      out.skip = x.skip + (x.nullable ? (copies - 1) * allFirst(x) : 0);
      out.nullable = min === 0 || x.nullable;
      return out;
    }
    default:
      return { lo: [0], hi: [0], follow: [0], open: [true], skipped: [false], minLen: 1, maxLen: 1, direct: 1, skip: 0, nullable: false };
  }
}

/**
 * The sampler's work per character for a pattern's grammar (see above). Call
 * it on patterns within MAX_REGEX_WEIGHT: it lists every position.
 */
export function grammarWork(node: WorkNode): number {
  const p = positions(node);
  const events: Array<[number, number]> = [];
  for (let q = 0; q < p.lo.length; q++) {
    const w = (4 + p.follow[q]) ** 2;
    events.push([p.lo[q], w]);
    if (p.hi[q] !== Infinity) events.push([p.hi[q] + 1, -w]);
  }
  // Ends before starts at the same offset: [lo, hi] is inclusive.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let sum = 0;
  let most = 0;
  for (const [, w] of events) {
    sum += w;
    most = Math.max(most, sum);
  }
  return most;
}

/** The refusal's wording, shared by patterns and JSON schemas. */
export function workExcess(work: number): string {
  return (
    `makes a grammar whose sampler work per character is ${work}, over the limit of ${MAX_GRAMMAR_WORK} ` +
    '(optional or variable-length parts repeated one after another, like (a?){100} or (a|ab){1000}, let too many ' +
    'grammar positions match the same character: write them unambiguously, like a{0,100})'
  );
}

// ---- Linear-time matching (Thompson NFA) -----------------------------------

type NfaState =
  | { k: 'set'; set: CharSet; next: number }
  | { k: 'split'; outs: number[] }
  | { k: 'match' };

function inSet(set: CharSet, cp: number): boolean {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < set[mid][0]) hi = mid - 1;
    else if (cp > set[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Tests strings against a parsed pattern in O(states × length): every state is
 * visited at most once per character, whatever the pattern's shape, so
 * (a|a){255}b or (a+)+$ cost the same as any pattern of their size.
 */
export class RegexMatcher {
  private states: NfaState[] = [];
  private start: number;

  constructor(private parsed: ParsedRegex) {
    const matchIdx = this.add({ k: 'match' });
    this.start = this.build(parsed.node, matchIdx);
  }

  private add(s: NfaState): number {
    this.states.push(s);
    return this.states.length - 1;
  }

  private build(node: RegexNode, next: number): number {
    switch (node.t) {
      case 'char':
        return this.add({ k: 'set', set: [[node.cp, node.cp]], next });
      case 'set':
        return this.add({ k: 'set', set: node.set, next });
      case 'seq': {
        let cur = next;
        for (let j = node.items.length - 1; j >= 0; j--) cur = this.build(node.items[j], cur);
        return cur;
      }
      case 'alt':
        return this.add({ k: 'split', outs: node.options.map((o) => this.build(o, next)) });
      case 'repeat': {
        let cur = next;
        if (node.max === null) {
          const loop = this.add({ k: 'split', outs: [] });
          (this.states[loop] as { outs: number[] }).outs = [this.build(node.node, loop), next];
          cur = loop;
        } else {
          for (let j = node.min; j < node.max; j++) cur = this.add({ k: 'split', outs: [this.build(node.node, cur), next] });
        }
        for (let j = 0; j < node.min; j++) cur = this.build(node.node, cur);
        return cur;
      }
    }
  }

  /** Adds the epsilon closure of `from` to `list` (iterative: no recursion depth). */
  private close(list: number[], mark: Int32Array, gen: number, from: number): boolean {
    let matched = false;
    const stack = [from];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (mark[s] === gen) continue;
      mark[s] = gen;
      const st = this.states[s];
      if (st.k === 'split') for (let j = st.outs.length - 1; j >= 0; j--) stack.push(st.outs[j]);
      else if (st.k === 'match') matched = true;
      else list.push(s);
    }
    return matched;
  }

  private run(text: string, whole: boolean): boolean {
    const floating = !whole && !this.parsed.anchoredStart;
    const anyEnd = !whole && !this.parsed.anchoredEnd;
    const mark = new Int32Array(this.states.length).fill(-1);
    let gen = 0;
    let list: number[] = [];
    let matched = this.close(list, mark, gen, this.start);
    if (matched && anyEnd) return true;
    const cps = Array.from(text, (ch) => ch.codePointAt(0)!);
    for (let k = 0; k < cps.length; k++) {
      const cp = cps[k];
      gen++;
      const next: number[] = [];
      matched = false;
      for (const s of list) {
        const st = this.states[s] as { set: CharSet; next: number };
        if (inSet(st.set, cp)) matched = this.close(next, mark, gen, st.next) || matched;
      }
      if (floating) matched = this.close(next, mark, gen, this.start) || matched;
      if (matched && anyEnd) return true;
      list = next;
      if (list.length === 0 && !floating) return matched && k === cps.length - 1;
    }
    return matched;
  }

  /** The whole text matches (^ and $ implied). */
  fullMatch(text: string): boolean {
    return this.run(text, true);
  }

  /** Some substring matches, honouring ^ and $ (JSON Schema `pattern` semantics). */
  search(text: string): boolean {
    return this.run(text, false);
  }
}

// ---- Bounded generation -------------------------------------------------------

/**
 * What the grammar writes for a node: literals are strings, sets are classes
 * plus extra literal alternatives (JSON escapes). `json` mode writes the body
 * of a JSON string (quotes and backslashes escaped, control characters left
 * out of classes).
 */
type GenNode =
  | { t: 'lit'; text: string }
  | { t: 'class'; set: CharSet; extras: string[] }
  | { t: 'seq'; items: GenNode[] }
  | { t: 'alt'; options: GenNode[] }
  | { t: 'repeat'; node: GenNode; min: number; max: number | null };

export type GenMode = 'text' | 'json';

/**
 * The characters a set generates. llama.cpp's grammar sampler may end
 * generation in the middle of a multi-byte character when the grammar could
 * also end right before it (measured: \\s ended after 2 of the 3 bytes of
 * U+3000), so wide sets (., \\s \\D \\W \\S, negated classes) generate ASCII
 * when they contain any; classes that list characters (e.g. [a-zäöü]) keep
 * them all. Every string of the restricted language still matches the pattern.
 */
export function generatable(set: CharSet, wide: boolean): CharSet {
  if (!wide) return set;
  const ascii = normalise(set.map(([a, b]): [number, number] => [Math.max(a, 1), Math.min(b, 0x7f)]));
  return ascii.length > 0 ? ascii : set;
}

const JSON_SHORT: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x0a: '\\n', 0x09: '\\t', 0x0d: '\\r', 0x0c: '\\f', 0x08: '\\b' };

function jsonChar(cp: number): string {
  if (JSON_SHORT[cp]) return JSON_SHORT[cp];
  if (cp < 0x20) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return String.fromCodePoint(cp);
}

function prepare(node: RegexNode, mode: GenMode): GenNode {
  switch (node.t) {
    case 'char':
      return { t: 'lit', text: mode === 'json' ? jsonChar(node.cp) : String.fromCodePoint(node.cp) };
    case 'set': {
      const g = generatable(node.set, node.wide);
      if (mode === 'text') return { t: 'class', set: g, extras: [] };
      const plain = minus(g, [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]]);
      const extras = [0x22, 0x5c].filter((cp) => inSet(g, cp)).map(jsonChar);
      if (plain.length === 0 && extras.length === 0) {
        for (const [a, b] of g) for (let cp = a; cp <= b && cp < 0x20; cp++) extras.push(jsonChar(cp));
      }
      return { t: 'class', set: plain, extras };
    }
    case 'seq':
      return { t: 'seq', items: node.items.map((x) => prepare(x, mode)) };
    case 'alt':
      return { t: 'alt', options: node.options.map((x) => prepare(x, mode)) };
    case 'repeat':
      return { t: 'repeat', node: prepare(node.node, mode), min: node.min, max: node.max };
  }
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');
const cpBytes = (cp: number) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
const BYTE_BANDS: CharSet = [[0, 0x7f], [0x80, 0x7ff], [0x800, 0xffff], [0x10000, MAX_CP]];

function classBytes(n: { set: CharSet; extras: string[] }): [number, number] {
  const lens = [...n.set.flatMap(([a, b]) => [cpBytes(a), cpBytes(b)]), ...n.extras.map(utf8)];
  return [Math.min(...lens), Math.max(...lens)];
}

function minBytes(n: GenNode): number {
  switch (n.t) {
    case 'lit': return utf8(n.text);
    case 'class': return classBytes(n)[0];
    case 'seq': return n.items.reduce((a, x) => a + minBytes(x), 0);
    case 'alt': return Math.min(...n.options.map(minBytes));
    case 'repeat': return n.min * minBytes(n.node);
  }
}

function maxBytes(n: GenNode): number {
  switch (n.t) {
    case 'lit': return utf8(n.text);
    case 'class': return classBytes(n)[1];
    case 'seq': return n.items.reduce((a, x) => a + maxBytes(x), 0);
    case 'alt': return Math.max(...n.options.map(maxBytes));
    case 'repeat': {
      const m = maxBytes(n.node);
      return m === 0 ? 0 : n.max === null ? Infinity : n.max * m;
    }
  }
}

/**
 * llama.cpp's GBNF parser refuses a repetition whose count, times the rules
 * its body creates, reaches 2000 (its MAX_REPETITION_THRESHOLD: (ab){1000}
 * written as (("a" "b")){1000} is 2 x 1000, and failed with "Failed to parse
 * grammar"), and reads an upper count above 2000 as unbounded, which would let
 * output outgrow the byte budget. toGbnf() writes every repeated body as one
 * rule or terminal (1 x count), and bound() keeps every count at most this.
 */
export const MAX_GBNF_COUNT = 1999;
/** Positions the generation grammar may expand to (llama.cpp holds one rule per optional copy). */
export const MAX_GRAMMAR_POSITIONS = 65536;

/**
 * A sub-language of `n` whose strings are at most `budget` bytes (budget >=
 * minBytes(n)). An unbounded repeat X{n,} becomes X{n,m}: m as the budget
 * allows, at most n + `extra` and MAX_GBNF_COUNT.
 */
function bound(n: GenNode, budget: number, extra = Infinity): GenNode {
  if (maxBytes(n) <= budget) return n;
  switch (n.t) {
    case 'lit':
      return n;
    case 'class': {
      const set = BYTE_BANDS.filter(([a]) => cpBytes(a) <= budget).flatMap(([a, b]) => n.set
        .map(([x, y]): [number, number] => [Math.max(x, a), Math.min(y, b)])
        .filter(([x, y]) => x <= y));
      return { t: 'class', set, extras: n.extras.filter((e) => utf8(e) <= budget) };
    }
    case 'alt':
      return { t: 'alt', options: n.options.filter((o) => minBytes(o) <= budget).map((o) => bound(o, budget, extra)) };
    case 'seq': {
      // Items that fit in an equal share of the slack keep their full length;
      // the rest share what is left.
      const mins = n.items.map(minBytes);
      const maxs = n.items.map(maxBytes);
      const give = mins.slice();
      let open = n.items.map((_, j) => j);
      let slack = budget - mins.reduce((a, b) => a + b, 0);
      for (;;) {
        const share = Math.floor(slack / Math.max(open.length, 1));
        const fits = open.filter((j) => maxs[j] - mins[j] <= share);
        if (fits.length === 0 || open.length === 0) {
          for (const j of open) give[j] = mins[j] + share;
          break;
        }
        for (const j of fits) {
          give[j] = maxs[j];
          slack -= maxs[j] - mins[j];
        }
        open = open.filter((j) => !fits.includes(j));
      }
      return { t: 'seq', items: n.items.map((x, j) => bound(x, give[j], extra)) };
    }
    case 'repeat': {
      const m = minBytes(n.node);
      const per = Math.min(maxBytes(n.node), Math.max(m, Math.floor(budget / Math.max(n.min, 1))));
      if (per === 0) return { t: 'seq', items: [] };
      const max = Math.min(n.max ?? n.min + extra, Math.floor(budget / per), MAX_GBNF_COUNT);
      return { t: 'repeat', node: bound(n.node, per, extra), min: n.min, max };
    }
  }
}

// ---- GBNF ------------------------------------------------------------------

function gbnfCp(cp: number): string {
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\U${cp.toString(16).padStart(8, '0')}`;
}

/** Any string as a GBNF literal. */
export function gbnfLiteral(s: string): string {
  let out = '"';
  for (const ch of s) out += /[A-Za-z0-9 ]/.test(ch) ? ch : gbnfCp(c(ch));
  return `${out}"`;
}

/** Writes GBNF for `n`; repeated bodies that are not one terminal become rules `${names}N` in `rules`. */
function toGbnf(n: GenNode, rules: string[], names: string): string {
  switch (n.t) {
    case 'lit':
      return gbnfLiteral(n.text);
    case 'class': {
      const parts = n.extras.map(gbnfLiteral);
      if (n.set.length > 0) parts.unshift(`[${n.set.map(([a, b]) => (a === b ? gbnfCp(a) : `${gbnfCp(a)}-${gbnfCp(b)}`)).join('')}]`);
      return parts.length === 1 ? parts[0] : `(${parts.join(' | ')})`;
    }
    case 'seq':
      return n.items.length === 0 ? '""' : `(${n.items.map((x) => toGbnf(x, rules, names)).join(' ')})`;
    case 'alt':
      return `(${n.options.map((x) => toGbnf(x, rules, names)).join(' | ')})`;
    case 'repeat': {
      const { min, max } = n;
      // An unbounded repeat survives bound() only when its body is empty.
      if (max === 0 || maxBytes(n.node) === 0) return '""';
      const body = toGbnf(n.node, rules, names);
      let inner = body;
      if (!(n.node.t === 'lit' || (n.node.t === 'class' && n.node.extras.length === 0))) {
        inner = `${names}${rules.length}`;
        rules.push(`${inner} ::= ${body}`);
      }
      if (max === null) return min === 0 ? `${inner}*` : `${inner}{${min},}`;
      if (min === max) return `${inner}{${min}}`;
      return `${inner}{${min},${max}}`;
    }
  }
}

/** Positions of a generated node's expansion (weight() for GenNode, bounded repeats only). */
function genWeight(n: GenNode): number {
  switch (n.t) {
    case 'lit':
    case 'class':
      return 1;
    case 'seq':
      return n.items.reduce((a, x) => a + genWeight(x), 0);
    case 'alt':
      return n.options.reduce((a, x) => a + genWeight(x), 0);
    case 'repeat':
      return genWeight(n.node) * Math.max(n.max ?? n.min + 1, 1);
  }
}

/**
 * bound(), giving unbounded repeats as many copies as keep the grammar within
 * MAX_GRAMMAR_POSITIONS and MAX_GRAMMAR_WORK. Copies are what makes
 * (a|ab)*c expensive once bounded (after k characters any of k/2..k copies
 * can be current), so a variable-length body may get fewer repetitions than
 * the budget allows; outputs still match, they are only shorter. With no
 * extra copies the grammar is a part of the pattern's expansion, whose
 * positions and work parseRegex() has checked: that always fits.
 */
function boundWithinLimits(gen: GenNode, budget: number): GenNode {
  // Within the budget as it is: the pattern's own expansion, already measured.
  if (maxBytes(gen) <= budget) return gen;
  const fits = (b: GenNode) => genWeight(b) <= MAX_GRAMMAR_POSITIONS && grammarWork(b) <= MAX_GRAMMAR_WORK;
  const full = bound(gen, budget);
  if (fits(full)) return full;
  let lo = 0;
  let hi = MAX_GBNF_COUNT;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(bound(gen, budget, mid))) lo = mid;
    else hi = mid - 1;
  }
  return bound(gen, budget, lo);
}

export interface CompiledRegex {
  /** A whole grammar (root rule first) for the strings it may write. */
  gbnf: string;
  /** GBNF expression (no rule name) for the same strings, to embed in another grammar with `rules`. */
  expr: string;
  /** The rules `expr` refers to (one per line, each ending in a newline). */
  rules: string;
  /** Shortest and longest output in bytes (longest <= the budget). */
  minBytes: number;
  maxBytes: number;
  matcher: RegexMatcher;
}

/**
 * Compiles `pattern` for generation within `budget` bytes: the grammar's
 * language is a subset of the pattern's whose every string fits the budget,
 * so a model always completes it. Throws StructuredInputError for patterns
 * the dialect refuses, and a plain EngineInputError when even the shortest
 * match is longer than the budget.
 */
export function compileRegex(pattern: string, budget: number, mode: GenMode = 'text', names = 'rx'): CompiledRegex {
  const parsed = parseRegex(pattern);
  const gen = prepare(parsed.node, mode);
  const min = minBytes(gen);
  if (min > budget) {
    throw new EngineInputError(
      `max_tokens (${budget}) is too small for regex ${JSON.stringify(pattern)}: its shortest match is ${min} bytes, and output is bounded to max_tokens bytes`,
    );
  }
  const bounded = boundWithinLimits(gen, budget);
  const lines: string[] = [];
  const expr = toGbnf(bounded, lines, names);
  const rules = lines.map((l) => `${l}\n`).join('');
  return { gbnf: `root ::= ${expr}\n${rules}`, expr, rules, minBytes: min, maxBytes: maxBytes(bounded), matcher: new RegexMatcher(parsed) };
}

/** Grammar whose root is exactly one of `choices` (at least two distinct non-empty strings). */
/**
 * The output a regex job returns, or undefined when it does not match. A
 * guard: should a generator stop inside a multi-byte character (the byte
 * budget and complete() keeping every token prevent it; 1000 tiny-model runs
 * over multi-byte patterns needed it 0 times), the detokenizer turns the
 * dangling bytes into U+FFFD, and what precedes them is the match.
 */
export function acceptRegexOutput(matcher: RegexMatcher, text: string): string | undefined {
  if (matcher.fullMatch(text)) return text;
  const trimmed = text.replace(/\uFFFD+$/u, '');
  return trimmed !== text && matcher.fullMatch(trimmed) ? trimmed : undefined;
}

export function choiceGbnf(choices: string[]): string {
  if (!Array.isArray(choices) || choices.length < 2) throw new StructuredInputError('22023', 'choices must be an array of at least 2 strings');
  for (const ch of choices) {
    if (typeof ch !== 'string' || ch.length === 0) throw new StructuredInputError('22023', 'every choice must be a non-empty string');
  }
  if (new Set(choices).size !== choices.length) throw new StructuredInputError('22023', 'choices must be distinct');
  return `root ::= ${choices.map(gbnfLiteral).join(' | ')}\n`;
}

/**
 * ajv's `code.regExp` engine: JSON Schema `pattern` and `patternProperties`
 * checked by the linear-time matcher (search semantics, as ECMA-262 `test`).
 */
export const linearRegExp = Object.assign(
  (pattern: string): { test: (s: string) => boolean; toString: () => string } => {
    const m = new RegexMatcher(parseRegex(pattern));
    // ajv caches compiled patterns by toString(): it must differ per pattern.
    return { test: (s: string) => m.search(s), toString: () => `linear:${pattern}` };
  },
  { code: 'linearRegExp' },
);
