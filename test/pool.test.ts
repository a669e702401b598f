/**
 * Registered buffer pools: recycling under load (TCP loopback, and a veth pair between two
 * namespaces), a buffer stays out of its pool until its send settled after the notification,
 * several pools on one ring, a pool buffer on another ring's socket, close() with sends in flight,
 * ring close, and every misuse with its code, each leaving a send in flight on the same ring intact.
 * Once per backend: on msg_zerocopy and copy a pool (still made and registered by a Ring) is plain
 * memory to the send (stats().fixed 0), lent all the same and back in its pool only at the settle;
 * copy has no notifications. The tests of the pool alone (no socket) run once.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type net from 'node:net';
import { baseAddress } from '../src/buffers.js';
import { createBufferPool, Ring, type BufferPool, type SendResult, type ZeroCopySocket } from '../src/index.js';
import { createVethPair, leftoverNamespaces, netnsUnavailableReason, type VethPair } from '../bench/netns.js';
import { Prng } from './helpers/data.js';
import { codeOf, turns, poolUnavailableReason, throwsCode, fileRing, type LockedNeed } from './helpers/env.js';
import { boundUdp, closeDgram, connectTcp, destroySocket, StreamVerifier, tcpAndUdp, tcpReceiver, udpReceiver, type TcpReceiver } from './helpers/net.js';
import { BlockVerifier, collectChild, firstJsonLine, lastJson, plan, sendFromPool, type PoolRunReport } from './helpers/pool-helpers.js';
import { BACKENDS, adopterFor, assertStreamNotifications, childEnv, gatedOn, ioUringOnly, notifies, poolOn, registeredOn, type Backend } from './helpers/backends.js';

const skipReason = poolUnavailableReason();
/** `need`: what a test locks besides the file's ring (its pools above all). */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => {
  // Every test here needs the file's Ring for its pools, whatever sends them.
  const o = gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });
  return o;
};

/** The registered-buffer sends `n` pool sends make on `backend` (io_uring's only). */
const fixedOn = (backend: Backend, n: number): number => (backend === 'io_uring' ? n : 0);
/** The notifications `n` zero-copy sends get on `backend` (none on copy). */
const notifsOn = (backend: Backend, n: number): number => (notifies(backend) ? n : 0);
/** For the tests of a pool alone: they run once, under io_uring. */
const POOL_ONLY = 'no socket in this test: the pool alone, the same whatever backend sends its buffers (runs once, under io_uring)';

const ring = fileRing(skipReason);

/** Asserts that `fn` throws synchronously with `code`. */

async function rejectsCode(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal(codeOf(e), code, `${what}: code (${String(e)})`);
    return true;
  }, `${what} must reject with ${code}`);
}

/** A settled-or-not flag for a promise (never throws). */
function track<T>(p: Promise<T>): { settled: boolean; promise: Promise<T> } {
  const t = { settled: false, promise: p };
  p.then(
    () => (t.settled = true),
    () => (t.settled = true),
  );
  return t;
}

/** A paused TCP receiver (reads nothing until resume()) that verifies what it gets, and an adopted client. */
async function pausedPeer(adoptOn: (s: net.Socket) => ZeroCopySocket): Promise<{ rx: TcpReceiver; verifier: StreamVerifier; client: net.Socket; zs: ZeroCopySocket; dispose(): Promise<void> }> {
  const verifier = new StreamVerifier();
  const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
  const client = await connectTcp(rx.port);
  const zs = adoptOn(client);
  return {
    rx,
    verifier,
    client,
    zs,
    dispose: async () => {
      rx.resume(); // a failed test must not leave sends stuck behind a paused peer
      await zs.close();
      await destroySocket(client);
      await rx.close();
    },
  };
}

/**
 * A copying send far larger than a paused receiver's window plus the send buffer: the stream's
 * one request stays in the kernel, and sends after it wait their turn (their buffers lent).
 */
const FILLER = 16 << 20;

function checkRunReport(report: PoolRunReport, blocks: number, count: number): void {
  assert.deepEqual(report.bad, [], 'every send resolved with its whole length');
  assert.equal(report.sends, blocks);
  assert.equal(report.maxInFlight, count, 'every pool buffer was in flight at once');
  assert.ok(report.waits > 0, 'acquireAsync() had to wait for buffers to come back');
}

