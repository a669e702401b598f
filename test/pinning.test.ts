/**
 * Zero copy under RLIMIT_MEMLOCK, for real: a child runs as an unprivileged user (setpriv, no
 * CAP_IPC_LOCK) under a small locked-memory limit (prlimit). Every page a zero-copy send pins
 * counts against it; a send refused for pinning (ENOMEM) goes out by copying instead, intact,
 * counted in stats().pinFallbacks. Under a limit too small for the default ring, capabilities()
 * says so and new Ring() fails with the limit and the fix in its message.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { addonPath } from '../src/binaries.js';
import { collectChild, lastJson } from './helpers/pool-helpers.js';

const NOBODY = 65534;
const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'helpers', 'pin-child.js');
/** The addon file the library loads (build/Release, or the package's prebuild: src/binaries.ts). */
const addon = addonPath();
const library = path.resolve(here, '..', 'src', 'index.js');

function prefix(memlock: number): string[] {
  return ['prlimit', `--memlock=${memlock}:${memlock}`, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
}

/** Why the child cannot run here, or null: it needs root to drop to nobody, and nobody must reach the files it opens (absolute paths, so every parent directory is checked too). */
function unavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root: cannot switch to an unprivileged user with setpriv';
  for (const tool of ['prlimit', 'setpriv']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `${tool} (util-linux) is not installed`;
  }
  const [cmd, ...args] = prefix(1 << 20);
  const check = spawnSync(cmd!, [...args, process.execPath, '-e',
    "const fs = require('fs'); for (const f of process.argv.slice(1)) fs.accessSync(f, fs.constants.R_OK);", child, addon, library], { cwd: '/', encoding: 'utf8' });
  if (check.status !== 0) return `user ${NOBODY} cannot run node or read ${path.dirname(child)} and the addon (a directory on the way is not readable to others?): ${(check.stderr || check.error?.message || '').trim().split('\n')[0]}`;
  return null;
}
const skip = unavailableReason();

interface Report {
  uid: number;
  memlockLimit: number;
  ioUring: boolean;
  sendZc: boolean;
  defaultRing: boolean;
  reason: string | null;
  tcp?: { bytes: number; zeroCopy: boolean; pinFallbacks: number; intact: boolean };
  udp?: { bytes: number; pinFallbacks: number; intact: boolean };
  ring?: { created: boolean; code?: string; message?: string };
}

async function run(memlock: number, mode: string): Promise<Report> {
  const [cmd, ...args] = prefix(memlock);
  const c = spawn(cmd!, [...args, process.execPath, child, mode], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
  const { code, out, err } = await collectChild(c, 60_000);
  assert.equal(code, 0, `pin-child exited with ${code}: ${err}`);
  return lastJson<Report>(out);
}

test('under a 64 KiB memlock limit, a 16 MiB TCP send and a 60000-byte datagram with adopt()\'s defaults are refused for pinning, sent by copying, and arrive intact', { timeout: 60_000, skip: skip ?? false }, async (t) => {
  const r = await run(64 << 10, 'send');
  assert.equal(r.uid, NOBODY);
  assert.equal(r.memlockLimit, 64 << 10);
  if (!r.ioUring || !r.sendZc || !r.defaultRing) {
    // (RLIMIT_MEMLOCK is per user: other processes of uid 65534 count against the child's limit.)
    t.skip(`io_uring SEND_ZC with a default ring is not available to the unprivileged child: ${r.reason}`);
    return;
  }
  assert.deepEqual(r.tcp, { bytes: 16 << 20, zeroCopy: false, pinFallbacks: r.tcp!.pinFallbacks, intact: true }, 'the TCP send');
  assert.ok(r.tcp!.pinFallbacks >= 1, `the TCP send was refused for pinning and copied (pinFallbacks ${r.tcp!.pinFallbacks})`);
  assert.deepEqual(r.udp, { bytes: 60000, pinFallbacks: r.udp!.pinFallbacks, intact: true }, 'the datagram');
  assert.ok(r.udp!.pinFallbacks >= 1, `the datagram was refused for pinning and copied (pinFallbacks ${r.udp!.pinFallbacks})`);
});

test('under a limit too small for the default ring, capabilities() says so and new Ring() fails with ENOMEM naming the limit and the fix', { timeout: 60_000, skip: skip ?? false }, async (t) => {
  const r = await run(16 << 10, 'ring');
  if (!r.ioUring) {
    t.skip(`not even the probe's small ring fits ${16 << 10} bytes here: ${r.reason}`);
    return;
  }
  assert.equal(r.defaultRing, false, 'capabilities().defaultRing');
  assert.match(String(r.reason), /default size.*ENOMEM.*RLIMIT_MEMLOCK is 16384 bytes/s, 'capabilities().reason');
  assert.equal(r.ring?.created, false);
  assert.equal(r.ring?.code, 'ENOMEM');
  assert.match(String(r.ring?.message), /RLIMIT_MEMLOCK is 16384 bytes.*ulimit -l/s, 'the error states the limit and the fix');
});
