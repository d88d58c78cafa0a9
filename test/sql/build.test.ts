// The versioned scripts in sql/ are built from sql/src/ by `npm run build:sql`
// and committed; this fails when someone edited a source and not the build
// (or the build by hand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staleScripts } from '../../src/db/sqlBuild.ts';

test('sql/pg_steadytext--*.sql of the current version equal what `npm run build:sql` builds from sql/src/', () => {
  assert.deepEqual(staleScripts(), [], 'run `npm run build:sql` and commit the result');
});
