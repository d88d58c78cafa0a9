// Whether a command colours what it prints: only on a terminal, and never
// when NO_COLOR is set to anything but the empty string (no-color.org).

export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** cli-table3's `style`: its default colours, or none at all. */
export function tableStyle(color: boolean): { head?: string[]; border?: string[] } {
  return color ? {} : { head: [], border: [] };
}
