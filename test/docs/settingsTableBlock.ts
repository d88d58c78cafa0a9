// The block of docs/worker.md that holds the settings table, between two
// markers; settings-table.test.ts checks it, writeSettingsTable.ts rewrites it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WORKER_DOC = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/worker.md');
export const START = '<!-- settings table: generated from src/settings.ts by `npx tsx test/docs/writeSettingsTable.ts` -->';
export const END = '<!-- end of settings table -->';

/** docs/worker.md split around the table: [before, table, after]; throws when a marker is missing. */
export function splitWorkerDoc(text = readFileSync(WORKER_DOC, 'utf8')): [string, string, string] {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/worker.md lacks the settings-table markers (${START} ... ${END})`);
  return [text.slice(0, a + START.length), text.slice(a + START.length, b).trim(), text.slice(b)];
}
