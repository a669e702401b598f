#!/usr/bin/env node
/**
 * package.json "prepare": compiles the TypeScript (src/, bench/, examples/, test/) into dist/.
 * npm runs it after `npm ci` / `npm install` in the checkout, before `npm pack`, and when it
 * installs the package from a git URL or a directory. Where TypeScript is not installed (a
 * directory linked into another project's node_modules gets no devDependencies), a checkout
 * that was already built is left as it is, and an unbuilt one stops with what to do instead of
 * the shell's `tsc: not found`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let tsc;
try {
  // typescript's "exports" (7.x) do not include bin/tsc: find it from its package.json's "bin".
  const pkgJson = createRequire(new URL('../package.json', import.meta.url)).resolve('typescript/package.json');
  const bin = JSON.parse(readFileSync(pkgJson, 'utf8')).bin;
  tsc = path.join(path.dirname(pkgJson), typeof bin === 'string' ? bin : bin.tsc);
} catch (err) {
  if (err?.code !== 'MODULE_NOT_FOUND') throw err;
  if (existsSync(new URL('../dist/src/index.js', import.meta.url))) process.exit(0);
  console.error([
    `uring-zc: ${ROOT} is an unbuilt checkout (no dist/) and TypeScript, a devDependency, is not installed there.`,
    'uring-zc: build it first: `npm ci` in that checkout (it compiles the addon and the TypeScript),',
    'uring-zc: or install the package built by `npm pack` there (npm install ./uring-zc-<version>.tgz).',
  ].join('\n'));
  process.exit(1);
}
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status ?? 1);
