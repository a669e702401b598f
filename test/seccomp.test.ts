/**
 * Where seccomp refuses io_uring (Docker's default profile: io_uring_setup, io_uring_enter and
 * io_uring_register fail with EPERM), for real: child processes run under the project's own
 * launcher, build/Release/uzc_no_uring (src/native/no-uring.c), which installs that filter and
 * execs them. Checks the launcher itself, then what the library, the capability report and the
 * bench do there.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { toolMissingReason, toolPath } from '../src/binaries.js';
import { collectChild, lastJson } from './helpers/pool-helpers.js';
import { withSink } from './helpers/env.js';

/** The launcher's path ('' where missing: then unavailableReason() says why). */
const NO_URING = toolPath('uzc_no_uring') ?? '';
const CHILD = fileURLToPath(new URL('./helpers/no-uring-child.js', import.meta.url));
const CLI = fileURLToPath(new URL('../bench/cli.js', import.meta.url));

/** What adopt() does without io_uring: the msg_zerocopy backend (auto's pick there). */
const ADOPT_WITHOUT_IO_URING = { ok: true, backend: 'msg_zerocopy' } as const;

/** Why the launcher cannot be used here, or null. */
function unavailableReason(): string | null {
  if (NO_URING === '') return toolMissingReason('uzc_no_uring');
  const r = spawnSync(NO_URING, ['true'], { encoding: 'utf8' });
  if (r.status !== 0) return `the launcher cannot install its seccomp filter here: ${(r.stderr || r.error?.message || `exit status ${String(r.status ?? r.signal)}`).trim()}`;
  return null;
}

const reason = unavailableReason();

/**
 * Whether Node itself runs under the launcher's --kill: Node >= 22's libuv sets up io_uring rings
 * of its own (also with UV_USE_IO_URING=0), so there only the EPERM filter can be used.
 */
const nodeSurvivesKill = reason === null && spawnSync(NO_URING, ['--kill', '--', process.execPath, '-e', '0']).status === 0;

/** Runs `argv` under the launcher with `flags`, collected (killed after `ms`). */
function underLauncher(flags: readonly string[], argv: readonly string[], ms = 20_000, env: Record<string, string> = {}): ReturnType<typeof collectChild> {
  // Without NODE_TEST_CONTEXT: a `node --test` child would report to this runner instead of printing TAP.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const child = spawn(NO_URING, [...flags, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...inherited, ...env } });
  return collectChild(child, ms);
}

interface ChildReport {
  raw: { enter: number; register: number };
  ioUring: boolean;
  sendZc: boolean;
  fixedBuffers: boolean;
  reason: string | null;
  ring: { ok?: true; code?: string; isUringZcError?: boolean; message?: string };
  adoptDgram: { ok?: true; backend?: string; code?: string; isUringZcError?: boolean; message?: string };
  adoptNet: { ok?: true; backend?: string; code?: string; isUringZcError?: boolean; message?: string };
  backend: string;
  tcpStream?: { received: number; intact: boolean };
  pool?: { ring: string | null; registeredBytes: number; free: number; code?: string };
  nodeSendWorks: boolean;
}

