#!/usr/bin/env node
// The `steadytext` command. It runs the built JavaScript in dist/ (`npm ci` in
// a clone builds it through the `dependencies` script, `npm pack` through
// `prepack`), so a call starts without compiling any TypeScript.
//
// In a development checkout where something under src/ changed after the last
// `npm run build`, it runs the sources through tsx (a devDependency) instead,
// so an edit takes effect at once; an installed package always runs its build.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The oldest Node.js the package supports is package.json's engines.node
// (">=22"); npm only warns (EBADENGINE) when it is older, and much would then
// half-work, so the command refuses at once, in one line, before loading
// anything else (this file itself runs on any Node.js with ES modules).
const minimum = Number(/>=\s*(\d+)/.exec(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node)[1]);
if (Number(process.versions.node.split('.')[0]) < minimum) {
  process.stderr.write(`steadytext: needs Node.js ${minimum} or newer; this is ${process.version} (${process.execPath})\n`);
  process.exit(1);
}

// Node 22+: keep the compiled code of the modules below on disk (in the OS temp
// directory), so later calls skip most of the parsing and compiling.
module.enableCompileCache?.();

const built = path.join(root, 'dist', 'cli', 'main.js');
const stamp = path.join(root, 'dist', '.built'); // written last by `npm run build`

/** Newest modification time of any file under dir. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function buildIsCurrent() {
  if (!existsSync(built) || !existsSync(stamp)) return false;
  if (root.split(path.sep).includes('node_modules')) return true; // an installed package
  const src = path.join(root, 'src');
  return !existsSync(src) || newest(src) <= statSync(stamp).mtimeMs;
}

if (buildIsCurrent()) {
  await import(pathToFileURL(built).href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    if (!existsSync(built)) {
      process.stderr.write('steadytext: the build (dist/) is missing: run `npm run build` (npm ci runs it)\n');
      process.exit(1);
    }
  }
  if (register) {
    register();
    await import(pathToFileURL(path.join(root, 'src', 'cli', 'main.ts')).href);
  } else {
    await import(pathToFileURL(built).href); // older than src/, but what there is
  }
}
