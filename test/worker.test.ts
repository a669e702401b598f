/**
 * Worker teardown with zero-copy sends in flight (issue #8, item 3): a worker that is terminated,
 * or exits by itself, while the kernel still reads its Buffers must put nothing but its own
 * stream on the wire, and must leave no descriptor behind (its ring fd and the duplicated socket
 * fds). The peer does not read at first, so the worker's sends are stuck in the kernel when it
 * dies; a second worker then allocates and fills memory (the dead worker's freed memory is
 * reused there first) while the peer reads the rest. Once per backend (the teardown bound's
 * warning is io_uring's: its requests cannot be called back; the others' sendmsg calls returned).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { withSink, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { countFds, listFds, tcpReceiver } from './helpers/net.js';
import { collectChild } from './helpers/pool-helpers.js';
import { PatternVerifier } from './helpers/stream-pattern.js';
import { BACKENDS, backendUnavailableReason, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
const ROUNDS = 3;
const MiB = 1 << 20;

interface Round {
  stalled: { issued: number; settled: number; inFlight: number };
  received: string;
  mismatchAt: number;
  /** How the peer saw the connection end: 'eof', an error code, or 'hang' after the bound. */
  end: string;
  fdsLeft: number;
  fds: string[];
}

async function workerExit(w: Worker): Promise<number> {
  return new Promise((resolve) => w.once('exit', resolve));
}

/** One worker streaming 64 MiB in 1 MiB zero-copy sends, stopped by `how` mid-stream. */
async function round(backend: Backend, how: 'terminate' | 'exit'): Promise<Round> {
  const verifier = new PatternVerifier();
  const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
  try {
    const baseline = countFds();
    const sender = new Worker(new URL('./helpers/teardown-sender.js', import.meta.url), {
      workerData: { port: rx.port, total: 64 * MiB, chunk: MiB, window: 16, stallMs: 300, exit: how === 'exit', backend },
    });
    sender.on('error', () => {});
    const exited = workerExit(sender);
    const peer = await within(rx.peer, 10_000, 'the worker connecting');
    const ended = new Promise<string>((resolve) => {
      peer.once('end', () => resolve('eof'));
      peer.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    const stalled = await within(new Promise<Round['stalled']>((r) => sender.once('message', r)), 30_000, 'the stream stalling');
    if (how === 'terminate') await within(sender.terminate(), 30_000, 'worker.terminate()');
    await within(exited, 30_000, 'the worker exiting');

    // Reuse the dead worker's memory while the peer reads what the kernel still holds.
    const churn = new Worker(new URL('./helpers/churn.js', import.meta.url), {
      workerData: { ms: 1500, maxBytes: 4096 * MiB, liveBytes: 128 * MiB },
    });
    const churned = workerExit(churn);
    await new Promise((r) => setTimeout(r, 300));
    rx.resume();
    const end = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('hang'), 10_000).unref())]);
    await within(churned, 30_000, 'the churn worker');

    // The peer's own socket goes; then this process must be back at its descriptor count.
    await closePeer(peer);
    let fdsLeft = countFds() - baseline;
    for (let i = 0; i < 100 && fdsLeft > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      fdsLeft = countFds() - baseline;
    }
    return { stalled, received: verifier.describe(), mismatchAt: verifier.mismatchAt, end, fdsLeft, fds: fdsLeft > 0 ? listFds() : [] };
  } finally {
    await rx.close();
  }
}

async function closePeer(s: net.Socket): Promise<void> {
  if (s.closed) return;
  const closed = new Promise((r) => s.once('close', r));
  s.destroy();
  await closed;
}

for (const backend of BACKENDS) for (const how of ['terminate', 'exit'] as const) {
  const name = `${backend}: ` + (how === 'terminate'
    ? 'worker.terminate() with zero-copy sends in flight: the peer gets only a prefix of the stream, the connection ends, no descriptor is left'
    : 'process.exit() in a worker with zero-copy sends in flight: the peer gets only a prefix of the stream, the connection ends, no descriptor is left');
  test(name, { timeout: 240_000, skip: backendUnavailableReason(backend, skipReason) ?? false }, async () => {
    // Every round runs before anything is asserted, so that a failure shows all of them.
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await round(backend, how);
      console.log(`round ${i + 1} (${how}): ${r.stalled.inFlight} sends in flight; the peer received ${r.received}; end: ${r.end}; fds left: ${r.fdsLeft}`);
      rounds.push(r);
    }
    rounds.forEach((r, i) => {
      const what = `round ${i + 1} (${how}; ${r.stalled.inFlight} sends in flight): the peer received ${r.received}; end: ${r.end}`;
      assert.equal(r.mismatchAt, -1, `foreign bytes on the wire: ${what}`);
      assert.ok(r.stalled.inFlight > 0, `no send was in flight when the worker died: ${what}`);
      assert.notEqual(r.end, 'hang', `the peer saw no end of the connection within 10 s: ${what}`);
      assert.equal(r.fdsLeft, 0, `${r.fdsLeft} descriptors left after the worker exited (${what}):\n${r.fds.join('\n')}`);
    });
  });
}

test('past the teardown bound a terminated worker keeps waiting for its notifications (one warning line), then closes everything', { timeout: 120_000 }, async (t) => {
  await withSink(t, skipReason, async (sink) => {
    // 1 Mbit/s: the 64 datagrams of 16 KiB the worker has in flight drain over ~1-2 s.
    execFileSync('tc', ['-n', sink.name, 'qdisc', 'add', 'dev', 'sink0', 'root', 'tbf', 'rate', '1mbit', 'burst', '64kb', 'latency', '30s']);
    const script = fileURLToPath(new URL('./helpers/teardown-bound.js', import.meta.url));
    const child = sink.spawn([process.execPath, script, sink.destination], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, URING_ZC_TEARDOWN_TIMEOUT_MS: '300' },
    });
    const r = await collectChild(child, 60_000);
    assert.equal(r.signal, null, `the child died by ${r.signal} (stderr: ${r.err})`);
    assert.equal(r.code, 0, `exit code ${r.code}: ${r.err}`);
    const res = JSON.parse(r.out.trim()) as { stalled: { inFlight: number }; terminateMs: number; fdsLeft: number; extra: string[] };
    console.log(`in flight ${res.stalled.inFlight}, terminate() took ${res.terminateMs} ms; stderr: ${r.err.trim()}`);
    assert.ok(res.stalled.inFlight > 0, 'sends were in flight when the worker was terminated');
    const warnings = r.err.split('\n').filter((l) => l.includes('still in flight 300 ms into thread teardown'));
    assert.equal(warnings.length, 1, `one warning line expected, stderr: ${r.err}`);
    assert.ok(res.terminateMs >= 300, `terminate() returned after ${res.terminateMs} ms, before the notifications could come`);
    assert.equal(res.fdsLeft, 0, `the worker's ring fd and duplicated socket are closed once its notifications came; new: ${res.extra.join(', ')}`);
  });
});