for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend, ring);

  test(`${backend}: recycling under load: 64 MiB from a 32 x 64 KiB pool over TCP loopback, each buffer refilled on return, every byte verified in order`, opts(backend, 60_000, { pools: [32 * 65536] }), async () => {
    const seed = 0x900d;
    const bufferSize = 64 << 10;
    const count = 32;
    const blocks = plan(seed, bufferSize, 64 << 20);
    const verifier = new BlockVerifier(seed, blocks);
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    const pool = poolOn(backend, ring, { bufferSize, count });
    try {
      assert.deepEqual(pool.stats(), { size: count, free: count, inFlight: 0, registeredBytes: registeredOn(backend, bufferSize * count) });
      const report = await sendFromPool(zs, pool, seed, blocks);
      await rx.waitForBytes(verifier.expected, 30_000);
      checkRunReport(report, blocks.length, count);
      assert.ok(verifier.expected >= 64 << 20);
      assert.equal(verifier.mismatchAt, -1, `received stream differs from the sent one at byte ${verifier.mismatchAt}`);
      assert.ok(verifier.complete, `${verifier.verified} of ${verifier.expected} bytes verified, ${verifier.received} received`);
      assert.equal(verifier.digest(), report.sha256);
      const s = zs.stats();
      assert.equal(s.sends, blocks.length);
      assert.equal(s.bytes, verifier.expected);
      assert.equal(s.fixed, fixedOn(backend, blocks.length), 'every send used the registered buffer (io_uring)');
      assert.equal(s.errors, 0);
      assert.equal(s.inFlight, 0);
      assertStreamNotifications(backend, s.notifications, blocks.length, 'one notification per zero-copy send');
      assert.deepEqual(pool.stats(), { size: count, free: count, inFlight: 0, registeredBytes: registeredOn(backend, bufferSize * count) });
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
      await pool.close();
    }
  });

  let pair: VethPair | undefined;
  after(() => {
    pair?.dispose();
    pair = undefined;
  });

  test(`${backend}: recycling under load over a veth pair: a sender in namespace a sends 64 MiB from a pool to a verifying receiver in namespace b`, opts(backend, 60_000, { rings: [256], pools: [32 * 65536] }), async (t) => {
    const nsReason = netnsUnavailableReason();
    if (nsReason !== null) {
      t.skip(nsReason);
      return;
    }
    const seed = 0xbeef;
    const bufferSize = 64 << 10;
    const count = 32;
    const minBytes = 64 << 20;
    pair = createVethPair();
    try {
      const cwd = process.cwd();
      const receiver = pair.spawnIn('b', [process.execPath, 'dist/test/helpers/pool-receiver.js', pair.addressB, String(seed), String(bufferSize), String(minBytes)], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const receiverDone = collectChild(receiver, 50_000);
      const { port } = await firstJsonLine<{ port: number }>(receiver);
      const sender = pair.spawnIn('a', [
        process.execPath, 'dist/test/helpers/pool-sender.js', pair.addressB, String(port), String(seed), String(bufferSize), String(count), String(minBytes),
      ], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(backend) });
      const [s, r] = await Promise.all([collectChild(sender, 50_000), receiverDone]);
      assert.equal(s.code, 0, `pool-sender exited with ${s.code} ${s.signal ?? ''}: ${s.err}`);
      assert.equal(r.code, 0, `pool-receiver exited with ${r.code} ${r.signal ?? ''}: ${r.err}`);
      const sent = lastJson<{ report: PoolRunReport; stats: ReturnType<ZeroCopySocket['stats']>; poolStats: ReturnType<BufferPool['stats']> }>(s.out);
      const got = lastJson<{ expected: number; received: number; verified: number; mismatchAt: number; complete: boolean; sha256: string }>(r.out);
      const blocks = plan(seed, bufferSize, minBytes).length;
      checkRunReport(sent.report, blocks, count);
      assert.equal(got.mismatchAt, -1, `received stream differs from the sent one at byte ${got.mismatchAt}`);
      assert.ok(got.complete, `${got.verified} of ${got.expected} bytes verified, ${got.received} received`);
      assert.ok(got.expected >= minBytes);
      assert.equal(got.sha256, sent.report.sha256, 'the receiver hashed what the sender wrote');
      assert.equal(sent.stats.sends, blocks);
      assert.equal(sent.stats.bytes, got.expected);
      assert.equal(sent.stats.fixed, fixedOn(backend, blocks));
      assert.equal(sent.stats.errors, 0);
      assert.deepEqual(sent.poolStats, { size: count, free: count, inFlight: 0, registeredBytes: registeredOn(backend, bufferSize * count) });
    } finally {
      pair.dispose();
      pair = undefined;
    }
    assert.deepEqual(leftoverNamespaces(), []);
  });

  test(`${backend}: a sent pool buffer is out of the pool until its send settles, after its notification (UDP)`, opts(backend, 20_000, { pools: [2 * 4096] }), async () => {
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    const pool = poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    try {
      const buf = pool.acquire()!;
      assert.deepEqual(pool.stats(), { size: 2, free: 1, inFlight: 0, registeredBytes: registeredOn(backend, 8192) }, 'acquired: held, not in flight');
      new Prng(1).fill(buf);
      const expected = Buffer.from(buf);
      const before = zs.stats().notifications;
      let atSettle: { free: number; inFlight: number; notifications: number } | undefined;
      const p = zs.send(buf, { address: '127.0.0.1', port: rx.port }).then((r) => {
        atSettle = { free: pool.stats().free, inFlight: pool.stats().inFlight, notifications: zs.stats().notifications };
        return r;
      });
      assert.deepEqual(pool.stats(), { size: 2, free: 1, inFlight: 1, registeredBytes: registeredOn(backend, 8192) }, 'sent: in flight');
      throwsCode(() => pool.release(buf), 'ERR_URING_ZC_INVALID_STATE', 'release() of a buffer in flight');
      const r = await p;
      assert.deepEqual(r, { bytes: 4096, zeroCopy: false }, 'loopback copies');
      assert.deepEqual(atSettle, { free: 2, inFlight: 0, notifications: before + notifsOn(backend, 1) }, 'back in the pool when the send settles, and its notification (none on copy) came before');
      await rx.waitFor(1, 5_000);
      assert.ok(rx.messages[0]!.data.equals(expected), 'the datagram carries the buffer');
      assert.equal(zs.stats().fixed, fixedOn(backend, 1));
      throwsCode(() => pool.release(buf), 'ERR_URING_ZC_INVALID_STATE', 'release() of a buffer that came back');
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
      await pool.close();
    }
  });

  test(`${backend}: while every pool buffer is in flight, acquire() returns null and acquireAsync() waits until a send settles (TCP, paused peer)`, opts(backend, 30_000, { pools: [4 * 65536] }), async () => {
    const peer = await pausedPeer(adoptOn);
    const pool = poolOn(backend, ring, { bufferSize: 65536, count: 4 });
    try {
      const prng = new Prng(2);
      const filler = prng.bytes(FILLER);
      peer.verifier.expect(filler);
      const fill = track(peer.zs.send(filler, { zeroCopy: false }));
      const sends: Promise<SendResult>[] = [];
      for (let i = 0; i < 4; i++) {
        const b = pool.acquire()!;
        prng.fill(b);
        peer.verifier.expect(Buffer.from(b));
        sends.push(peer.zs.send(b));
      }
      assert.deepEqual(pool.stats(), { size: 4, free: 0, inFlight: 4, registeredBytes: registeredOn(backend, 4 * 65536) });
      assert.equal(pool.acquire(), null);
      const waiter = track(pool.acquireAsync());
      await turns(20);
      await sleep(50);
      assert.equal(fill.settled, false, 'the filler is still in the kernel (peer paused)');
      assert.equal(waiter.settled, false, 'no buffer came back while the sends are in flight');
      assert.deepEqual(pool.stats(), { size: 4, free: 0, inFlight: 4, registeredBytes: registeredOn(backend, 4 * 65536) });
      assert.equal(pool.acquire(), null);
      peer.rx.resume();
      const got = await waiter.promise;
      if (notifies(backend)) assert.ok(peer.zs.stats().notifications >= 1, 'a notification came before the first buffer returned');
      pool.release(got);
      await fill.promise;
      const results = await Promise.all(sends);
      for (const r of results) assert.equal(r.bytes, 65536);
      await peer.rx.waitForBytes(peer.verifier.expected, 20_000);
      assert.ok(peer.verifier.complete, `stream differs at byte ${peer.verifier.mismatchAt}`);
      assert.deepEqual(pool.stats(), { size: 4, free: 4, inFlight: 0, registeredBytes: registeredOn(backend, 4 * 65536) });
      const s = peer.zs.stats();
      assert.equal(s.fixed, fixedOn(backend, 4));
      assertStreamNotifications(backend, s.notifications, 4, 'the four pool sends had one notification each, the copying filler none');
    } finally {
      await peer.dispose();
      await pool.close();
    }
  });

  test(`${backend}: several pools: ${backend === 'io_uring' ? "on one ring, each registers its own region, sends from all are fixed, and a closed pool's slot is reused" : 'of plain memory (createBufferPool), sends from all of them interleaved arrive intact, a pool made after one closed sends too'}`, opts(backend, 30_000, { pools: [8 * 4096, 4 * 65536, 2 << 20, 4 * 16384] }), async () => {
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    const a = poolOn(backend, ring, { bufferSize: 4096, count: 8 });
    const b = poolOn(backend, ring, { bufferSize: 65536, count: 4 });
    const c = poolOn(backend, ring, { bufferSize: 1 << 20, count: 2 });
    let d: BufferPool | undefined;
    try {
      assert.equal(a.stats().registeredBytes, registeredOn(backend, 4096 * 8));
      assert.equal(b.stats().registeredBytes, registeredOn(backend, 65536 * 4));
      assert.equal(c.stats().registeredBytes, registeredOn(backend, 2 << 20));
      const prng = new Prng(3);
      const held: Buffer[][] = [a, b, c].map((p) => {
        const out: Buffer[] = [];
        for (let x = p.acquire(); x !== null; x = p.acquire()) out.push(x);
        return out;
      });
      const sends: Promise<SendResult>[] = [];
      // Interleave the pools: a0 b0 c0 a1 b1 c1 a2 b2 a3 b3 a4 ...
      for (let i = 0; i < 8; i++) {
        for (const list of held) {
          const buf = list[i];
          if (buf === undefined) continue;
          // Every other one a slice (within its buffer) at an odd offset.
          const view = i % 2 === 0 ? buf : buf.subarray(7, buf.length - 3);
          prng.fill(view);
          verifier.expect(Buffer.from(view));
          sends.push(zs.send(view));
        }
      }
      assert.equal(sends.length, 14);
      await Promise.all(sends);
      for (const p of [a, b, c]) assert.deepEqual({ free: p.stats().free, inFlight: p.stats().inFlight }, { free: p.count, inFlight: 0 });
      assert.equal(zs.stats().fixed, fixedOn(backend, 14));

      await b.close();
      assert.equal(b.closed, true);
      assert.equal(b.stats().registeredBytes, 0);
      throwsCode(() => b.acquire(), 'ERR_URING_ZC_POOL_CLOSED', 'acquire() on a closed pool');
      d = poolOn(backend, ring, { bufferSize: 16384, count: 4 });
      const more: Promise<SendResult>[] = [];
      for (const p of [a, d, c]) {
        const buf = p.acquire()!;
        prng.fill(buf);
        verifier.expect(Buffer.from(buf));
        more.push(zs.send(buf));
      }
      await Promise.all(more);
      await rx.waitForBytes(verifier.expected, 20_000);
      assert.ok(verifier.complete, `stream differs at byte ${verifier.mismatchAt}`);
      assert.equal(zs.stats().fixed, fixedOn(backend, 17), 'the pools left open and the new one still send registered (io_uring)');
      assert.equal(zs.stats().errors, 0);
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
      await Promise.all([a.close(), b.close(), c.close(), d?.close()]);
    }
  });

  test(`${backend}: a pool buffer sent on a socket of another ring goes unregistered and still returns to its pool at the notification`, ioUringOnly(backend, 'another Ring\'s socket is io_uring\'s; on this backend every pool send is unregistered, which the other tests here check (fixed 0)', opts(backend, 20_000, { rings: [256], pools: [2 * 65536], zeroCopy: [[2, 65536]] })), async () => {
    const other = new Ring();
    const pool = poolOn(backend, ring, { bufferSize: 65536, count: 2 });
    const verifier = new StreamVerifier();
    const both = await tcpAndUdp((s) => other.adopt(s), { onData: (c) => verifier.push(c) });
    const { trx, tzs, urx, uzs } = both;
    try {
      const prng = new Prng(4);
      const u = pool.acquire()!;
      const view = u.subarray(100, 1600);
      prng.fill(view);
      const udpExpected = Buffer.from(view);
      const pu = uzs.send(view, { address: '127.0.0.1', port: urx.port });
      assert.equal(pool.stats().inFlight, 1);
      assert.deepEqual(await pu, { bytes: 1500, zeroCopy: false });
      assert.deepEqual(pool.stats().free, 2, 'back in its pool');
      await urx.waitFor(1, 5_000);
      assert.ok(urx.messages[0]!.data.equals(udpExpected));
      assert.equal(uzs.stats().fixed, 0, 'not a registered-buffer send on the other ring');
      assert.equal(uzs.stats().notifications, 1, 'still zero copy (pool buffers always are): one notification');

      const t = pool.acquire()!;
      prng.fill(t);
      verifier.expect(Buffer.from(t));
      const pt = tzs.send(t);
      assert.equal(pool.stats().inFlight, 1);
      assert.equal((await pt).bytes, 65536);
      await trx.waitForBytes(verifier.expected, 10_000);
      assert.ok(verifier.complete, `stream differs at byte ${verifier.mismatchAt}`);
      assert.equal(tzs.stats().fixed, 0);
      assert.equal(tzs.stats().notifications, 1);
      assert.deepEqual(pool.stats(), { size: 2, free: 2, inFlight: 0, registeredBytes: registeredOn(backend, 2 * 65536) });
    } finally {
      await both.close();
      await other.close();
      await pool.close();
    }
  });

  test(`${backend}: close() with sends in flight: acquire throws, waiters reject, and it resolves only once no send is in flight, then unregisters`, opts(backend, 30_000, { pools: [4 * 65536] }), async () => {
    const peer = await pausedPeer(adoptOn);
    const pool = poolOn(backend, ring, { bufferSize: 65536, count: 4 });
    try {
      const prng = new Prng(5);
      const filler = prng.bytes(FILLER);
      peer.verifier.expect(filler);
      const fill = track(peer.zs.send(filler, { zeroCopy: false }));
      const order: string[] = [];
      const sends: Promise<SendResult>[] = [];
      for (let i = 0; i < 3; i++) {
        const b = pool.acquire()!;
        prng.fill(b);
        peer.verifier.expect(Buffer.from(b));
        sends.push(peer.zs.send(b).then((r) => (order.push(`send ${i}`), r)));
      }
      const held = pool.acquire()!;
      const waiter = pool.acquireAsync();
      let atClose: unknown;
      const closing = track(pool.close().then(() => {
        order.push('close');
        atClose = { pool: pool.stats().inFlight, socket: peer.zs.stats().inFlight };
      }));
      await rejectsCode(waiter, 'ERR_URING_ZC_POOL_CLOSED', 'a pending acquireAsync() at close');
      throwsCode(() => pool.acquire(), 'ERR_URING_ZC_POOL_CLOSED', 'acquire() after close()');
      await rejectsCode(pool.acquireAsync(), 'ERR_URING_ZC_POOL_CLOSED', 'acquireAsync() after close()');
      pool.release(held); // an acquired, unsent buffer may still go back
      await turns(20);
      await sleep(50);
      assert.equal(fill.settled, false, 'the filler is still in the kernel (peer paused)');
      assert.equal(closing.settled, false, 'close() waits for the buffers in flight');
      assert.equal(pool.closed, false);
      assert.deepEqual(pool.stats(), { size: 4, free: 0, inFlight: 3, registeredBytes: registeredOn(backend, 4 * 65536) }, 'still registered while in flight');
      peer.rx.resume();
      await closing.promise;
      await Promise.all(sends);
      // close() resolves in the same settle step as the last send (its promise may run first).
      assert.deepEqual(order.slice(0, 2), ['send 0', 'send 1'], `settle order ${order.join(', ')}`);
      assert.deepEqual(atClose, { pool: 0, socket: 0 }, 'when close() resolved, no send was in flight any more');
      assert.equal(pool.closed, true);
      assert.deepEqual(pool.stats(), { size: 4, free: 0, inFlight: 0, registeredBytes: 0 });
      await fill.promise;
      for (const r of await Promise.all(sends)) assert.equal(r.bytes, 65536);
      await peer.rx.waitForBytes(peer.verifier.expected, 20_000);
      assert.ok(peer.verifier.complete, `stream differs at byte ${peer.verifier.mismatchAt}`);
      assert.equal(peer.zs.stats().fixed, fixedOn(backend, 3));
      assert.equal(await pool.close().then(() => 'again'), 'again', 'close() twice resolves');
    } finally {
      await peer.dispose();
      await pool.close();
    }
  });

  test(`${backend}: acquireAsync(): an abort rejects with ABORT_ERR and takes nothing; a waiter gets the next buffer that comes back`, ioUringOnly(backend, POOL_ONLY, opts(backend, 10_000, { pools: [4096] })), async () => {
    const pool = poolOn(backend, ring, { bufferSize: 4096, count: 1 });
    try {
      const only = pool.acquire()!;
      await rejectsCode(pool.acquireAsync({ signal: AbortSignal.abort() }), 'ABORT_ERR', 'acquireAsync() with an aborted signal');
      const ac = new AbortController();
      const aborted = pool.acquireAsync({ signal: ac.signal });
      const next = pool.acquireAsync();
      ac.abort();
      await rejectsCode(aborted, 'ABORT_ERR', 'acquireAsync() aborted while waiting');
      pool.release(only);
      const got = await next;
      assert.equal(got.byteOffset, only.byteOffset, 'the released buffer went to the waiter, not to the aborted one');
      assert.deepEqual(pool.stats(), { size: 1, free: 0, inFlight: 0, registeredBytes: registeredOn(backend, 4096) });
      pool.release(got);
      throwsCode(() => pool.acquireAsync({ signal: 'no' as unknown as AbortSignal }), 'ERR_URING_ZC_INVALID_ARG', 'acquireAsync() with a bad signal');
    } finally {
      await pool.close();
    }
  });

  test(`${backend}: misuse throws with its code and disturbs nothing: a send in flight on the same ring completes and its bytes arrive`, opts(backend, 30_000, { pools: [4 * 65536, 2 * 4096, 4096] }), async () => {
    const peer = await pausedPeer(adoptOn);
    const p = poolOn(backend, ring, { bufferSize: 65536, count: 4 });
    const q = poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    const closedPool = poolOn(backend, ring, { bufferSize: 4096, count: 1 });
    await closedPool.close();
    const urx = await udpReceiver();
    const usock = await boundUdp();
    const uzs = adoptOn(usock);
    try {
      const prng = new Prng(6);
      // Acquired first: the free list is LIFO, and this buffer must not be the one that returns below.
      const inFlight = p.acquire()!;
      // A buffer that was sent and came back at its notification.
      const returned = p.acquire()!;
      prng.fill(returned);
      await uzs.send(returned.subarray(0, 1000), { address: '127.0.0.1', port: urx.port });
      assert.equal(p.stats().free, 3, 'the UDP send returned its buffer');

      // The sends that must survive: a copying filler the paused peer holds in the kernel, and a
      // pool buffer queued behind it.
      const filler = prng.bytes(FILLER);
      peer.verifier.expect(filler);
      const fill = track(peer.zs.send(filler, { zeroCopy: false }));
      prng.fill(inFlight);
      peer.verifier.expect(Buffer.from(inFlight));
      const pending = track(peer.zs.send(inFlight));

      const snapshot = (): unknown => ({ p: p.stats(), q: q.stats(), zs: peer.zs.stats(), uzs: uzs.stats().inFlight });
      const before = snapshot();
      const zs = peer.zs;
      const check = (fn: () => unknown, code: string, what: string): void => {
        throwsCode(fn, code, what);
        assert.deepEqual(snapshot(), before, `${what} changed no counter`);
      };

      check(() => zs.send(returned), 'ERR_URING_ZC_INVALID_STATE', 'send() of a buffer that returned to its pool');
      check(() => zs.send(returned.subarray(10, 20)), 'ERR_URING_ZC_INVALID_STATE', 'send() of a slice of a returned buffer');
      check(() => zs.sendv([returned]), 'ERR_URING_ZC_INVALID_STATE', 'sendv() of a returned buffer');
      check(() => uzs.send(returned.subarray(0, 1000), { address: '127.0.0.1', port: urx.port }), 'ERR_URING_ZC_INVALID_STATE', 'UDP send() of a returned buffer');
      check(() => p.release(returned), 'ERR_URING_ZC_INVALID_STATE', 'release() of a returned buffer');
      check(() => p.release(inFlight), 'ERR_URING_ZC_INVALID_STATE', 'release() of a buffer in flight');
      check(() => p.release(Buffer.alloc(64)), 'ERR_URING_ZC_INVALID_ARG', 'release() of a foreign Buffer');
      check(() => p.release(new Uint8Array(64)), 'ERR_URING_ZC_INVALID_ARG', 'release() of a foreign Uint8Array');

      // Released, then released again / sent.
      const r1 = p.acquire()!;
      p.release(r1);
      const afterRelease = snapshot();
      assert.deepEqual(afterRelease, before);
      check(() => p.release(r1), 'ERR_URING_ZC_INVALID_STATE', 'a second release()');
      check(() => zs.send(r1), 'ERR_URING_ZC_INVALID_STATE', 'send() of a released buffer');
      check(() => zs.sendv([Buffer.from('header'), r1]), 'ERR_URING_ZC_INVALID_STATE', 'sendv() with a released buffer');

      // Held buffers: a buffer of another pool, a slice spanning two buffers, bad options.
      const qb = q.acquire()!;
      const x = p.acquire()!;
      const y = p.acquire()!;
      const heldSnapshot = snapshot();
      const checkHeld = (fn: () => unknown, code: string, what: string): void => {
        throwsCode(fn, code, what);
        assert.deepEqual(snapshot(), heldSnapshot, `${what} changed no counter`);
      };
      checkHeld(() => p.release(qb), 'ERR_URING_ZC_INVALID_ARG', 'release() of another pool\'s buffer');
      checkHeld(() => q.release(x), 'ERR_URING_ZC_INVALID_ARG', 'release() of a buffer into the wrong pool');
      const lower = x.byteOffset < y.byteOffset ? x : y;
      const spanning = Buffer.from(lower.buffer, lower.byteOffset + 65536 - 10, 20);
      checkHeld(() => zs.send(spanning), 'ERR_URING_ZC_INVALID_ARG', 'send() of a slice spanning two pool buffers');
      checkHeld(() => zs.sendv([x.subarray(0, 10), spanning]), 'ERR_URING_ZC_INVALID_ARG', 'sendv() with a slice spanning two buffers');
      checkHeld(() => p.release(spanning), 'ERR_URING_ZC_INVALID_ARG', 'release() of a slice spanning two buffers');
      checkHeld(() => zs.send(x, { segmentSize: 1000 }), 'ERR_URING_ZC_INVALID_ARG', 'segmentSize on TCP with a pool buffer');
      checkHeld(() => uzs.send(x, { address: '127.0.0.1', port: urx.port }), 'ERR_URING_ZC_INVALID_ARG', 'a 65536-byte pool buffer as one UDP datagram');
      checkHeld(() => closedPool.acquire(), 'ERR_URING_ZC_POOL_CLOSED', 'acquire() on a closed pool');
      await rejectsCode(closedPool.acquireAsync(), 'ERR_URING_ZC_POOL_CLOSED', 'acquireAsync() on a closed pool');
      await rejectsCode(q.acquireAsync({ signal: AbortSignal.abort() }), 'ABORT_ERR', 'acquireAsync() with an aborted signal');
      checkHeld(() => poolOn(backend, ring, { bufferSize: 0, count: 1 }), 'ERR_URING_ZC_INVALID_ARG', 'bufferSize 0');
      checkHeld(() => poolOn(backend, ring, { bufferSize: 4096, count: 0 }), 'ERR_URING_ZC_INVALID_ARG', 'count 0');
      checkHeld(() => poolOn(backend, ring, { bufferSize: 1 << 20, count: 1025 }), 'ERR_URING_ZC_INVALID_ARG', 'more than 1 GiB in one pool');
      checkHeld(() => poolOn(backend, ring, { bufferSize: 4096, count: 1, size: 1 } as never), 'ERR_URING_ZC_INVALID_ARG', 'an unknown option');
      // The held buffers are intact: each can still be released exactly once.
      p.release(x);
      p.release(y);
      q.release(qb);

      assert.equal(fill.settled, false, 'the filler is still in the kernel');
      assert.equal(pending.settled, false, 'the pool send is still in flight');
      peer.rx.resume();
      await fill.promise;
      assert.equal((await pending.promise).bytes, 65536);
      await peer.rx.waitForBytes(peer.verifier.expected, 20_000);
      assert.ok(peer.verifier.complete, `stream differs at byte ${peer.verifier.mismatchAt}`);
      assert.deepEqual(p.stats(), { size: 4, free: 4, inFlight: 0, registeredBytes: registeredOn(backend, 4 * 65536) });
      assert.deepEqual(q.stats(), { size: 2, free: 2, inFlight: 0, registeredBytes: registeredOn(backend, 2 * 4096) });
      const s = zs.stats();
      assert.equal(s.sends, 2);
      assert.equal(s.errors, 0);
      assert.equal(s.fixed, fixedOn(backend, 1));
    } finally {
      await peer.dispose();
      await uzs.close();
      await closeDgram(usock);
      await urx.close();
      await Promise.all([p.close(), q.close()]);
    }
  });

  test(`${backend}: ring close closes its pools: acquire() then throws ERR_URING_ZC_POOL_CLOSED and the region is unregistered`, ioUringOnly(backend, POOL_ONLY, opts(backend, 10_000, { rings: [256], pools: [4 * 4096] })), async () => {
    const r = new Ring();
    const pool = r.createBufferPool({ bufferSize: 4096, count: 4 });
    for (let i = 0; i < 4; i++) assert.ok(pool.acquire() !== null);
    const waiter = pool.acquireAsync();
    await r.close();
    await rejectsCode(waiter, 'ERR_URING_ZC_POOL_CLOSED', 'a waiter at ring close');
    assert.equal(pool.closed, true);
    assert.equal(pool.stats().registeredBytes, 0);
    throwsCode(() => pool.acquire(), 'ERR_URING_ZC_POOL_CLOSED', 'acquire() after ring close');
    throwsCode(() => r.createBufferPool({ bufferSize: 4096, count: 1 }), 'ERR_URING_ZC_RING_CLOSED', 'createBufferPool() on a closed ring');
  });

  test(`${backend}: sending a buffer that was acquired before its pool closed throws ERR_URING_ZC_POOL_CLOSED and queues nothing`, opts(backend, 10_000, { pools: [2 * 4096] }), async () => {
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    const pool = poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    try {
      const held = pool.acquire()!;
      await pool.close();
      assert.equal(pool.closed, true);
      throwsCode(() => zs.send(held.subarray(0, 100), { address: '127.0.0.1', port: rx.port }), 'ERR_URING_ZC_POOL_CLOSED', 'send() of a held buffer of a closed pool');
      assert.equal(zs.stats().inFlight, 0);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
    }
  });
}

