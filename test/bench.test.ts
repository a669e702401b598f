/**
 * The benchmark CLI (bench/cli.ts), run as users run it: a child process. Checks the command-line
 * contract (exit status 2 with a message naming the option), that short runs of every scenario
 * finish and print JSON in the documented shape (docs/benchmarking.md), that too-short rows are
 * refused, and that the namespaces a run made are gone afterwards, also after SIGINT.
 * No timing or throughput is asserted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parseBenchOptions } from '../bench/args.js';
import { hasCapIpcLock, memlockShortfallReason, poolMemlockBytes, ringMemlockBytes, zeroCopySendMemlockBytes } from '../bench/memlock.js';
import { netnsUnavailableReason } from '../bench/netns.js';
import { formatSweep } from '../bench/report.js';
import { makeSweep, type Row } from '../bench/run.js';
import { capabilities, ZeroCopySocket } from '../src/index.js';
import { zeroCopyUnavailableReason } from './helpers/env.js';

const CLI = fileURLToPath(new URL('../bench/cli.js', import.meta.url));

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs the CLI to completion (killed after `timeoutMs`), after the command `prefix` if any. */
function cli(args: readonly string[], timeoutMs = 40_000, prefix: readonly string[] = []): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const argv = [...prefix, process.execPath, CLI, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, pid: child.pid ?? -1 });
    });
  });
}

/** Namespaces named after `pid` (netns.ts: uzcsink<pid>x<n>, uzcva<pid>x<n>, uzcvb<pid>x<n>). */
function namespacesOf(pid: number): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const prefixes = [`uzcsink${pid}x`, `uzcva${pid}x`, `uzcvb${pid}x`];
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => prefixes.some((p) => n.startsWith(p)));
}

const netnsReason = netnsUnavailableReason();
/** Why the uring-zc rows cannot run here (io_uring blocked, no SEND_ZC), or null. */
const zcReason = zeroCopyUnavailableReason();
/** Locked memory a row with `qd` zero-copy sends of `size` bytes in flight needs (its own process). */
const zcRowMemlock = (size: number, qd = 64): number => ringMemlockBytes() + qd * zeroCopySendMemlockBytes(size);
const MODES = ['node', 'copy', 'zc', 'zc-pool', 'sendv', 'gso', 'msg-zc', 'sync-copy', 'bare', 'bare-pool', 'c-ref', 'c-ref-pool', 'c-msgzc', 'c-sendto'];

