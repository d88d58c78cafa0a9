// What an install of pg_steadytext consists of, read from the catalogs, as
// sorted text lines: two databases with equal fingerprints have the same
// tables, columns (in order), constraints, indexes, triggers, policies,
// functions (full definitions, SECURITY DEFINER, settings), privileges and
// extension membership. Used to prove that an upgraded database equals a
// fresh install (pg_dump is compared too where a matching one exists).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type pg from 'pg';
import type { Queryable } from '../../src/db/queryable.ts';


const QUERIES: Record<string, string> = {
  relations: `
    SELECT format('%s %s rls=%s force=%s acl=%s', c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                  coalesce(array_to_string(array(SELECT x::text FROM unnest(c.relacl) AS x ORDER BY 1), ','), '-')) AS line
    FROM pg_class AS c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')`,
  columns: `
    SELECT format('%s #%s %s %s notnull=%s default=%s identity=%s generated=%s', c.relname,
                  row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), a.attidentity, a.attgenerated) AS line
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
      AND a.attnum > 0 AND NOT a.attisdropped`,
  constraints: `
    SELECT format('%s %s %s', c.relname, k.conname, pg_get_constraintdef(k.oid)) AS line
    FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid
    WHERE c.relnamespace = $1::regnamespace`,
  indexes: `
    SELECT pg_get_indexdef(i.indexrelid) AS line
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
    WHERE c.relnamespace = $1::regnamespace`,
  triggers: `
    SELECT pg_get_triggerdef(t.oid) AS line
    FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
    WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal`,
  policies: `
    SELECT format('%s %s %s %s using=%s check=%s', p.tablename, p.policyname, p.cmd, p.roles::text,
                  coalesce(p.qual, '-'), coalesce(p.with_check, '-')) AS line
    FROM pg_policies AS p WHERE p.schemaname = (SELECT nspname FROM pg_namespace WHERE oid = $1::regnamespace)`,
  functions: `
    SELECT format('%s acl=%s', pg_get_functiondef(p.oid),
                  coalesce(array_to_string(array(SELECT x::text FROM unnest(p.proacl) AS x ORDER BY 1), ','), '-')) AS line
    FROM pg_proc AS p WHERE p.pronamespace = $1::regnamespace AND p.prokind IN ('f', 'p')`,
  types: `
    SELECT format('%s %s', t.typname, t.typtype) AS line
    FROM pg_type AS t
    WHERE t.typnamespace = $1::regnamespace AND t.typtype IN ('c', 'd', 'e')
      AND NOT EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')`,
  extension_members: `
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS line
    FROM pg_depend AS d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext' AND extnamespace = $1::regnamespace)`,
  roles: `
    SELECT format('%s login=%s', r.rolname, r.rolcanlogin) AS line
    FROM pg_roles AS r WHERE r.rolname LIKE 'steadytext\\_%' AND $1::text IS NOT NULL`,
};

/** The install's fingerprint: one sorted array of lines per catalog aspect. */
export async function schemaFingerprint(db: Queryable, schema = 'public'): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [name, sql] of Object.entries(QUERIES)) {
    const r = await db.query<{ line: string }>(sql, [schema]);
    out[name] = r.rows.map((row) => row.line).sort();
  }
  return out;
}

/**
 * `pg_dump --schema-only` of `url`, normalised (comments, SET lines and the
 * random \restrict key dropped), when a pg_dump of the server's major version
 * is on this machine; null otherwise (pg_dump refuses newer servers).
 */
export async function schemaDump(db: Queryable, url: string): Promise<string | null> {
  const major = (await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v.slice(0, 2);
  const bin = [`/usr/lib/postgresql/${major}/bin/pg_dump`].find((p) => existsSync(p));
  if (!bin) return null;
  const text = execFileSync(bin, ['--schema-only', '--no-owner', '--dbname', url], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return text
    .split('\n')
    .filter((l) => !l.startsWith('--') && !/^\\(un)?restrict /.test(l) && !/^SET /.test(l) && !/^SELECT pg_catalog.set_config/.test(l))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}
