/**
 * RLIMIT_MEMLOCK, for real: a child process runs as an unprivileged user of its own (setpriv, no
 * CAP_IPC_LOCK) under a 64 KiB locked-memory limit (prlimit). Registering an 8 MiB pool fails
 * with ENOMEM and a message that states the requested bytes, the limit and how to raise it; a
 * pool within the limit registers and sends from the same ring.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { addonPath } from '../src/binaries.js';
import { collectChild, lastJson } from './helpers/pool-helpers.js';

const LIMIT = 65536;
/**
 * The unprivileged user: a uid of this run's own, not nobody's 65534. The kernel counts locked
 * memory (io_uring rings, registered buffers, zero-copy pins) per user against RLIMIT_MEMLOCK,
 * so any other process running as 65534 (another test run as nobody) would eat into the child's
 * 64 KiB and make its ring fail. No passwd entry is needed for a uid.
 */
const UNPRIVILEGED_UID = 2_000_000_000 + (process.pid % 1_000_000);
const BIG = 8 << 20;
/** The checkout's root, from dist/test/memlock.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The unprivileged command prefix: prlimit (set the limit), then setpriv (drop to nobody). The
 * soft limit starts at 0 and memlock-child raises it to the hard one, LIMIT, once Node has
 * started: Node's own io_uring rings (libuv, Node >= 22) are refused then and take none of it.
 */
function prefix(): string[] {
  return ['prlimit', `--memlock=0:${LIMIT}`, 'setpriv', `--reuid=${UNPRIVILEGED_UID}`, `--regid=${UNPRIVILEGED_UID}`, '--clear-groups'];
}

/**
 * The child's files, copied into a fresh directory under the temp dir and given to the
 * unprivileged user: the checkout itself may sit where that user cannot go (a clone in root's
 * mode-700 home), and Node opens its main module by absolute path, which needs search
 * permission on every parent directory. The copy keeps the layout the code expects
 * (dist/src/binaries.js loads the addon through node-gyp-build from the package root: the same
 * addon file this process loaded, at the same relative path, and node-gyp-build itself in
 * node_modules; package.json says "type": "module").
 */
function stageChild(): { dir: string; script: string; files: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-memlock-'));
  mkdirSync(path.join(dir, 'dist/test/helpers'), { recursive: true });
  cpSync(path.join(ROOT, 'dist/src'), path.join(dir, 'dist/src'), { recursive: true });
  const loader = path.dirname(createRequire(import.meta.url).resolve('node-gyp-build/package.json'));
  cpSync(loader, path.join(dir, 'node_modules/node-gyp-build'), { recursive: true });
  // memlock-child.js imports only ../../src/index.js (and Node's own modules).
  const addon = path.relative(ROOT, addonPath());
  mkdirSync(path.join(dir, path.dirname(addon)), { recursive: true });
  const files = ['dist/test/helpers/memlock-child.js', addon];
  for (const f of files) cpSync(path.join(ROOT, f), path.join(dir, f));
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  const own = (p: string): void => {
    chownSync(p, UNPRIVILEGED_UID, UNPRIVILEGED_UID);
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) own(path.join(p, e.name));
      else chownSync(path.join(p, e.name), UNPRIVILEGED_UID, UNPRIVILEGED_UID);
    }
  };
  own(dir);
  const abs = [...files, 'dist/src/index.js', 'dist/src/native.js', 'dist/src/binaries.js', 'node_modules/node-gyp-build/index.js', 'package.json'].map((f) => path.join(dir, f));
  return { dir, script: path.join(dir, 'dist/test/helpers/memlock-child.js'), files: abs };
}

/**
 * Why the child cannot run here, or null. Checks exactly what the child will do: run this node
 * binary as the unprivileged user and open the staged files by their absolute paths (so every
 * parent directory, the temp dir's included, must be searchable by that user).
 */
function unavailableReason(files: readonly string[] | null): string | null {
  if (process.getuid?.() !== 0) return 'not running as root: cannot switch to an unprivileged user with setpriv';
  for (const tool of ['prlimit', 'setpriv']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `${tool} (util-linux) is not installed`;
  }
  if (files === null) return null;
  const check = spawnSync(prefix()[0]!, [...prefix().slice(1), process.execPath, '-e',
    "const fs = require('fs'); for (const f of process.argv.slice(1)) fs.accessSync(f, fs.constants.R_OK);",
    ...files], { cwd: '/', encoding: 'utf8' });
  if (check.status !== 0) {
    // The error line of Node's report (e.g. "Error: EACCES: permission denied, access '...'").
    const lines = (check.stderr || check.error?.message || '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const why = lines.find((l) => /Error\b/.test(l)) ?? lines[0] ?? `exit status ${String(check.status ?? check.signal)}`;
    return `user ${UNPRIVILEGED_UID} cannot run ${process.execPath} or read the child's files under ${os.tmpdir()}: ${why}`;
  }
  return null;
}

interface ChildReport {
  uid: number;
  memlockLimit: number;
  ioUring: boolean;
  reason: string | null;
  big?: { name: string; code?: string; errno?: number; syscall?: string; message: string; created?: boolean };
  small?: { registeredBytes?: number; bytes?: number; fixed?: number; intact?: boolean; free?: number; error?: unknown };
}

test('a pool over RLIMIT_MEMLOCK fails with ENOMEM naming the bytes, the limit and the fixes; a pool within it works (unprivileged child)', { timeout: 30_000 }, async (t) => {
  const early = unavailableReason(null);
  if (early !== null) {
    t.skip(early);
    return;
  }
  const staged = stageChild();
  t.after(() => rmSync(staged.dir, { recursive: true, force: true }));
  const reason = unavailableReason(staged.files);
  if (reason !== null) {
    t.skip(reason);
    return;
  }
  const p = prefix();
  const child = spawn(p[0]!, [...p.slice(1), process.execPath, staged.script, String(BIG), '4096', '4'], {
    cwd: staged.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { code, out, err } = await collectChild(child, 20_000);
  assert.equal(code, 0, `memlock-child exited with ${code}: ${err}`);
  const report = lastJson<ChildReport>(out);
  assert.equal(report.uid, UNPRIVILEGED_UID, 'the child ran unprivileged');
  assert.equal(report.memlockLimit, LIMIT, 'under the small limit');
  if (!report.ioUring) {
    t.skip(`io_uring is not available to an unprivileged user here: ${report.reason}`);
    return;
  }
  const big = report.big!;
  assert.equal(big.created, undefined, `an ${BIG}-byte pool must not register under a ${LIMIT}-byte limit`);
  assert.equal(big.code, 'ENOMEM', big.message);
  assert.equal(big.errno, -12);
  assert.equal(big.name, 'UringZcSystemError');
  assert.match(big.message, new RegExp(`\\b${BIG}\\b`), 'the message states the requested bytes');
  assert.match(big.message, new RegExp(`\\b${LIMIT}\\b`), 'the message states the limit');
  assert.match(big.message, /RLIMIT_MEMLOCK/);
  assert.match(big.message, /ulimit -l/, 'the shell fix');
  assert.match(big.message, /LimitMEMLOCK/, 'the systemd fix');
  assert.match(big.message, /--ulimit memlock/, 'the Docker fix');
  assert.deepEqual(report.small, { registeredBytes: 4 * 4096, bytes: 1000, fixed: 1, intact: true, free: 4 }, 'a pool within the limit registers and sends');
});