/** Checks every documented field of a `--json` report and returns it. */
function checkReport(text: string): {
  rows: Array<Record<string, unknown>>;
  skipped: Array<Record<string, unknown>>;
  failed: Array<Record<string, unknown>>;
  sweep: Record<string, unknown> | null;
} {
  const r = JSON.parse(text) as Record<string, unknown>;
  assert.equal(r['version'], 1);
  const machine = r['machine'] as Record<string, unknown>;
  assert.equal(typeof machine['kernel'], 'string');
  assert.equal(typeof machine['node'], 'string');
  assert.equal(typeof machine['cpus'], 'number');
  assert.equal(typeof machine['cpuModel'], 'string');
  const options = r['options'] as Record<string, unknown>;
  for (const k of ['scenarios', 'sizes', 'modes', 'workingSets', 'coldSizes']) assert.ok(Array.isArray(options[k]), `options.${k}`);
  for (const k of ['workingSetSize', 'durationMs', 'warmupMs', 'rounds', 'qd', 'maxSends', 'gsoSegment']) assert.equal(typeof options[k], 'number', `options.${k}`);
  assert.equal(typeof options['cRefMode'], 'string');
  assert.equal(typeof options['quick'], 'boolean');
  assert.equal(typeof options['sweep'], 'boolean');
  assert.ok(r['sweep'] === null || typeof r['sweep'] === 'object', 'sweep is an object or null');
  assert.ok(Array.isArray(r['rows']));
  assert.ok(Array.isArray(r['skipped']));
  const rows = r['rows'] as Array<Record<string, unknown>>;
  for (const row of rows) {
    assert.ok(['udp-sink', 'tcp-loopback', 'tcp-veth'].includes(row['scenario'] as string), `scenario ${String(row['scenario'])}`);
    assert.ok(MODES.includes(row['mode'] as string), `mode ${String(row['mode'])}`);
    assert.ok(Number.isInteger(row['size']) && (row['size'] as number) > 0);
    assert.ok(row['workingSet'] === 'hot' || row['workingSet'] === 'cold');
    for (const k of ['gbps', 'gbpsMin', 'gbpsMax', 'sendsPerSec', 'copiedShare', 'errors']) {
      assert.equal(typeof row[k], 'number', `${k} of ${JSON.stringify(row)}`);
      assert.ok((row[k] as number) >= 0, k);
    }
    assert.ok((row['gbpsMin'] as number) <= (row['gbps'] as number) && (row['gbps'] as number) <= (row['gbpsMax'] as number));
    assert.ok((row['copiedShare'] as number) <= 1);
    for (const k of ['cpuSecPerGB', 'vsNode', 'vsCRef', 'vsCRefPool', 'vsCMsgZc', 'vsZc', 'datagramsPerSec', 'segmentSize']) {
      assert.ok(row[k] === null || typeof row[k] === 'number', `${k} is a number or null`);
    }
    // UDP rows count datagrams (a gso send carries several), TCP rows do not.
    assert.equal(row['datagramsPerSec'] === null, (row['scenario'] as string).startsWith('tcp'), 'datagramsPerSec is null exactly for TCP');
    assert.equal(row['segmentSize'] === null, row['mode'] !== 'gso', 'segmentSize is set exactly for gso rows');
    assert.ok(row['firstError'] === null || typeof row['firstError'] === 'string');
    const rounds = row['rounds'] as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(rounds) && rounds.length >= 1);
    for (const rd of rounds) {
      for (const k of ['seconds', 'sends', 'bytes', 'gbps', 'sendsPerSec', 'cpuUser', 'cpuSys', 'copied', 'notifs', 'errors']) {
        assert.equal(typeof rd[k], 'number', `rounds[].${k}`);
      }
      assert.ok((rd['seconds'] as number) >= 0.2, 'rows under 0.2 s are refused');
    }
  }
  const skipped = r['skipped'] as Array<Record<string, unknown>>;
  for (const s of skipped) {
    assert.equal(typeof s['what'], 'string');
    assert.equal(typeof s['reason'], 'string');
  }
  assert.ok(Array.isArray(r['failed']), 'failed is an array');
  const failed = r['failed'] as Array<Record<string, unknown>>;
  for (const f of failed) {
    for (const k of ['what', 'scenario', 'mode', 'workingSet']) assert.equal(typeof f[k], 'string', `failed[].${k}`);
    assert.ok(Number.isInteger(f['size']) && Number.isInteger(f['round']) && (f['round'] as number) >= 1);
    const e = f['error'] as Record<string, unknown>;
    assert.ok(e['code'] === null || typeof e['code'] === 'string', 'failed[].error.code is a string or null');
    assert.equal(typeof e['message'], 'string');
    // A failed row is listed as not reported too, and is not among the rows.
    assert.ok(skipped.some((s) => s['what'] === f['what'] && /^failed: /.test(s['reason'] as string)), `${String(f['what'])} in skipped`);
    assert.ok(!rows.some((x) => `${String(x['scenario'])} ${String(x['mode'])}` === `${String(f['scenario'])} ${String(f['mode'])}` && x['size'] === f['size'] && x['workingSet'] === f['workingSet']));
  }
  return { rows, skipped, failed, sweep: r['sweep'] as Record<string, unknown> | null };
}

/**
 * How to run the CLI with 64 KiB of RLIMIT_MEMLOCK that counts: prlimit lowers the limit, and a
 * process with CAP_IPC_LOCK (root) first drops it with setpriv (bounding and inheritable sets:
 * root keeps its uid and can read this checkout wherever it is).
 */