describe('the uzc_no_uring launcher', { skip: reason ?? false }, () => {
  test('refuses io_uring_enter and io_uring_register with EPERM (the kernel would say EBADF), ENOSYS with --errno ENOSYS', { timeout: 20_000 }, async () => {
    const plain = await collectChild(spawn(process.execPath, [CHILD, 'raw'], { stdio: ['ignore', 'pipe', 'pipe'] }), 15_000);
    assert.equal(plain.code, 0, plain.err);
    const EBADF = -9;
    const before = lastJson<{ raw: ChildReport['raw'] }>(plain.out).raw;
    // Without the launcher the calls reach the kernel (unless this environment blocks them too).
    if (before.enter === EBADF) assert.deepEqual(before, { enter: EBADF, register: EBADF });
    for (const [flags, errno] of [[[], -1], [['--errno', 'EPERM'], -1], [['--errno=ENOSYS'], -38]] as const) {
      const r = await underLauncher(flags, [process.execPath, CHILD, 'raw']);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(lastJson<{ raw: ChildReport['raw'] }>(r.out).raw, { enter: errno, register: errno }, `flags ${flags.join(' ')}`);
    }
  });

  test('--kill: the process is killed with SIGSYS at its first io_uring call, as some sandboxes do', { timeout: 20_000 }, async () => {
    const r = await underLauncher(['--kill'], [process.execPath, CHILD, 'raw']);
    assert.equal(r.signal, 'SIGSYS', `exit ${String(r.code)}: ${r.err}`);
    assert.equal(r.out, '', 'nothing after the refused call ran');
  });

  test('exits 125 on a bad option or no command, 127 for a command not found, and passes the command\'s status on', { timeout: 20_000 }, async () => {
    const bad = await underLauncher(['--errno', 'EFOO'], ['true']);
    assert.equal(bad.code, 125);
    assert.match(bad.err, /--errno takes EPERM or ENOSYS/);
    const none = spawnSync(NO_URING, [], { encoding: 'utf8' });
    assert.equal(none.status, 125);
    assert.match(none.stderr, /no command/);
    const missing = await underLauncher([], ['/nonexistent/uzc-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.err, /uzc-command: No such file or directory/);
    const status = await underLauncher([], ['sh', '-c', 'exit 7']);
    assert.equal(status.code, 7);
  });
});

describe('uring-zc where seccomp refuses io_uring (EPERM, as Docker\'s default profile)', { skip: reason ?? false }, () => {
  test('capabilities() says ioUring: false naming EPERM and seccomp; new Ring() throws ERR_URING_ZC_UNSUPPORTED; adopt() falls back to msg_zerocopy and a TCP stream arrives intact', { timeout: 20_000 }, async () => {
    const r = await underLauncher([], [process.execPath, CHILD]);
    assert.equal(r.code, 0, r.err);
    const c = lastJson<ChildReport>(r.out);
    assert.deepEqual({ ioUring: c.ioUring, sendZc: c.sendZc, fixedBuffers: c.fixedBuffers }, { ioUring: false, sendZc: false, fixedBuffers: false });
    assert.match(c.reason ?? '', /EPERM/);
    assert.match(c.reason ?? '', /seccomp/);
    assert.equal(c.ring.code, 'ERR_URING_ZC_UNSUPPORTED', JSON.stringify(c.ring));
    assert.equal(c.ring.isUringZcError, true);
    assert.equal(c.backend, 'msg_zerocopy', 'capabilities().backend');
    for (const [what, got] of [['a dgram socket', c.adoptDgram], ['a net socket', c.adoptNet]] as const) {
      assert.deepEqual({ ok: got.ok, backend: got.backend }, ADOPT_WITHOUT_IO_URING, `adopt() of ${what}: ${JSON.stringify(got)}`);
    }
    assert.deepEqual(c.tcpStream, { received: 4 << 20, intact: true }, 'the TCP stream through the fallback (its first MiB from a pool)');
    assert.deepEqual(c.pool, { ring: null, registeredBytes: 0, free: 1 }, 'createBufferPool(): plain memory, its buffer back after the send');
    assert.equal(c.nodeSendWorks, true, 'a datagram sent by Node itself arrived');
  });

  test('each backend forced (URING_ZC_BACKEND): msg_zerocopy and copy, under --kill where Node itself makes no io_uring call (any would be SIGSYS), make a pool of plain memory and send a TCP stream intact; io_uring forced is ERR_URING_ZC_UNSUPPORTED naming EPERM', { timeout: 40_000 }, async () => {
    for (const forced of ['msg_zerocopy', 'copy'] as const) {
      // "forced": the child makes no raw io_uring call and no Ring; the library must not either.
      // Under --kill where Node itself makes none (Node >= 22's libuv sets up rings of its own).
      const r = await underLauncher(nodeSurvivesKill ? ['--kill'] : [], [process.execPath, CHILD, 'forced'], 20_000, { URING_ZC_BACKEND: forced });
      assert.equal(r.signal, null, `${forced}: killed by ${String(r.signal)}: an io_uring call was made`);
      assert.equal(r.code, 0, r.err);
      const c = lastJson<ChildReport>(r.out);
      assert.equal(c.backend, forced, 'capabilities().backend');
      assert.match(c.reason ?? '', new RegExp(`not probed: URING_ZC_BACKEND=${forced}`));
      for (const [what, got] of [['a dgram socket', c.adoptDgram], ['a net socket', c.adoptNet]] as const) {
        assert.deepEqual({ ok: got.ok, backend: got.backend }, { ok: true, backend: forced }, `adopt() of ${what}: ${JSON.stringify(got)}`);
      }
      assert.deepEqual(c.tcpStream, { received: 4 << 20, intact: true }, `the TCP stream on ${forced}`);
      assert.deepEqual(c.pool, { ring: null, registeredBytes: 0, free: 1 }, `createBufferPool() on ${forced}: plain memory`);
    }
    const r = await underLauncher([], [process.execPath, CHILD, 'forced'], 20_000, { URING_ZC_BACKEND: 'io_uring' });
    assert.equal(r.code, 0, r.err);
    const c = lastJson<ChildReport>(r.out);
    for (const [what, got] of [['a dgram socket', c.adoptDgram], ['a net socket', c.adoptNet]] as const) {
      assert.equal(got.code, 'ERR_URING_ZC_UNSUPPORTED', `adopt() of ${what} with io_uring forced: ${JSON.stringify(got)}`);
      assert.match(got.message ?? '', /EPERM/);
    }
    assert.equal(c.tcpStream, undefined, 'no stream without a backend');
  });

  test('the send suite under the launcher: every io_uring test skips saying EPERM, and msg_zerocopy and copy pass theirs (pools of plain memory included)', { timeout: 300_000 }, async () => {
    const files = ['tcp', 'udp', 'sendv', 'gso', 'pool', 'slices', 'errors', 'destroy', 'completion'].map((f) => fileURLToPath(new URL(`./${f}.test.js`, import.meta.url)));
    const r = await underLauncher([], [process.execPath, '--test', '--test-concurrency=1', '--test-timeout=120000', '--test-reporter=tap', ...files], 280_000);
    const lines = r.out.split('\n').filter((l) => /^(not )?ok \d+ - /.test(l));
    const failed = lines.filter((l) => l.startsWith('not ok'));
    assert.deepEqual(failed, [], `failed under the launcher:\n${r.out.slice(-3000)}`);
    assert.equal(r.code, 0, r.err.slice(-2000));
    const of = (b: string) => lines.filter((l) => new RegExp(`^ok \\d+ - ${b}[ :]`).test(l));
    for (const l of of('io_uring')) assert.match(l, /# SKIP .*EPERM/, 'an io_uring test skips with the reason');
    for (const b of ['msg_zerocopy', 'copy']) {
      const ran = of(b).filter((l) => !l.includes('# SKIP'));
      assert.ok(ran.length >= 50, `${b}: ${ran.length} tests ran under the launcher`);
      assert.ok(ran.some((l) => /pool/i.test(l)), `${b}: pool tests ran (plain memory)`);
    }
  });

  test('in the IFB sink namespace, auto picks msg_zerocopy and every datagram reports zeroCopy: true', { timeout: 60_000 }, async (t) => {
    const specs = ['16384:8', '61440:8'];
    await withSink(t, null, async (sink) => {
      const child = sink.spawn([NO_URING, process.execPath, 'dist/test/helpers/sink-sender.js', sink.destination, '9', ...specs], {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const { code, out, err } = await collectChild(child, 40_000);
      assert.equal(code, 0, `sink-sender exited with ${code}: ${err}`);
      const report = JSON.parse(out.trim()) as { rows: { size: number; bytes?: number; zeroCopy?: boolean }[]; stats: { errors: number } };
      assert.equal(report.rows.length, 16);
      for (const row of report.rows) assert.deepEqual(row, { size: row.size, bytes: row.size, zeroCopy: true });
      assert.equal(report.stats.errors, 0);
    });
  });

  test('uring-zc capabilities exits 0 and says why (human and --json)', { timeout: 20_000 }, async () => {
    const human = await underLauncher([], [process.execPath, CLI, 'capabilities']);
    assert.equal(human.code, 0, human.err);
    assert.match(human.out, /^\s+io_uring\s+no$/m);
    assert.match(human.out, /^\s+why not\s+io_uring_setup returned EPERM: blocked by seccomp/m);
    const json = await underLauncher([], [process.execPath, CLI, 'capabilities', '--json']);
    assert.equal(json.code, 0, json.err);
    const c = JSON.parse(json.out) as { ioUring: boolean; reason: string };
    assert.equal(c.ioUring, false);
    assert.match(c.reason, /EPERM/);
  });

  test('uring-zc bench --quick: the node row is measured, the uring-zc and C modes are skipped with the reason; nothing crashes or hangs', { timeout: 40_000 }, async () => {
    const r = await underLauncher([], [process.execPath, CLI, 'bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'node,zc,zc-pool,c-ref', '--quick', '--json'], 35_000);
    assert.equal(r.signal, null, 'not killed by the timeout');
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as { rows: Array<{ mode: string }>; skipped: Array<{ what: string; reason: string }>; failed: unknown[] };
    assert.deepEqual(report.rows.map((x) => x.mode), ['node']);
    assert.deepEqual(report.failed, []);
    for (const m of ['zc', 'zc-pool', 'c-ref']) {
      const s = report.skipped.find((x) => x.what === `mode ${m}`);
      assert.match(s?.reason ?? '', /io_uring_setup returned EPERM/, `mode ${m}`);
    }
    assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
  });

  test('uring-zc bench with only uring-zc modes: exit status 1, "no rows to report" and the reason', { timeout: 40_000 }, async () => {
    const r = await underLauncher([], [process.execPath, CLI, 'bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'zc', '--quick'], 35_000);
    assert.equal(r.signal, null, 'not killed by the timeout');
    assert.equal(r.code, 1, 'nothing reportable is a failure');
    assert.match(r.out, /no rows to report/);
    assert.match(r.out, /skipped mode zc: io_uring zero-copy send is not available: io_uring_setup returned EPERM/);
    assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
  });
});
