/**
 * The batches of the backends without io_uring (src/syscall.ts runBatch, native/syscall.c
 * sqeSendBatch): the requests queued in one tick are performed by one call into C, consecutive
 * sends on one datagram socket as one sendmmsg(2). These tests hold its edges: a batch refused
 * part way (sendmmsg reports only how many went; the rest are tried again, in order, the refused
 * one alone, which gives its errno), a batch spanning several sockets, more than one batch per
 * tick, and a callback that destroys the socket while the rest of its batch waits to go again.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { adopt, capabilities, type ZeroCopySocket } from '../src/index.js';
import { ZcWindow } from '../src/syscall.js';
import { within } from './helpers/env.js';
import { collectChild } from './helpers/pool-helpers.js';
import { boundUdp, closeDgram, udpReceiver } from './helpers/net.js';

const KINDS = ['msg_zerocopy', 'copy'] as const;
const mzcReason = capabilities().backends.msg_zerocopy.ok ? null : `MSG_ZEROCOPY is not available here: ${capabilities().backends.msg_zerocopy.reason}`;
const reason = (kind: string): string | false => (kind === 'msg_zerocopy' ? mzcReason ?? false : false);

/** A destination every sendmsg refuses at once (a broadcast address without SO_BROADCAST). */
const REFUSED = { address: '255.255.255.255', port: 9 };

interface Outcome {
  err: (Error & { code?: string }) | null;
  bytes: number;
  calls: number;
}

/** Sends `bufs` (each to its destination) in one tick with callbacks; resolves with each send's outcome once all settled. */
function sendAll(zs: ZeroCopySocket, items: { buf: Buffer; to: { address: string; port: number } }[],
  onEach?: (i: number, o: Outcome) => void): Promise<Outcome[]> {
  const out: Outcome[] = items.map(() => ({ err: null, bytes: -1, calls: 0 }));
  let left = items.length;
  return new Promise((resolve) => {
    items.forEach((it, i) => {
      zs.send(it.buf, it.to, (err, bytes) => {
        const o = out[i]!;
        o.calls++;
        o.err = err;
        o.bytes = bytes;
        onEach?.(i, o);
        if (--left === 0) setImmediate(() => resolve(out));
      });
    });
  });
}

