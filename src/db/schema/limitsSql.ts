// The SQL that holds the limits' defaults, written from src/limits.ts by
// `npm run build:sql` (src/db/schema/sqlBuild.ts). A source line
//
//     -- @limits defaults
//
// stays in the built script and is followed, at its indentation, by one
// VALUES row per limit: (ord, name, value, description), in table order.
import { LIMITS } from '../../limits.ts';
import { expandFragments, literal, type Fragments } from './sqlFragments.ts';

/** Each fragment: the lines it writes, from the table. */
export const FRAGMENTS: Fragments = {
  /** _steadytext_limit_defaults: the rows of its VALUES list, columns aligned. */
  defaults: () => {
    const cells = LIMITS.map((l, i) => [`(${i + 1},`, `${literal(l.name)},`, `${l.default}::bigint,`, `${literal(l.description)})`]);
    const widths = [0, 1, 2].map((c) => Math.max(...cells.map((row) => row[c].length)));
    return cells.map((row, i) => [...row.slice(0, 3).map((cell, c) => cell.padEnd(widths[c])), row[3]].join(' ') + (i < cells.length - 1 ? ',' : ''));
  },
};

/** `text` with every `-- @limits` line followed by its fragment; `file` names the source in errors. */
export function expandLimits(text: string, file: string): string {
  return expandFragments('@limits', FRAGMENTS, text, file);
}