test('createBufferPool(): plain memory for msg_zerocopy and copy (no ring, nothing registered, page-aligned buffers, the same lending), the default ring\'s registered pool for io_uring; bad options refused', { timeout: 10_000 }, async () => {
  for (const backend of ['msg_zerocopy', 'copy'] as const) {
    const pool = createBufferPool({ bufferSize: 8192, count: 3, backend });
    assert.equal(pool.ring, null, backend);
    assert.deepEqual(pool.stats(), { size: 3, free: 3, inFlight: 0, registeredBytes: 0 });
    const b = pool.acquire()!;
    assert.equal(b.length, 8192);
    assert.equal((baseAddress(b.buffer) + b.byteOffset) % 4096, 0, 'page-aligned');
    throwsCode(() => pool.release(Buffer.alloc(8)), 'ERR_URING_ZC_INVALID_ARG', 'a Buffer not of the pool');
    pool.release(b);
    throwsCode(() => pool.release(b), 'ERR_URING_ZC_INVALID_STATE', 'a double release');
    await pool.close();
    assert.equal(pool.closed, true);
    throwsCode(() => pool.acquire(), 'ERR_URING_ZC_POOL_CLOSED', 'acquire() after close');
  }
  throwsCode(() => createBufferPool({ backend: 'rdma' as never }), 'ERR_URING_ZC_INVALID_ARG', 'an unknown backend');
  throwsCode(() => createBufferPool({ count: 0, backend: 'copy' }), 'ERR_URING_ZC_INVALID_ARG', 'count 0');
  throwsCode(() => createBufferPool({ size: 1 } as never), 'ERR_URING_ZC_INVALID_ARG', 'an unknown option');
  if (skipReason === null) {
    const pool = createBufferPool({ bufferSize: 4096, count: 2, backend: 'io_uring' });
    assert.ok(pool.ring instanceof Ring, 'io_uring: a Ring\'s pool');
    assert.equal(pool.stats().registeredBytes, 8192);
    await pool.close();
  }
});
