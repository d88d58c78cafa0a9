// The output samples of the docs: a fenced block right after the line
//
//   <!-- output: <scenario> -->          the whole output of the scenario
//   <!-- output excerpt: <scenario> -->  consecutive lines of it
//
// is what test/docs/output-samples.test.ts runs the scenario for and compares
// by shape: numbers, URLs, UUIDs and the width of table columns may differ,
// the words, the columns and the lines may not (and a version number that
// is not the package's own is a difference). `...` in a sample stands for
// any text within its line. A sample may start with the command as typed
// (`$ steadytext status`); such lines are not compared.
//
// A fenced block with no language is output, so it needs one of these tags,
// or `<!-- illustrative -->` (a format with placeholders, a diagram).

export const ILLUSTRATIVE = '<!-- illustrative -->';
const TAG = /^<!--\s*output( excerpt)?:\s*(.+?)\s*-->$/;

export interface OutputSample {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  scenario: string;
  excerpt: boolean;
  text: string;
}

export interface UntaggedBlock {
  file: string;
  line: number;
}

/** The tagged output samples of a markdown text, and its fenced blocks with no language and no tag. */
export function outputSamples(file: string, markdown: string): { samples: OutputSample[]; untagged: UntaggedBlock[] } {
  const lines = markdown.split('\n');
  const samples: OutputSample[] = [];
  const untagged: UntaggedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    let prev = start - 1;
    while (prev >= 0 && lines[prev].trim() === '') prev--;
    const before = prev >= 0 ? lines[prev].trim() : '';
    const tag = TAG.exec(before);
    if (tag) samples.push({ file, line: start + 1, scenario: tag[2], excerpt: Boolean(tag[1]), text: body.join('\n') });
    else if (fence[1] === '' && before !== ILLUSTRATIVE) untagged.push({ file, line: start + 1 });
  }
  return { samples, untagged };
}

/** A line as compared: variable values replaced, runs of spaces and of table rules made one. */
export function shapeOf(line: string, version: string): string {
  return line
    .replaceAll(version, '{version}')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s,)"]+/gi, '{url}')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '{uuid}')
    .replace(/\d+(?:\.\d+)*/g, '#')
    .replace(/─+/g, '─')
    .replace(/[ \t]+/g, ' ')
    .trim();
}

/** A sample line as a pattern over shaped lines: `...` matches any text. */
function linePattern(sampleLine: string, version: string): RegExp {
  const parts = shapeOf(sampleLine, version).split('...');
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?')}$`);
}

/**
 * Whether `actual` has the shape of `sample` (all of it, or, for an excerpt,
 * consecutive lines of it). Returns null when it does, else what differs.
 */
export function compareShape(sample: string, actual: string, version: string, excerpt = false): string | null {
  const want = sample.split('\n').filter((l) => !l.startsWith('$ '));
  while (want.length > 0 && want[want.length - 1].trim() === '') want.pop();
  const got = actual.replace(/\r/g, '').split('\n');
  while (got.length > 0 && got[got.length - 1].trim() === '') got.pop();
  const patterns = want.map((l) => linePattern(l, version));
  const shaped = got.map((l) => shapeOf(l, version));
  const fits = (at: number) => patterns.every((p, k) => at + k < shaped.length && p.test(shaped[at + k]));
  if (excerpt) {
    for (let at = 0; at + patterns.length <= shaped.length; at++) if (fits(at)) return null;
    return `no ${patterns.length} consecutive lines of the output have the sample's shape\n--- output:\n${got.join('\n')}`;
  }
  if (fits(0) && shaped.length === patterns.length) return null;
  const k = patterns.findIndex((p, j) => j >= shaped.length || !p.test(shaped[j]));
  const where = k >= 0
    ? `line ${k + 1}: the sample says\n  ${want[k]}\nthe command printed\n  ${got[k] ?? '(nothing)'}`
    : `the command printed ${got.length - patterns.length} more line(s)`;
  return `${where}\n--- output:\n${got.join('\n')}`;
}
