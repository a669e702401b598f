/**
 * The C reference sender's socket modes, run for real: `msg-zc` (SO_ZEROCOPY + sendto(MSG_ZEROCOPY),
 * completions from the error queue) and `sync-copy` (plain sendto(2)), over loopback UDP and TCP to
 * receivers in this process (which check every byte they get against the sender's pattern), and
 * into the IFB sink namespace where namespaces can be made. Each run is bounded (--duration-ms
 * plus a kill timer). Checks the JSON line's shape and that notifs/copied are what the path
 * allows: loopback copies every send, the sink copies (almost) none.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { toolMissingReason, toolPath } from '../src/binaries.js';
import type { WorkerResult } from '../bench/worker.js';
import { withSink } from './helpers/env.js';

/** The sender's path ('' where missing: then every test skips with noSender). */
const C_REF_SENDER = toolPath('uzc_ref_sender') ?? '';
const noSender = C_REF_SENDER === '' ? toolMissingReason('uzc_ref_sender') : null;

/** The C sender's JSON line: a bench row's result without what the bench adds (scenario, working set). */
type SenderLine = Omit<WorkerResult, 'scenario' | 'workingSet'>;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Waits for `child` to exit (SIGKILL after `ms`), with its output. */
function collect(child: ChildProcess, ms: number): Promise<Exit> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the sender (optionally through `spawnIn`, e.g. inside a namespace) and parses its line. */
async function runSender(args: readonly string[], spawnIn?: (argv: string[]) => ChildProcess): Promise<SenderLine> {
  const argv = [C_REF_SENDER, ...args];
  const child = spawnIn ? spawnIn(argv) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await collect(child, 20_000);
  assert.equal(r.code, 0, `sender ${args.join(' ')}: exit ${String(r.code)}: ${r.stderr}`);
  const line = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as SenderLine;
  checkShape(line, args);
  return line;
}

/** The fields every mode prints, with sane values. */
function checkShape(l: SenderLine, args: readonly string[]): void {
  const mode = args[args.indexOf('--mode') + 1];
  assert.equal(l.mode, mode);
  assert.equal(l.size, Number(args[args.indexOf('--size') + 1]));
  for (const k of ['sends', 'bytes', 'seconds', 'gbps', 'sendsPerSec', 'copied', 'notifs', 'errors', 'cpuUser', 'cpuSys'] as const) {
    assert.equal(typeof l[k], 'number', k);
    assert.ok(l[k] >= 0, `${k} = ${l[k]}`);
  }
  assert.ok(l.firstError === null || typeof l.firstError === 'string');
  assert.ok(l.sends > 0, 'something was sent');
  assert.ok(l.seconds > 0.1 && l.seconds < 5, `seconds ${l.seconds}`);
  assert.ok(l.copied <= l.sends, 'copied never exceeds sends');
  assert.ok(l.notifs <= l.sends, 'at most one notification per send');
  assert.equal(l.errors, 0, `errors (first: ${String(l.firstError)})`);
}

/** Byte `j` of the sender's pattern: every 8-byte word holds its own offset, little-endian. */
function patternByte(j: number): number {
  const word = j - (j % 8);
  return Math.floor(word / 2 ** (8 * (j % 8))) & 0xff;
}

/** Offset of the first byte of `b` that differs from the pattern at [from, from + b.length), or -1. */
function patternMismatch(b: Buffer, from: number): number {
  for (let i = 0; i < b.length; i++) if (b[i] !== patternByte(from + i)) return i;
  return -1;
}

