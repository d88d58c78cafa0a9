// Text from the database (results, errors, worker ids) made safe to print: a
// result may hold any character (the tiny test models emit raw bytes), and a
// terminal obeys the control characters among them (ESC sequences clear the
// screen or retitle the window, BEL rings, CR overwrites the line). Every
// command that prints such text goes through here.

/** C0 controls, DEL, C1 controls, and the invisible direction/line controls that reorder what a terminal shows. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * `text` with every control character written as an escape (`\n`, `\t`,
 * `\r`, `\x1b`, `\u202e`), on one line. With `lines`, newlines and tabs stay
 * (a multi-line message, such as PostgreSQL's DETAIL and HINT).
 */
export function printable(text: string, opts: { lines?: boolean } = {}): string {
  return text.replace(CONTROL, (c) => (opts.lines && (c === '\n' || c === '\t') ? c : escape(c)));
}

/**
 * JSON.stringify, with the characters it leaves as they are but a terminal
 * obeys (DEL, C1 controls, direction controls) written as \u escapes: the
 * same JSON value, safe to print.
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value).replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