function failingRowPrefix(): string[] {
  // 16 KiB: the worker's ring (9 pages) does not fit, so the row fails with ENOMEM. (A zero-copy
  // send over the limit does not fail any more: it is resent by copying.)
  const limit = ['prlimit', '--memlock=16384:16384'];
  return hasCapIpcLock() ? ['setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', ...limit] : limit;
}

function failingRowUnavailableReason(): string | null {
  if (zcReason !== null) return zcReason;
  if (spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).status !== 0) return 'prlimit (util-linux) is not installed';
  if (hasCapIpcLock()) {
    if (process.getuid?.() !== 0) return 'has CAP_IPC_LOCK but is not root: cannot drop it with setpriv to make locked memory count';
    if (spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status !== 0) return 'setpriv (util-linux) is not installed';
  }
  return null;
}

describe('uring-zc bench: command line', () => {
  const bad: Array<[string, string[], RegExp]> = [
    ['a size larger than a datagram', ['bench', '--sizes', '1k,70000'], /--sizes/],
    ['a size that is not a number', ['bench', '--sizes', 'big'], /--sizes/],
    ['an unknown mode', ['bench', '--modes', 'node,turbo'], /--modes.*turbo/],
    ['an unknown scenario', ['bench', '--scenario', 'udp-moon'], /--scenario.*udp-moon/],
    ['an unknown flag', ['bench', '--fast'], /--fast/],
    ['a bad duration', ['bench', '--duration', 'soon'], /--duration/],
    ['a bad warm-up', ['bench', '--warmup', '5ms'], /--warmup/],
    ['a bad working set', ['bench', '--working-set', 'warm'], /--working-set/],
    ['a working set smaller than a send', ['bench', '--working-set', 'cold', '--working-set-size', '1k', '--sizes', '16k'], /--working-set-size/],
    ['--cold-sizes outside --sizes', ['bench', '--sizes', '4k,16k', '--cold-sizes', '32k'], /--cold-sizes.*32k/],
    ['--cold-sizes with a hot working set', ['bench', '--working-set', 'hot', '--cold-sizes', '16k'], /--cold-sizes/],
    ['a zero GSO segment', ['bench', '--gso-segment', '0'], /--gso-segment/],
    ['--sweep with --sizes', ['bench', '--sweep', '--sizes', '1k'], /--sweep.*--sizes/],
    ['an unknown command', ['benchmark'], /benchmark/],
  ];
  for (const [what, args, message] of bad) {
    test(`rejects ${what} with exit status 2 and a message naming it`, { timeout: 20_000 }, async () => {
      const r = await cli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    });
  }

  test('prints its help with exit status 0', { timeout: 20_000 }, async () => {
    const r = await cli(['bench', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--scenario/);
    assert.match(r.stdout, /zc-pool/);
  });

  test('--file: refuses what does not apply to file rows (exit status 2) and file modes without --file', { timeout: 30_000 }, async () => {
    for (const args of [
      ['--file', '--scenario', 'udp-sink'],
      ['--file', '--modes', 'zc'],
      ['--file', '--qd', '4'],
      ['--file', '--sizes', '5g'],
      ['--modes', 'sendfile'],
      ['--read-chunk', '1m'],
      ['--file', '--read-chunk', '512'],
      ['--file', '--read-chunk', '65m'],
    ]) {
      const r = await cli(['bench', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
  });

  test('--file over tcp-loopback: node (pipe), send-loop and sendfile rows of a 1 MiB file, and stream where createWriteStream exists (else skipped with its reason); the files removed', { timeout: 120_000, skip: zcReason ?? false }, async () => {
    const r = await cli(['bench', '--file', '--scenario', 'tcp-loopback', '--sizes', '1m', '--read-chunk', '256k', '--quick', '--json'], 100_000);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { rows: Record<string, unknown>[]; skipped: { what: string; reason: string }[]; options: Record<string, unknown> };
    assert.equal(report.options['file'], true);
    assert.equal(report.options['readChunk'], 256 << 10);
    assert.match(r.stderr, /files read 256k at a time/);
    const modes = report.rows.map((x) => x['mode']);
    for (const m of ['node', 'send-loop', 'sendfile']) assert.ok(modes.includes(m), `row ${m}: ${modes.join(',')}`);
    for (const row of report.rows) {
      assert.equal(row['size'], 1 << 20);
      assert.ok((row['gbps'] as number) > 0, `${String(row['mode'])} GB/s`);
      assert.ok(typeof row['cpuSecPerGB'] === 'number' && (row['cpuSecPerGB'] as number) > 0);
      assert.equal(row['errors'], 0);
    }
    const hasStream = typeof (ZeroCopySocket.prototype as unknown as Record<string, unknown>)['createWriteStream'] === 'function';
    if (hasStream) assert.ok(modes.includes('stream'));
    else assert.ok(report.skipped.some((x) => x.what === 'mode stream' && x.reason === 'not available: createWriteStream not built'), JSON.stringify(report.skipped));
    assert.equal(existsSync(`/var/tmp/uzc-bench-${r.pid}`), false, 'the bench files are removed');
  });

  test('capabilities --json reports the library, memlock, namespaces and kernel', { timeout: 20_000 }, async () => {
    const r = await cli(['capabilities', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['ioUring', 'sendZc', 'reportUsage', 'fixedBuffers', 'namespaces', 'zcPool']) assert.equal(typeof c[k], 'boolean', k);
    assert.equal(typeof c['kernel'], 'string');
    assert.ok(typeof c['memlockLimit'] === 'number' || c['memlockLimit'] === 'unlimited' || c['memlockLimit'] === 'unknown');
  });
});

describe('uring-zc bench: options and the sweep summary', () => {
  test('the default run: 4k, 16k and 60000 hot, 60000 cold, six modes', () => {
    const o = parseBenchOptions([]);
    assert.deepEqual(o.sizes, [4096, 16384, 60000]);
    assert.deepEqual(o.workingSets, ['hot', 'cold']);
    assert.deepEqual(o.coldSizes, [60000]);
    assert.deepEqual(o.modes, ['node', 'copy', 'zc', 'zc-pool', 'c-ref', 'c-ref-pool']);
    // Explicit sizes measure hot only unless asked; --working-set both measures every size cold.
    assert.deepEqual(parseBenchOptions(['--sizes', '1k']).coldSizes, []);
    assert.deepEqual(parseBenchOptions(['--sizes', '1k,2k', '--working-set', 'both']).coldSizes, [1024, 2048]);
    // Every row warms up before its clock starts (V8 optimises the send path meanwhile).
    assert.equal(o.warmupMs, 200);
    assert.equal(parseBenchOptions(['--quick']).warmupMs, 100);
    assert.equal(parseBenchOptions(['--warmup', '0']).warmupMs, 0);
    assert.equal(parseBenchOptions(['--warmup', '1s']).warmupMs, 1000);
  });

  test('--sweep: copy, zc and zc-pool at 1k..64k (65507 on UDP), hot and cold', () => {
    const o = parseBenchOptions(['--sweep', '--quick']);
    assert.deepEqual(o.sizes, [1024, 2048, 4096, 8192, 16384, 32768, 65507]);
    assert.deepEqual(o.modes, ['copy', 'zc', 'zc-pool']);
    assert.deepEqual(o.coldSizes, o.sizes);
    assert.equal(parseBenchOptions(['--sweep', '--scenario', 'tcp-loopback']).sizes.at(-1), 65536);
  });

  test('the sweep summary names the winner per size and the crossover', () => {
    const o = parseBenchOptions(['--sweep', '--working-set', 'hot']);
    const gbps: Record<string, number[]> = {
      copy: [1, 2, 3, 4, 5, 6, 7],
      zc: [0.5, 1.5, 2.5, 3.5, 6, 8, 10],
      'zc-pool': [0.9, 2.1, 3.5, 5, 7, 9, 12],
    };
    const rows = o.sizes.flatMap((size, i) => o.modes.map((mode) => ({ scenario: 'udp-sink', mode, size, workingSet: 'hot', gbps: gbps[mode]![i]! }) as unknown as Row));
    const sw = makeSweep(rows, o)!;
    assert.deepEqual(sw.crossover['hot'], { zc: 16384, 'zc-pool': 2048 });
    assert.equal(sw.entries.find((e) => e.size === 1024)!.winner, 'copy');
    assert.equal(sw.entries.find((e) => e.size === 65507)!.winner, 'zc-pool');
    const text = formatSweep(sw).join('\n');
    assert.match(text, /crossover copy→zc at 16 KB \(hot\)/);
    assert.match(text, /crossover copy→zc-pool at 2 KB \(hot\)/);
  });
});

describe('uring-zc bench: short runs', () => {
  test('tcp-loopback --quick --json completes with rows in the documented shape', {
    timeout: 40_000,
    skip: zcReason ?? memlockShortfallReason(zcRowMemlock(16384), 'a zc row of 64 16 KiB sends in flight') ?? false,
  }, async () => {
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'node,copy,zc,c-ref', '--quick', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { rows } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => x['mode']), ['node', 'copy', 'zc', 'c-ref']);
    // The human table went to stderr, since the JSON took stdout.
    assert.match(r.stderr, /tcp-loopback\s+zc\s+16k\s+hot/);
  });

  test('tcp-loopback c-msgzc and c-sendto rows: the C sender without io_uring, next to c-ref', { timeout: 40_000 }, async () => {
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '256k', '--modes', 'node,c-ref,c-msgzc,c-sendto', '--quick', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { rows } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => x['mode']), ['node', 'c-ref', 'c-msgzc', 'c-sendto']);
    const row = (m: string): Record<string, unknown> => rows.find((x) => x['mode'] === m)!;
    for (const m of ['c-msgzc', 'c-sendto']) {
      assert.equal(row(m)['errors'], 0, m);
      // Loopback copies every send: COPIED notifications for c-msgzc, by definition for c-sendto.
      assert.equal(row(m)['copiedShare'], 1, m);
      const rd = (row(m)['rounds'] as Array<Record<string, number>>)[0]!;
      // Whole sends only; the first may have begun in the warm-up (its earlier bytes are not counted).
      assert.ok(rd['bytes']! <= rd['sends']! * 262144 && rd['bytes']! > (rd['sends']! - 1) * 262144, `${m}: ${rd['bytes']} bytes in ${rd['sends']} sends`);
    }
    assert.ok(((row('c-msgzc')['rounds'] as Array<Record<string, number>>)[0]!['notifs'] ?? 0) > 0, 'c-msgzc read notifications');
    assert.equal((row('c-sendto')['rounds'] as Array<Record<string, number>>)[0]!['notifs'], 0);
    assert.equal(row('c-msgzc')['vsCMsgZc'], 1);
    assert.equal(typeof row('c-ref')['vsCMsgZc'], 'number');
    // The table has the column and the two headlines.
    assert.match(r.stderr, /vs c-msgzc/);
    assert.match(r.stderr, /c-ref vs c-msgzc: 256k hot \d/);
    assert.match(r.stderr, /c-msgzc vs node: 256k hot \d/);
  });

  test('without io_uring (seccomp, sysctl) the node row runs and every uring-zc and C mode is skipped with the reason', {
    timeout: 40_000,
    skip: zcReason === null ? 'io_uring zero-copy send works here (run the suite under build/Release/uzc_no_uring to test this)' : false,
  }, async () => {
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'node,copy,zc,zc-pool,c-ref', '--quick', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { rows, skipped, failed } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => x['mode']), ['node']);
    assert.deepEqual(failed, []);
    const why = capabilities().reason!;
    for (const m of ['copy', 'zc', 'zc-pool', 'c-ref']) {
      const s = skipped.find((x) => x['what'] === `mode ${m}`);
      assert.ok(s !== undefined, `mode ${m} is listed as skipped`);
      assert.ok((s['reason'] as string).includes(why), `mode ${m}: the reason says why io_uring is unavailable: ${String(s['reason'])}`);
    }
    assert.match(r.stderr, /skipped mode zc: io_uring zero-copy send is not available/);
  });

  test('a row whose worker fails (ENOMEM: no ring fits 16 KiB of RLIMIT_MEMLOCK without CAP_IPC_LOCK) is reported FAILED with the code and message', {
    timeout: 40_000,
    skip: failingRowUnavailableReason() ?? false,
  }, async () => {
    // The node row shows the run goes on around the failed one.
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '60000', '--modes', 'node,zc', '--quick', '--json'], 40_000, failingRowPrefix());
    assert.equal(r.code, 1, `a failed row makes the run fail: ${r.stderr}`);
    const { rows, failed } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => x['mode']), ['node']);
    assert.equal(failed.length, 1, JSON.stringify(failed));
    const f = failed[0]!;
    assert.equal(f['what'], 'tcp-loopback zc 60000 hot');
    assert.equal(f['round'], 1);
    const e = f['error'] as { code: string | null; message: string };
    assert.equal(e.code, 'ENOMEM');
    assert.match(e.message, /RLIMIT_MEMLOCK/, 'the library\'s message names the limit');
    // The human table (stderr here) says it failed and why, not that the run was too short.
    assert.match(r.stderr, /FAILED tcp-loopback zc 60000 hot \(round 1\): ENOMEM: /);
    assert.doesNotMatch(r.stderr, /measured only/);
  });

  test('tcp-loopback zc-pool and sendv, hot and cold, complete in the documented shape', {
    timeout: 40_000,
    skip: zcReason ?? memlockShortfallReason(Math.max(ringMemlockBytes() + poolMemlockBytes(4 << 20, 1), zcRowMemlock(16384 + 4096)), 'a 4 MiB pool row') ?? false,
  }, async () => {
    // A 4 MiB cold region fits the usual 8 MiB RLIMIT_MEMLOCK, so this runs without root too.
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'zc-pool,sendv,gso', '--working-set', 'both',
      '--working-set-size', '4m', '--quick', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { rows, skipped } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => `${String(x['mode'])} ${String(x['workingSet'])}`), ['zc-pool hot', 'sendv hot', 'zc-pool cold', 'sendv cold']);
    for (const x of rows) assert.equal(x['errors'], 0, JSON.stringify(x));
    // GSO is UDP only: skipped on TCP with the reason.
    assert.ok(skipped.some((s) => /gso/.test(s['what'] as string) && /UDP/.test(s['reason'] as string)));
  });

  test('udp-sink and tcp-veth --quick --json run every mode and remove their namespaces', {
    timeout: 90_000,
    skip: netnsReason ?? zcReason ?? false,
  }, async () => {
    const r = await cli(['bench', '--scenario', 'udp-sink,tcp-veth', '--sizes', '16k', '--modes', MODES.join(','), '--quick', '--json'], 80_000);
    assert.equal(r.code, 0, r.stderr);
    const { rows, skipped } = checkReport(r.stdout);
    assert.deepEqual(rows.filter((x) => x['scenario'] === 'udp-sink').map((x) => x['mode']), MODES);
    assert.deepEqual(rows.filter((x) => x['scenario'] === 'tcp-veth').map((x) => x['mode']), MODES.filter((m) => m !== 'gso' && !m.startsWith('bare')));
    assert.ok(skipped.some((s) => s['what'] === 'tcp-veth gso 16k hot'));
    assert.ok(skipped.some((s) => s['what'] === 'tcp-veth bare 16k hot' && /UDP only/.test(s['reason'] as string)));
    const udp = (mode: string): Record<string, unknown> => rows.find((x) => x['scenario'] === 'udp-sink' && x['mode'] === mode)!;
    // The sink does not copy: zero copy shows, also from registered buffers and through sendv.
    for (const m of ['zc', 'zc-pool', 'sendv', 'bare', 'bare-pool', 'c-ref-pool']) assert.equal(udp(m)['copiedShare'], 0, m);
    // sendto(MSG_ZEROCOPY) too (a send copied after ENOBUFS would count), plain sendto never.
    assert.ok((udp('c-msgzc')['copiedShare'] as number) <= 0.1, 'c-msgzc into the sink is not copied');
    assert.equal(udp('c-sendto')['copiedShare'], 1);
    assert.equal(udp('c-msgzc')['vsCMsgZc'], 1);
    assert.equal(typeof udp('c-ref')['vsCMsgZc'], 'number');
    // sendv is compared with zc (its headline); zc with itself is 1.
    assert.equal(typeof udp('sendv')['vsZc'], 'number');
    assert.equal(udp('zc')['vsZc'], 1);
    // 16384 bytes in 1472-byte datagrams: 12 per send.
    assert.equal(udp('gso')['segmentSize'], 1472);
    assert.equal(udp('gso')['datagramsPerSec'], (udp('gso')['sendsPerSec'] as number) * 12);
    assert.equal(udp('zc')['datagramsPerSec'], udp('zc')['sendsPerSec']);
    for (const x of rows) {
      assert.equal(typeof x['vsCRefPool'], 'number', 'every row has a c-ref-pool row to compare with');
      if (x['mode'] === 'c-ref-pool') assert.equal(x['vsCRefPool'], 1);
    }
    assert.deepEqual(namespacesOf(r.pid), []);
  });

  test('the default cold rows: udp-sink zc-pool and c-ref-pool walk a 256 MiB working set', {
    timeout: 60_000,
    skip: netnsReason ?? zcReason ?? memlockShortfallReason(ringMemlockBytes() + poolMemlockBytes(256 << 20, 1), 'a 256 MiB pool row') ?? false,
  }, async () => {
    const r = await cli(['bench', '--sizes', '60000', '--cold-sizes', '60000', '--modes', 'node,zc-pool,c-ref-pool', '--quick', '--json'], 50_000);
    assert.equal(r.code, 0, r.stderr);
    const { rows } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => `${String(x['mode'])} ${String(x['workingSet'])}`),
      ['node hot', 'zc-pool hot', 'c-ref-pool hot', 'node cold', 'zc-pool cold', 'c-ref-pool cold']);
    const pool = rows.find((x) => x['mode'] === 'zc-pool' && x['workingSet'] === 'cold')!;
    assert.equal(pool['errors'], 0);
    assert.equal(typeof pool['vsNode'], 'number');
    assert.equal(typeof pool['vsCRefPool'], 'number');
    // The table prints the headline ratios.
    assert.match(r.stderr, /zc-pool vs node: .*60000 cold/);
    assert.match(r.stderr, /zc-pool vs c-ref-pool: .*60000 cold/);
  });

  test('refuses rows measured for less than 0.2 s and says so', { timeout: 30_000 }, async () => {
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '1k', '--modes', 'node', '--max-sends', '20', '--json']);
    assert.equal(r.code, 1, 'nothing reportable is a failure');
    const { rows, skipped } = checkReport(r.stdout);
    assert.equal(rows.length, 0);
    assert.ok(skipped.some((s) => /under 0\.2 s/.test(s['reason'] as string)));
    assert.match(r.stderr, /not reported/);
  });

  test('SIGINT stops the run and removes its namespaces', { timeout: 30_000, skip: netnsReason ?? false }, async () => {
    const child = spawn(process.execPath, [CLI, 'bench', '--scenario', 'udp-sink', '--sizes', '1k', '--modes', 'node', '--duration', '20s', '--rounds', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const pid = child.pid!;
    // Wait until the run has made its namespace (bounded), then interrupt.
    const until = Date.now() + 15_000;
    while (namespacesOf(pid).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.notDeepEqual(namespacesOf(pid), [], 'the run made its namespace');
    child.kill('SIGINT');
    const code = await closed;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT/);
    assert.deepEqual(namespacesOf(pid), []);
  });
});