/** A UDP receiver on 127.0.0.1 that checks up to `keep` datagrams against the pattern. */
async function udpCheckingReceiver(size: number, keep: number): Promise<{ port: number; got: () => number; bad: () => string | null; close: () => Promise<void> }> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  let got = 0;
  let bad: string | null = null;
  s.on('message', (m) => {
    got++;
    if (got > keep || bad !== null) return;
    if (m.length !== size) bad = `datagram of ${m.length} bytes, expected ${size}`;
    else {
      const at = patternMismatch(m, 0);
      if (at >= 0) bad = `datagram ${got}: byte ${at} is ${m[at]}, expected ${patternByte(at)}`;
    }
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return { port: s.address().port, got: () => got, bad: () => bad, close: () => new Promise((r) => s.close(() => r())) };
}

/** A TCP receiver on 127.0.0.1 that checks the whole stream: send after send of the hot buffer. */
async function tcpCheckingReceiver(size: number): Promise<{ port: number; bytes: () => number; bad: () => string | null; closed: Promise<void>; close: () => Promise<void> }> {
  let bytes = 0;
  let bad: string | null = null;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on('data', (d: Buffer) => {
      if (bad === null) {
        // The stream is the size-byte buffer over and over: stream offset k holds pattern byte k % size.
        for (let i = 0; i < d.length; i++) {
          const j = (bytes + i) % size;
          if (d[i] !== patternByte(j)) {
            bad = `stream byte ${bytes + i} is ${d[i]}, expected ${patternByte(j)}`;
            break;
          }
        }
      }
      bytes += d.length;
    });
    c.on('error', () => {});
    c.on('close', () => {
      conns.delete(c);
      resolveClosed();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => bytes,
    bad: () => bad,
    closed,
    close: async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const run = ['--duration-ms', '300', '--warmup-ms', '0', '--qd', '64'];

describe('C sender: the MSG_ZEROCOPY id bookkeeping', { skip: noSender ?? false }, () => {
  test('--self-test: out-of-order and merged ranges across the 32-bit wrap, refused ranges', { timeout: 10_000 }, async () => {
    const r = await collect(spawn(C_REF_SENDER, ['--self-test'], { stdio: ['ignore', 'pipe', 'pipe'] }), 5_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /self-test ok/);
  });

  test('refuses an unknown mode with exit status 2', { timeout: 10_000 }, async () => {
    const r = await collect(spawn(C_REF_SENDER, ['--mode', 'msg-zerocopy', '--size', '1', '--dst', '127.0.0.1', '--port', '9'], { stdio: ['ignore', 'pipe', 'pipe'] }), 5_000);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown mode: msg-zerocopy/);
  });
});

describe('C sender over loopback (every send is copied there)', { skip: noSender ?? false }, () => {
  for (const mode of ['msg-zc', 'sync-copy']) {
    test(`${mode}, UDP: datagrams intact, every send copied`, { timeout: 30_000 }, async () => {
      const size = 16384;
      const rx = await udpCheckingReceiver(size, 200);
      try {
        const l = await runSender(['--mode', mode, '--size', String(size), '--dst', '127.0.0.1', '--port', String(rx.port), ...run]);
        assert.equal(l.bytes, l.sends * size, 'a datagram goes whole');
        // Loopback delivers to a local socket, which copies: every notification says COPIED,
        // and a send copied after ENOBUFS counts as copied too.
        assert.equal(l.copied, l.sends);
        if (mode === 'msg-zc') assert.ok(l.notifs > 0, 'notifications came');
        else assert.equal(l.notifs, 0, 'plain sendto has no notifications');
        // Wait (bounded) until some datagrams arrived: the receiver may drop, but never sees wrong bytes.
        const until = Date.now() + 2000;
        while (rx.got() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
        assert.ok(rx.got() > 0, 'the receiver got datagrams');
        assert.equal(rx.bad(), null);
      } finally {
        await rx.close();
      }
    });

    test(`${mode}, TCP: the stream arrives complete and intact, sends continued after short sends`, { timeout: 30_000 }, async () => {
      // Not a multiple of 8, and large enough for short sends on a non-blocking socket.
      const size = 1_000_003;
      const rx = await tcpCheckingReceiver(size);
      try {
        const l = await runSender(['--mode', mode, '--size', String(size), '--dst', '127.0.0.1', '--port', String(rx.port), '--tcp', ...run]);
        assert.equal(l.bytes, l.sends * size, 'every send finished whole');
        assert.equal(l.copied, l.sends);
        if (mode === 'msg-zc') assert.ok(l.notifs > 0);
        else assert.equal(l.notifs, 0);
        // The sender closed its socket after the run: everything it sent must have arrived.
        await Promise.race([rx.closed, new Promise((r) => setTimeout(r, 5000))]);
        assert.equal(rx.bad(), null);
        assert.equal(rx.bytes(), l.bytes, 'bytes received = bytes sent (no warm-up)');
      } finally {
        await rx.close();
      }
    });
  }
});

describe('C sender into the IFB sink namespace (zero copy stays zero copy there)', { skip: noSender ?? false }, () => {
  test('msg-zc is (almost) never copied, hot and cold; sync-copy always is', { timeout: 60_000 }, async (t) => {
    await withSink(t, null, async (sink) => {
      const spawnIn = (argv: string[]): ChildProcess => sink.spawn(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      const to = ['--dst', sink.destination, '--port', '9'];
      for (const ws of ['0', String(8 << 20)]) {
        const z = await runSender(['--mode', 'msg-zc', '--size', '60000', ...to, ...run, '--working-set', ws], spawnIn);
        assert.ok(z.copied <= z.sends * 0.1, `msg-zc into the sink (working set ${ws}): ${z.copied} of ${z.sends} copied`);
        // One notification per send, unless a send had to be copied after ENOBUFS.
        assert.ok(z.notifs >= z.sends * 0.9, `notifs ${z.notifs} of ${z.sends}`);
      }
      const c = await runSender(['--mode', 'sync-copy', '--size', '60000', ...to, ...run], spawnIn);
      assert.equal(c.copied, c.sends);
      assert.equal(c.notifs, 0);
    });
  });
});
