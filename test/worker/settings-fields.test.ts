// WorkerSettings, WorkerFlags and the GUC names are derived from the settings
// table (src/settings.ts): a flag object is keyed by the row's key, a resolved
// field is the key followed by its parser's unit, and nothing is restated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldName, GUC_NAMES, SETTINGS, type Setting, type SettingKey } from '../../src/settings.ts';
import { DEFAULTS, resolveSettings } from '../../src/worker/index.ts';

const url = 'postgres://u@localhost/db';

test('each row is keyed by its own key, so a flag object and the table agree', () => {
  for (const [key, s] of Object.entries(SETTINGS) as [SettingKey, Setting][]) assert.equal(s.key, key);
});

test('a resolved field is the key then the unit its parser returns', () => {
  assert.equal(fieldName('concurrency'), 'concurrency');
  assert.equal(fieldName('pollInterval'), 'pollIntervalMs');
  assert.equal(fieldName('timeout'), 'timeoutSeconds');
  assert.equal(fieldName('heartbeatTimeout'), 'heartbeatTimeoutSeconds');
  assert.equal(fieldName('resultRetention'), 'resultRetentionMs');
  const s = resolveSettings({ databaseUrl: url, timeout: '1.5', heartbeatTimeout: '2.2', retryBackoff: '250ms' }, {}, {});
  assert.equal(s.timeoutSeconds, 1.5, 'seconds, fractions kept');
  assert.equal(s.heartbeatTimeoutSeconds, 3, 'whole seconds, rounded up');
  assert.equal(s.retryBackoffMs, 250);
});

test('DEFAULTS are what resolveSettings gives with nothing set', () => {
  const s = resolveSettings({ databaseUrl: url }, {}, {}) as unknown as Record<string, unknown>;
  const servers = resolveSettings({ databaseUrl: url, generationServer: 'http://gen:8080' }, {}, {}).servers.generation!;
  const shared: Record<string, unknown> = {
    serverTimeoutMs: servers.timeoutMs,
    serverMaxInFlight: servers.maxInFlight,
    serverRetries: servers.retries,
    serverRetryBackoffMs: servers.retryBackoffMs,
    serverEmbedBatchSize: servers.embedBatchSize,
  };
  for (const [field, value] of Object.entries(DEFAULTS)) {
    if (field === 'workerId') continue; // unset in the table: host-pid-random
    assert.deepEqual(field in shared ? shared[field] : s[field], value, field);
  }
  assert.deepEqual(
    Object.keys(s).filter((k) => !(k in DEFAULTS)).sort(),
    ['connection', 'servers', 'sources'],
    'every other field of WorkerSettings is a setting of the table',
  );
});

test('the GUCs the worker reads are the rows that name one', () => {
  const rows = (Object.values(SETTINGS) as Setting[]).filter((s) => s.guc);
  assert.deepEqual(GUC_NAMES, rows.map((s) => s.guc));
  assert.ok(GUC_NAMES.every((g) => g.startsWith('steadytext.worker_')));
});
