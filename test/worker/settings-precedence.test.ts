import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { DEFAULTS, loadSettings, parseDuration, resolveSettings, SettingsError } from '../../src/worker/index.ts';

const url = 'postgres://u@localhost/db';

test('flags > env > GUC > default, for every worker setting', () => {
  const gucs = {
    'steadytext.worker_concurrency': '3',
    'steadytext.worker_poll_interval': '2s',
    'steadytext.worker_max_retries': '7',
    'steadytext.worker_timeout': '90',
  };
  const env = {
    STEADYTEXT_WORKER_CONCURRENCY: '4',
    STEADYTEXT_WORKER_POLL_INTERVAL: '0.25',
    STEADYTEXT_WORKER_MAX_RETRIES: '5',
    STEADYTEXT_WORKER_TIMEOUT: '60',
    STEADYTEXT_WORKER_HEARTBEAT_INTERVAL: '1',
    STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT: '4',
  };
  const flags = { databaseUrl: url, concurrency: '8', pollInterval: '500ms', maxRetries: '0', timeout: '1.5' };

  const d = resolveSettings({ databaseUrl: url }, {}, {});
  assert.deepEqual(
    [d.concurrency, d.pollIntervalMs, d.maxRetries, d.timeoutSeconds, d.heartbeatIntervalMs, d.heartbeatTimeoutSeconds],
    [DEFAULTS.concurrency, 1000, 3, 300, 2000, 10],
  );
  const g = resolveSettings({ databaseUrl: url }, {}, gucs);
  assert.deepEqual([g.concurrency, g.pollIntervalMs, g.maxRetries, g.timeoutSeconds], [3, 2000, 7, 90]);
  const e = resolveSettings({ databaseUrl: url }, env, gucs);
  assert.deepEqual(
    [e.concurrency, e.pollIntervalMs, e.maxRetries, e.timeoutSeconds, e.heartbeatIntervalMs, e.heartbeatTimeoutSeconds],
    [4, 250, 5, 60, 1000, 4],
  );
  const f = resolveSettings(flags, env, gucs);
  assert.deepEqual([f.concurrency, f.pollIntervalMs, f.maxRetries, f.timeoutSeconds], [8, 500, 0, 1.5]);
  // Unset GUCs (current_setting(..., true) gives NULL or '') fall through to defaults.
  const n = resolveSettings({ databaseUrl: url }, { STEADYTEXT_WORKER_CONCURRENCY: '' }, { 'steadytext.worker_concurrency': null });
  assert.equal(n.concurrency, DEFAULTS.concurrency);
});

test('durations accept seconds, fractions and PostgreSQL units', () => {
  assert.equal(parseDuration('1s', 'x'), 1000);
  assert.equal(parseDuration('500ms', 'x'), 500);
  assert.equal(parseDuration('2', 'x'), 2000);
  assert.equal(parseDuration('0.5', 'x'), 500);
  assert.equal(parseDuration('1 min', 'x'), 60_000);
  assert.equal(parseDuration(3, 'x'), 3000);
});

test('bad values are rejected with the name of what set them', () => {
  const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{}, { STEADYTEXT_WORKER_CONCURRENCY: 'four' }, /STEADYTEXT_WORKER_CONCURRENCY: expected an integer, got 'four'/],
    [{}, { STEADYTEXT_WORKER_CONCURRENCY: '0' }, /STEADYTEXT_WORKER_CONCURRENCY: must be at least 1/],
    [{}, { STEADYTEXT_WORKER_POLL_INTERVAL: '1 fortnight' }, /STEADYTEXT_WORKER_POLL_INTERVAL: expected a duration/],
    [{}, { STEADYTEXT_WORKER_POLL_INTERVAL: '0' }, /STEADYTEXT_WORKER_POLL_INTERVAL: must be greater than zero/],
    [{}, { STEADYTEXT_WORKER_MAX_RETRIES: '-1' }, /STEADYTEXT_WORKER_MAX_RETRIES: must be at least 0/],
    [{}, { STEADYTEXT_WORKER_TIMEOUT: 'soon' }, /STEADYTEXT_WORKER_TIMEOUT/],
    [{ concurrency: '2.5' }, {}, /--concurrency: expected an integer/],
    [{ models: 'huge' }, {}, /--models: expected 'default' or 'tiny'/],
    [{}, { STEADYTEXT_WORKER_HEARTBEAT_INTERVAL: '5', STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT: '3' }, /HEARTBEAT_TIMEOUT \(3 s\) must exceed/],
  ];
  for (const [flags, env, re] of bad) {
    assert.throws(() => resolveSettings({ databaseUrl: url, ...flags }, env, {}), (err: Error) => {
      assert.ok(err instanceof SettingsError);
      assert.match(err.message, re);
      return true;
    });
  }
  // A bad GUC names the GUC.
  assert.throws(() => resolveSettings({ databaseUrl: url }, {}, { 'steadytext.worker_poll_interval': 'often' }), /steadytext\.worker_poll_interval/);
});

test('connection: --database-url, DATABASE_URL, or the spec\'s --db-* flags', () => {
  assert.deepEqual(resolveSettings({}, { DATABASE_URL: url }, {}).connection, { connectionString: url });
  assert.deepEqual(
    resolveSettings({ dbHost: 'localhost', dbPort: '5432', dbName: 'mydb', dbUser: 'postgres' }, { PGPASSWORD: 'pw', DATABASE_URL: url }, {}).connection,
    { host: 'localhost', port: 5432, database: 'mydb', user: 'postgres', password: 'pw' },
  );
  assert.throws(() => resolveSettings({}, {}, {}), /no database: pass --database-url/);
  assert.throws(() => resolveSettings({ dbPort: 'x', dbHost: 'h' }, {}, {}), /--db-port: expected an integer/);
});

test('loadSettings reads the steadytext.worker_* GUCs from the database', async () => {
  const db = await createTestDatabase();
  try {
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.worker_concurrency = '6'`);
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.worker_poll_interval = '750ms'`);
    const s = await loadSettings({ databaseUrl: db.url }, {});
    assert.equal(s.concurrency, 6);
    assert.equal(s.pollIntervalMs, 750);
    const e = await loadSettings({ databaseUrl: db.url }, { STEADYTEXT_WORKER_CONCURRENCY: '2' });
    assert.equal(e.concurrency, 2);
    assert.equal(e.pollIntervalMs, 750);
  } finally {
    await db.drop();
  }
});
