// How SQL text names pg_steadytext's schema: the one helper for every
// connection that does not pin its search_path. The worker pins it
// (src/postgres/pinSearchPath.ts), so its statements (src/db/) use bare
// names; the CLI, the dashboard and the client either use bare names (found
// through the connection's own search_path, which `steadytext doctor` checks)
// or, where they know the schema, prefix every name with inSchema(schema).
// Imports nothing: the client package (packages/client) builds it with itself.

/** A schema or role name as SQL: bare when it is a plain lower-case identifier, else double-quoted. */
export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * The prefix that puts a name in `schema`: `schema.` (quoted where needed),
 * or '' when no schema is given (the name is then found through the
 * connection's search_path). `${inSchema(s)}steadytext_queue`.
 */
export function inSchema(schema?: string | null): string {
  return schema ? `${quoteIdent(schema)}.` : '';
}