function payload(i: number, len = 1200): Buffer {
  const b = Buffer.alloc(len, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

for (const kind of KINDS) {
  test(`${kind}: a batch refused part way: the sends before and after the refused one go, in order; it fails with its own errno; each settles once`, { timeout: 20_000, skip: reason(kind) }, async () => {
    const rx = await udpReceiver();
    const tx = await boundUdp();
    const zs = adopt(tx, { backend: kind, receive: false, zeroCopyThreshold: 0, autoDowngrade: false });
    try {
      // What that destination gives alone.
      const [alone] = await sendAll(zs, [{ buf: payload(999), to: REFUSED }]);
      assert.ok(alone!.err !== null, 'the refused destination is refused');
      const code = alone!.err.code;
      const to = { address: rx.host, port: rx.port };
      // 40 sends in one tick, one batch; #3, #17 and #18 refused (two in a row), #39 (the last) too.
      const bad = new Set([3, 17, 18, 39]);
      const items = Array.from({ length: 40 }, (_, i) => ({ buf: payload(i), to: bad.has(i) ? REFUSED : to }));
      const out = await within(sendAll(zs, items), 10_000, 'the batch');
      for (const [i, o] of out.entries()) {
        assert.equal(o.calls, 1, `send ${i} settles once`);
        if (bad.has(i)) {
          assert.equal(o.err?.code, code, `send ${i} fails as alone`);
        } else {
          assert.equal(o.err, null, `send ${i}`);
          assert.equal(o.bytes, 1200);
        }
      }
      await rx.waitFor(36, 5_000);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(rx.messages.map((m) => m.data.readUInt32BE(0)), items.map((_, i) => i).filter((i) => !bad.has(i)), 'in order, each once');
      for (const m of rx.messages) assert.ok(m.data.equals(payload(m.data.readUInt32BE(0))), 'intact');
      const s = zs.stats();
      assert.equal(s.inFlight, 0);
      assert.equal(s.errors, 5);
      assert.equal(s.sends, 36);
      if (kind === 'msg_zerocopy') assert.equal(s.notifications, 36, 'one notification per zero-copy send that went');
    } finally {
      await zs.close();
      await closeDgram(tx);
      await closeDgram(rx.socket);
    }
  });

  test(`${kind}: one tick of 300 sends over two sockets, interleaved (several batches, runs cut at each change of socket): every datagram once, in order per socket`, { timeout: 20_000, skip: reason(kind) }, async () => {
    const rxA = await udpReceiver();
    const rxB = await udpReceiver();
    const txA = await boundUdp();
    const txB = await boundUdp();
    const zsA = adopt(txA, { backend: kind, receive: false, zeroCopyThreshold: 0, autoDowngrade: false });
    const zsB = adopt(txB, { backend: kind, receive: false, zeroCopyThreshold: 0, autoDowngrade: false });
    try {
      const toA = { address: rxA.host, port: rxA.port };
      const toB = { address: rxB.host, port: rxB.port };
      const done: Promise<unknown>[] = [];
      const wantA: number[] = [];
      const wantB: number[] = [];
      for (let i = 0; i < 300; i++) {
        // Runs of 1..7 sends per socket.
        const onA = Math.floor(i / 7) % 2 === 0 || i % 5 === 0;
        (onA ? wantA : wantB).push(i);
        done.push((onA ? zsA : zsB).send(payload(i, 600), onA ? toA : toB));
      }
      const res = (await within(Promise.all(done), 10_000, 'the sends')) as { bytes: number }[];
      assert.ok(res.every((r) => r.bytes === 600));
      await rxA.waitFor(wantA.length, 5_000);
      await rxB.waitFor(wantB.length, 5_000);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(rxA.messages.map((m) => m.data.readUInt32BE(0)), wantA);
      assert.deepEqual(rxB.messages.map((m) => m.data.readUInt32BE(0)), wantB);
      assert.equal(zsA.stats().inFlight + zsB.stats().inFlight, 0);
    } finally {
      await zsA.close();
      await zsB.close();
      for (const s of [txA, txB, rxA.socket, rxB.socket]) await closeDgram(s);
    }
  });
}

test('copy: a callback that destroys its socket while the rest of a refused batch waits to go again: those sends fail (none goes after destroy), each settles once', { timeout: 20_000 }, async () => {
  const rx = await udpReceiver();
  const tx = await boundUdp();
  // copy: a send settles at its result, so a callback runs while its batch is being reported.
  const zs = adopt(tx, { backend: 'copy', receive: false });
  try {
    const to = { address: rx.host, port: rx.port };
    const items = Array.from({ length: 12 }, (_, i) => ({ buf: payload(i), to: i === 4 ? REFUSED : to }));
    const out = await within(sendAll(zs, items, (i) => {
      if (i === 1) void zs.destroy();
    }), 10_000, 'the batch');
    for (const [i, o] of out.entries()) assert.equal(o.calls, 1, `send ${i} settles once`);
    // 0..3 went before the refusal (one sendmmsg), 4 was refused; 5..11 were queued again and
    // the destroy in 1's callback dropped them.
    for (let i = 0; i < 4; i++) assert.equal(out[i]!.err, null, `send ${i}`);
    assert.ok(out[4]!.err !== null, 'send 4 refused');
    for (let i = 5; i < 12; i++) assert.ok(out[i]!.err !== null, `send ${i} fails: its socket was destroyed first`);
    await rx.waitFor(4, 5_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(rx.messages.map((m) => m.data.readUInt32BE(0)), [0, 1, 2, 3]);
  } finally {
    await zs.close().catch(() => {});
    await closeDgram(tx);
    await closeDgram(rx.socket);
  }
});

test('the window of zero-copy sends awaiting completion: numbers across the 32-bit wrap, completions out of order, ranges reaching outside it, growth past 64', () => {
  const op = (n: number) => ({ sock: {}, n, prep() {}, complete: () => true, abandon() {} });
  const w = new ZcWindow(0xffffffff - 99);
  const ops = Array.from({ length: 300 }, (_, i) => op(i));
  for (const o of ops) w.add(o);
  assert.equal(w.size, 300);
  assert.equal(w.next, 200, 'the counter wrapped');
  // Numbers outside [low, next) are not ours.
  assert.equal(w.take(200), undefined);
  assert.equal(w.take(0xffffffff - 100), undefined);
  assert.equal(w.clip(200, 5), 0);
  assert.equal(w.clip(195, 10), 5, 'a range reaching past next is cut there');
  // Out of order: the middle first (across the wrap), then the oldest.
  // Numbers 0xfffffff5..9 are sends 89..109.
  for (let id = 0xffffffff - 10, k = 0; k < 21; id = (id + 1) >>> 0, k++) assert.equal(w.take(id), ops[89 + k], `number ${id}`);
  assert.equal(w.take(0xffffffff - 10), undefined, 'completed once only');
  assert.equal(w.low, 0xffffffff - 99, 'low stays at the oldest not completed');
  for (let k = 0; k < 89; k++) assert.equal(w.take((0xffffffff - 99 + k) >>> 0), ops[k]);
  assert.equal(w.low, 10, 'low moved past the completed ones, across the wrap');
  assert.equal(w.size, 190);
  for (let id = 10; id < 200; id++) assert.equal(w.take(id), ops[id + 100]);
  assert.equal(w.size, 0);
  assert.equal(w.low, w.next);
});

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'batch-child.js');
const straceReason = spawnSync('strace', ['-V'], { encoding: 'utf8' }).status === 0 ? false : 'strace is not installed (its fault injection stands in for a seccomp profile that refuses sendmmsg)';

for (const kind of KINDS) {
  for (const errno of ['ENOSYS', 'EPERM']) {
    test(`${kind}: where sendmmsg(2) is refused (${errno}, as a seccomp profile allowing only sendto/sendmsg would), every datagram goes alone: all arrive once, in order, none fails`, { timeout: 30_000, skip: reason(kind) || straceReason }, async () => {
      const rx = await udpReceiver();
      try {
        const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=sendmmsg', '-e', `inject=sendmmsg:error=${errno}`,
          process.execPath, CHILD, kind, String(rx.port), '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const r = await collectChild(child, 25_000);
        assert.equal(r.code, 0, r.err);
        const out = JSON.parse(r.out.trim().split('\n').pop()!) as { sent: number; errors: number; codes: string[]; backend: string };
        assert.equal(out.backend, kind);
        assert.deepEqual({ sent: out.sent, errors: out.errors, codes: out.codes }, { sent: 80, errors: 0, codes: [] });
        await rx.waitFor(80, 5_000);
        assert.deepEqual(rx.messages.map((m) => m.data.readUInt32BE(0)), Array.from({ length: 80 }, (_, i) => i));
      } finally {
        await closeDgram(rx.socket);
      }
    });
  }
}
