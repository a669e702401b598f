#!/usr/bin/env node
/**
 * The package's install script (package.json "install").
 *
 * - Installed from the npm package: nothing to do when the prebuilt addon for this platform
 *   loads (prebuilds/linux-x64, linux-arm64, glibc); otherwise the addon is built from source.
 * - In a checkout of the repository (tsconfig.json and test/ present; the npm package has
 *   neither): always built from source, with the two executables (binding.gyp's uzc_tools), so
 *   a contributor's `npm ci` gets what the tests and the bench use.
 *
 * The source build uses node-gyp against the running Node's own headers (include/node next to
 * its binary) or npm_config_nodedir, so it never downloads headers; without python3, make and a
 * C compiler it stops with a message that says what to install instead of node-gyp's errors.
 * `npm install --build-from-source` (npm_config_build_from_source=true) skips the prebuild.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const checkout = existsSync(path.join(ROOT, 'tsconfig.json')) && existsSync(path.join(ROOT, 'test'));
const fromSource = checkout || process.env.npm_config_build_from_source === 'true';

/** Why the addon does not load from build/Release or prebuilds/, or null when it does. */
function loadFailure() {
  try {
    require('node-gyp-build')(ROOT);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message.split('\n')[0] : String(err);
  }
}

/** Is `cmd` an executable in a PATH directory? (No shell: PATH may not have one.) */
function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir || '.', cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function fail(lines) {
  console.error(lines.map((l) => `uring-zc: ${l}`).join('\n'));
  process.exit(1);
}

const platform = `${process.platform}-${process.arch}`;
let why = 'a build from source was asked for';
if (!fromSource) {
  const failure = loadFailure();
  if (failure === null) process.exit(0);
  why = `no prebuilt addon loads for ${platform} (${failure})`;
}

const missing = ['python3', 'make'].filter((c) => !onPath(c));
if (!onPath('cc') && !onPath('gcc')) missing.push('a C compiler (cc)');
if (missing.length > 0) {
  fail([
    `${why}; building it from source needs ${missing.join(', ')}, not found on PATH.`,
    'The npm package carries prebuilt addons for linux-x64 and linux-arm64 with glibc >= 2.28.',
    'Elsewhere (musl/Alpine, other architectures, older glibc) install the build tools, then run `npm rebuild uring-zc`:',
    '  Debian/Ubuntu: apt-get install python3 make gcc    Alpine: apk add python3 make gcc musl-dev linux-headers',
  ]);
}

const nodeDir = (() => {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const own = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(own, 'include', 'node', 'node_api.h')) ? own : null;
})();
if (nodeDir === null) {
  fail([
    `${why}, and there are no Node headers to build it against: none in ${path.resolve(path.dirname(process.execPath), '..', 'include', 'node')}`,
    'and npm_config_nodedir is not set. Point npm at a Node source or headers directory (npm install --nodedir=DIR),',
    'or install a Node that ships its headers (the nodejs.org tarballs and the distributions\' nodejs-dev / libnode-dev packages do).',
  ]);
}

// npm sets npm_config_node_gyp to its bundled node-gyp in lifecycle scripts.
const gyp = [process.env.npm_config_node_gyp, path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')]
  .find((p) => p !== undefined && existsSync(p));
if (gyp === undefined) fail([`${why}, and node-gyp was not found: run the install through npm (npm rebuild uring-zc).`]);

if (!checkout) console.error(`uring-zc: ${why}; building it from source against ${nodeDir}`);
const args = [gyp, 'rebuild', `--nodedir=${nodeDir}`];
if (checkout) args.push('--', '-Duzc_tools=1');
// The addon is C only: link with the C compiler (gyp's Makefile links with $(CXX) by default,
// which would need g++ too).
const env = { ...process.env, LINK: process.env.LINK ?? process.env.CC ?? 'cc' };
const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env });
if (r.status !== 0) fail([`the source build failed (node-gyp exited with ${r.status ?? r.signal}); its output is above.`]);
if (!checkout) {
  const after = loadFailure();
  if (after !== null) fail([`the addon was built but does not load: ${after}`]);
}
