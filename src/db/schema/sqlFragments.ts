// The `-- <marker> <fragment>` expansion that `npm run build:sql`
// (src/db/schema/sqlBuild.ts) applies for each table that SQL restates
// (jobTypesSql.ts, limitsSql.ts): a source line `-- @name fragment` stays in
// the built script and is followed, at its indentation, by the fragment's lines.

/** Each fragment: the lines it writes. */
export type Fragments = Record<string, () => string[]>;

/** A SQL string literal holding `s`. */
export const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** `text` with every `-- <marker> <fragment>` line followed by its fragment's lines; `file` names the source in errors. */
export function expandFragments(marker: string, fragments: Fragments, text: string, file: string): string {
  const pattern = new RegExp(`^([ \\t]*)-- ${marker}\\b[ \\t]*(\\S*).*$`, 'gm');
  return text.replace(pattern, (line, indent: string, name: string) => {
    const fragment = Object.hasOwn(fragments, name) ? fragments[name] : undefined;
    if (!fragment) {
      throw new Error(`${file}: unknown fragment '${name}' in "${line.trim()}" (known: ${Object.keys(fragments).join(', ')})`);
    }
    return [line, ...fragment().map((l) => indent + l)].join('\n');
  });
}
