import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { currentVersion } from '../../src/db/schema/migrate.ts';

test('the template database holds the installed schema', async () => {
  const db = await createTestDatabase();
  try {
    const r = await db.pool.query(`SELECT version FROM steadytext_migrations`);
    assert.equal(r.rows[0].version, currentVersion());
  } finally {
    await db.drop();
  }
});
