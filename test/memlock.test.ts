/**
 * RLIMIT_MEMLOCK, for real: a child process runs as an unprivileged user (setpriv, no
 * CAP_IPC_LOCK) under a 64 KiB locked-memory limit (prlimit). Registering an 8 MiB pool fails
 * with ENOMEM and a message that states the requested bytes, the limit and how to raise it; a
 * pool within the limit registers and sends from the same ring.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { collectChild, lastJson } from './helpers/pool-helpers.js';

const LIMIT = 65536;
const NOBODY = 65534;
const BIG = 8 << 20;

/** The unprivileged command prefix: prlimit (set the limit), then setpriv (drop to nobody). */
function prefix(): string[] {
  return ['prlimit', `--memlock=${LIMIT}:${LIMIT}`, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
}

/** Why the child cannot run here, or null. */
function unavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root: cannot switch to an unprivileged user with setpriv';
  for (const tool of ['prlimit', 'setpriv']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `${tool} (util-linux) is not installed`;
  }
  // The unprivileged user must be able to run node and read the compiled tests and the addon.
  const check = spawnSync(prefix()[0]!, [...prefix().slice(1), process.execPath, '-e',
    "const fs = require('fs'); for (const f of process.argv.slice(1)) fs.accessSync(f, fs.constants.R_OK);",
    'dist/test/helpers/memlock-child.js', 'dist/src/index.js', 'build/Release/uring_zc.node'], { cwd: process.cwd(), encoding: 'utf8' });
  if (check.status !== 0) return `user ${NOBODY} cannot run node or read dist/ and build/ here: ${(check.stderr || check.error?.message || '').trim().split('\n')[0]}`;
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
  const reason = unavailableReason();
  if (reason !== null) {
    t.skip(reason);
    return;
  }
  const p = prefix();
  const child = spawn(p[0]!, [...p.slice(1), process.execPath, 'dist/test/helpers/memlock-child.js', String(BIG), '4096', '4'], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { code, out, err } = await collectChild(child, 20_000);
  assert.equal(code, 0, `memlock-child exited with ${code}: ${err}`);
  const report = lastJson<ChildReport>(out);
  assert.equal(report.uid, NOBODY, 'the child ran unprivileged');
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
