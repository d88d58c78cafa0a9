// Docs that run: every ```sql block in README.md and docs/*.md is executed,
// as written, by psql against a live database with a worker running. A block
// preceded by the line `<!-- illustrative -->` is exempt (it names objects
// the reader supplies); everything else must run without error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { libpqConnstr } from '../../src/cli/commands/up.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { SCRIPTED_ENGINE, startTestWorker } from '../worker/fixtures/queue.ts';

const ILLUSTRATIVE = '<!-- illustrative -->';

export interface SqlBlock {
  file: string;
  line: number;
  sql: string;
}

/** The runnable ```sql blocks of a markdown text, in order. */
export function sqlBlocks(file: string, text: string): SqlBlock[] {
  const lines = text.split('\n');
  const blocks: SqlBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```sql') continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
    let prev = start - 1;
    while (prev >= 0 && lines[prev].trim() === '') prev--;
    if (prev >= 0 && lines[prev].trim() === ILLUSTRATIVE) continue;
    blocks.push({ file, line: start + 1, sql: body.join('\n') });
  }
  return blocks;
}

const docs = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];

test('psql is available to run the docs\' SQL', () => {
  const psql = spawnSync('psql', ['--version'], { encoding: 'utf8' });
  assert.equal(psql.status, 0, 'psql is needed to run the docs\' SQL (apt-get install postgresql-client)');
});

for (const file of docs) {
  const blocks = sqlBlocks(file, readFileSync(file, 'utf8'));
  if (blocks.length === 0) continue;
  test(`${file}: its ${blocks.length} SQL block(s) run as written`, { timeout: 120_000 }, async () => {
    const db = await createTestDatabase();
    const worker = await startTestWorker(db.url, { engineModule: SCRIPTED_ENGINE });
    try {
      await db.pool.query('CREATE EXTENSION IF NOT EXISTS dblink');
      await db.pool.query(
        `INSERT INTO steadytext_config (key, value) VALUES ('dblink_connstr', to_jsonb($1::text))
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [libpqConnstr(db.url, { withUser: false })],
      );
      await db.pool.query('SELECT steadytext_setup_handoff()');
      // One psql session per file: later blocks may use what earlier ones made (\gset variables too).
      const script = blocks.map((b) => `\\echo '-- ${b.file}:${b.line}'\n${b.sql}\n`).join('\n');
      // Not spawnSync: the worker runs in this process and must keep running.
      const run = await runPsql(db.url, script);
      assert.equal(run.status, 0, `psql failed in ${file}:\n${run.stdout.slice(-2000)}\n${run.stderr}`);
    } finally {
      await worker.stop();
      await db.drop();
    }
  });
}

function runPsql(url: string, script: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'], { timeout: 100_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(script);
  });
}
