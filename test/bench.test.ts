/**
 * The benchmark CLI (bench/cli.ts), run as users run it: a child process. Checks the command-line
 * contract (exit status 2 with a message naming the option), that short runs of every scenario
 * finish and print JSON in the documented shape (docs/benchmarking.md), that too-short rows are
 * refused, and that the namespaces a run made are gone afterwards, also after SIGINT.
 * No timing or throughput is asserted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { netnsUnavailableReason } from '../bench/netns.js';

const CLI = fileURLToPath(new URL('../bench/cli.js', import.meta.url));

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs the CLI to completion (killed after `timeoutMs`). */
function cli(args: readonly string[], timeoutMs = 40_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Checks every documented field of a `--json` report and returns it. */
function checkReport(text: string): { rows: Array<Record<string, unknown>>; skipped: Array<Record<string, unknown>> } {
  const r = JSON.parse(text) as Record<string, unknown>;
  assert.equal(r['version'], 1);
  const machine = r['machine'] as Record<string, unknown>;
  assert.equal(typeof machine['kernel'], 'string');
  assert.equal(typeof machine['node'], 'string');
  assert.equal(typeof machine['cpus'], 'number');
  assert.equal(typeof machine['cpuModel'], 'string');
  const options = r['options'] as Record<string, unknown>;
  for (const k of ['scenarios', 'sizes', 'modes', 'workingSets']) assert.ok(Array.isArray(options[k]), `options.${k}`);
  for (const k of ['workingSetSize', 'durationMs', 'rounds', 'qd', 'maxSends']) assert.equal(typeof options[k], 'number', `options.${k}`);
  assert.equal(typeof options['cRefMode'], 'string');
  assert.equal(typeof options['quick'], 'boolean');
  assert.ok(Array.isArray(r['rows']));
  assert.ok(Array.isArray(r['skipped']));
  const rows = r['rows'] as Array<Record<string, unknown>>;
  for (const row of rows) {
    assert.ok(['udp-sink', 'tcp-loopback', 'tcp-veth'].includes(row['scenario'] as string), `scenario ${String(row['scenario'])}`);
    assert.ok(['node', 'copy', 'zc', 'zc-pool', 'c-ref'].includes(row['mode'] as string), `mode ${String(row['mode'])}`);
    assert.ok(Number.isInteger(row['size']) && (row['size'] as number) > 0);
    assert.ok(row['workingSet'] === 'hot' || row['workingSet'] === 'cold');
    for (const k of ['gbps', 'gbpsMin', 'gbpsMax', 'sendsPerSec', 'copiedShare', 'errors']) {
      assert.equal(typeof row[k], 'number', `${k} of ${JSON.stringify(row)}`);
      assert.ok((row[k] as number) >= 0, k);
    }
    assert.ok((row['gbpsMin'] as number) <= (row['gbps'] as number) && (row['gbps'] as number) <= (row['gbpsMax'] as number));
    assert.ok((row['copiedShare'] as number) <= 1);
    for (const k of ['cpuSecPerGB', 'vsNode', 'vsCRef']) {
      assert.ok(row[k] === null || typeof row[k] === 'number', `${k} is a number or null`);
    }
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
  return { rows, skipped };
}

describe('uring-zc bench: command line', () => {
  const bad: Array<[string, string[], RegExp]> = [
    ['a size larger than a datagram', ['bench', '--sizes', '1k,70000'], /--sizes/],
    ['a size that is not a number', ['bench', '--sizes', 'big'], /--sizes/],
    ['an unknown mode', ['bench', '--modes', 'node,turbo'], /--modes.*turbo/],
    ['an unknown scenario', ['bench', '--scenario', 'udp-moon'], /--scenario.*udp-moon/],
    ['an unknown flag', ['bench', '--fast'], /--fast/],
    ['a bad duration', ['bench', '--duration', 'soon'], /--duration/],
    ['a bad working set', ['bench', '--working-set', 'warm'], /--working-set/],
    ['a working set smaller than a send', ['bench', '--working-set', 'cold', '--working-set-size', '1k', '--sizes', '16k'], /--working-set-size/],
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

  test('capabilities --json reports the library, memlock, namespaces and kernel', { timeout: 20_000 }, async () => {
    const r = await cli(['capabilities', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['ioUring', 'sendZc', 'reportUsage', 'fixedBuffers', 'namespaces', 'zcPool']) assert.equal(typeof c[k], 'boolean', k);
    assert.equal(typeof c['kernel'], 'string');
    assert.ok(typeof c['memlockLimit'] === 'number' || c['memlockLimit'] === 'unlimited' || c['memlockLimit'] === 'unknown');
  });
});

describe('uring-zc bench: short runs', () => {
  test('tcp-loopback --quick --json completes with rows in the documented shape', { timeout: 40_000 }, async () => {
    const r = await cli(['bench', '--scenario', 'tcp-loopback', '--sizes', '16k', '--modes', 'node,copy,zc,c-ref', '--quick', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { rows } = checkReport(r.stdout);
    assert.deepEqual(rows.map((x) => x['mode']), ['node', 'copy', 'zc', 'c-ref']);
    // The human table went to stderr, since the JSON took stdout.
    assert.match(r.stderr, /tcp-loopback\s+zc\s+16k\s+hot/);
  });

  test('udp-sink and tcp-veth --quick --json complete and remove their namespaces', {
    timeout: 60_000,
    skip: netnsReason ?? false,
  }, async () => {
    const r = await cli(['bench', '--scenario', 'udp-sink,tcp-veth', '--sizes', '16k', '--modes', 'node,copy,zc,zc-pool,c-ref', '--quick', '--json'], 50_000);
    assert.equal(r.code, 0, r.stderr);
    const { rows, skipped } = checkReport(r.stdout);
    for (const sc of ['udp-sink', 'tcp-veth']) {
      const modes = rows.filter((x) => x['scenario'] === sc).map((x) => x['mode']).filter((m) => m !== 'zc-pool');
      assert.deepEqual(modes, ['node', 'copy', 'zc', 'c-ref'], sc);
    }
    // zc-pool is listed and skipped with the reason until the library has registered buffer pools.
    const pool = skipped.find((s) => s['what'] === 'mode zc-pool');
    if (pool !== undefined) assert.match(pool['reason'] as string, /registered buffer pools/);
    assert.deepEqual(namespacesOf(r.pid), []);
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
