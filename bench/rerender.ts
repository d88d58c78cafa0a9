// Rewrites a results file's markdown table (the .md next to it, what README's
// performance section is pasted from) from its JSON, with the current
// bench/report.ts: `npx tsx bench/rerender.ts bench/results/<file>.json`.
// The figures are the JSON's; only the presentation (rows, notes) changes.
import { readFileSync, writeFileSync } from 'node:fs';
import { buildReport } from './report.ts';

const file = process.argv[2];
if (!file?.endsWith('.json')) {
  console.error('usage: npx tsx bench/rerender.ts bench/results/<file>.json');
  process.exit(2);
}
const saved = JSON.parse(readFileSync(file, 'utf8')) as Parameters<typeof buildReport>[0];
const report = buildReport({ machine: saved.machine, quick: saved.quick, sizes: saved.sizes, scenarios: saved.scenarios, results: saved.results });
writeFileSync(file.replace(/\.json$/, '.md'), report.markdown + '\n');
console.log(`wrote ${file.replace(/\.json$/, '.md')}`);
