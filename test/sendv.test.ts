/**
 * sendv (IORING_OP_SENDMSG_ZC with one iovec per chunk): on TCP the chunks of many sendv calls in
 * flight arrive as one stream, in call order and intact (headers + bodies of mixed sizes, empty
 * chunks, pool chunks); on UDP each sendv is one datagram of the concatenated chunks; 1..IOV_MAX
 * chunks; a sendv whose chunks all come from one pool of the socket's ring is a registered-buffer
 * send (stats().fixed), any other mix is not. Once per backend: on msg_zerocopy and copy the same
 * sendv goes as one sendmsg(2) (pools are plain memory there: never a registered-buffer send).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { capabilities, IOV_MAX, Ring, type SendResult } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { throwsCode, sendmsgZcUnavailableReason, fileRing, withSink, type LockedNeed } from './helpers/env.js';
import { boundUdp, closeDgram, connectTcp, destroySocket, StreamVerifier, tcpAndUdp, tcpReceiver, udpReceiver } from './helpers/net.js';
import { collectChild, concat, lastJson } from './helpers/pool-helpers.js';
import { addressOf } from '../src/buffers.js';
import { BACKENDS, adopterFor, backendUnavailableReason, childEnv, gatedOn, notifies, poolOn, registeredOn, sinkZeroCopy, type Backend } from './helpers/backends.js';

const skipReason = sendmsgZcUnavailableReason();
/** `need`: what a test locks besides the file's ring (pools, zero-copy sends in flight). */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => {
  const o = gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });
  // A test with pools needs the file's Ring to make them, whatever sends them.
  return o;
};

const ring = fileRing(skipReason);


for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend, ring);

  test(`${backend}: TCP: 400 sendv calls in flight (header + body chunks of mixed sizes, empty chunks, pool chunks) arrive in call order, intact`, opts(backend, 60_000, { pools: [16 * 32768], zeroCopy: [[400, 6 * (256 << 10)]] }), async () => {
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    const pool = poolOn(backend, ring, { bufferSize: 32768, count: 16 });
    try {
      const prng = new Prng(0x5e1d);
      const backing = prng.bytes(4 << 20);
      const calls = 400;
      const pending: Promise<SendResult>[] = [];
      const totals: number[] = [];
      let poolChunks = 0;
      let emptyChunks = 0;
      let maxInFlight = 0;
      for (let i = 0; i < calls; i++) {
        const pieces = prng.int(1, 6);
        const body: Uint8Array[] = [];
        for (let k = 0; k < pieces; k++) {
          const kind = prng.int(0, 5);
          if (kind === 0) {
            body.push(Buffer.alloc(0));
            emptyChunks++;
          } else if (kind === 1 || kind === 2) {
            // A pool chunk: waits for a buffer when all 16 are in flight; copied for the verifier
            // because the buffer is refilled as soon as it comes back.
            const buf = pool.acquire() ?? (await pool.acquireAsync());
            const size = prng.logSize(1, buf.length - 1);
            const off = prng.int(0, buf.length - size);
            body.push(prng.fill(buf.subarray(off, off + size)));
            poolChunks++;
          } else if (kind === 3) {
            const size = prng.logSize(1, 256 << 10);
            const off = prng.int(0, backing.length - size);
            body.push(backing.subarray(off, off + size));
          } else {
            body.push(prng.bytes(prng.logSize(1, 64 << 10)));
          }
        }
        const bodyLen = body.reduce((a, c) => a + c.byteLength, 0);
        const header = Buffer.alloc(12);
        header.writeUInt32BE(0x48445230, 0);
        header.writeUInt32BE(i, 4);
        header.writeUInt32BE(bodyLen, 8);
        const chunks = [header, ...body];
        for (const c of chunks) verifier.expect(Buffer.from(c)); // a copy: pool chunks are rewritten later
        totals.push(12 + bodyLen);
        pending.push(zs.sendv(chunks));
        maxInFlight = Math.max(maxInFlight, zs.stats().inFlight);
      }
      const results = await Promise.all(pending);
      results.forEach((r, i) => assert.equal(r.bytes, totals[i], `sendv #${i}: bytes`));
      await rx.waitForBytes(verifier.expected, 30_000);
      assert.equal(verifier.mismatchAt, -1, `received stream differs at byte ${verifier.mismatchAt}`);
      assert.ok(verifier.complete, `${verifier.verified} of ${verifier.expected} bytes`);
      assert.ok(poolChunks > 16, 'pool buffers were recycled across sendv calls');
      assert.ok(emptyChunks > 10, 'empty chunks were part of the calls');
      assert.ok(maxInFlight >= 16, `at most ${maxInFlight} sendv calls were in flight`);
      const s = zs.stats();
      assert.equal(s.sends, calls);
      assert.equal(s.errors, 0);
      assert.equal(s.inFlight, 0);
      assert.equal(s.bytes, verifier.expected);
      assert.deepEqual(pool.stats(), { size: 16, free: 16, inFlight: 0, registeredBytes: registeredOn(backend, 16 * 32768) });
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
      await pool.close();
    }
  });

  test(`${backend}: UDP: each sendv is exactly one datagram carrying the chunks concatenated`, opts(backend, 30_000, { pools: [4 * 8192], zeroCopy: [[16, 65507]] }), async () => {
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    const pool = poolOn(backend, ring, { bufferSize: 8192, count: 4 });
    try {
      const prng = new Prng(0xd6);
      const count = 48;
      const expected: Buffer[] = [];
      for (let start = 0; start < count; start += 16) {
        const batch: Promise<SendResult>[] = [];
        for (let i = start; i < Math.min(count, start + 16); i++) {
          const seq = Buffer.alloc(4);
          seq.writeUInt32BE(i);
          const chunks: Uint8Array[] = [seq];
          const n = prng.int(0, 7);
          for (let k = 0; k < n; k++) {
            const kind = (i + k) % 4;
            if (kind === 0) chunks.push(new Uint8Array(0));
            else if (kind === 1) {
              const b = pool.acquire();
              if (b !== null) chunks.push(prng.fill(b.subarray(0, prng.int(1, 2000))));
            } else chunks.push(prng.bytes(prng.logSize(1, 6000)));
          }
          const whole = concat(chunks);
          expected.push(whole);
          batch.push(zs.sendv(chunks, { address: '127.0.0.1', port: rx.port }));
        }
        const results = await Promise.all(batch);
        results.forEach((r, k) => assert.equal(r.bytes, expected[start + k]!.length, `sendv #${start + k}`));
        await rx.waitFor(Math.min(count, start + 16), 10_000);
      }
      assert.equal(rx.messages.length, count, 'one datagram per sendv');
      const bySeq = new Map(rx.messages.map((m) => [m.data.readUInt32BE(0), m.data]));
      for (let i = 0; i < count; i++) assert.ok(bySeq.get(i)?.equals(expected[i]!), `datagram #${i} is the concatenation of its chunks`);
      assert.equal(zs.stats().sends, count);
      assert.deepEqual(pool.stats().free, 4);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
      await pool.close();
    }
  });

  test(`${backend}: chunk count: 0 and IOV_MAX + 1 throw ERR_URING_ZC_INVALID_ARG and queue nothing`, opts(backend, 10_000), async () => {
    assert.equal(IOV_MAX, 1024);
    const both = await tcpAndUdp(adoptOn);
    const { trx, tzs, urx, uzs } = both;
    try {
      const dest = { address: '127.0.0.1', port: urx.port };
      for (const zs of [tzs, uzs]) {
        const o = zs === uzs ? dest : undefined;
        throwsCode(() => zs.sendv([], o), 'ERR_URING_ZC_INVALID_ARG', `${zs.type}: sendv([])`);
        const tooMany = Array.from({ length: IOV_MAX + 1 }, () => Buffer.from('x'));
        throwsCode(() => zs.sendv(tooMany, o), 'ERR_URING_ZC_INVALID_ARG', `${zs.type}: sendv() of ${IOV_MAX + 1} chunks`);
        throwsCode(() => zs.sendv('abc' as unknown as Uint8Array[], o), 'ERR_URING_ZC_INVALID_ARG', `${zs.type}: sendv() of a string`);
        throwsCode(() => zs.sendv([Buffer.from('a'), 'b' as unknown as Uint8Array], o), 'ERR_URING_ZC_INVALID_ARG', `${zs.type}: a chunk that is not a Buffer`);
        assert.deepEqual({ inFlight: zs.stats().inFlight, sends: zs.stats().sends, errors: zs.stats().errors }, { inFlight: 0, sends: 0, errors: 0 }, 'nothing was queued');
      }
      await new Promise((r) => setImmediate(r));
      assert.equal(trx.bytes(), 0);
      assert.equal(urx.messages.length, 0);
    } finally {
      await both.close();
    }
  });

  test(`${backend}: TCP: IOV_MAX (1024) chunks per sendv, two such calls in flight, arrive intact and in order`, opts(backend, 20_000, { zeroCopy: [[2, IOV_MAX * 4096]] }), async () => {
    const verifier = new StreamVerifier();
    const trx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(trx.port);
    const tzs = adoptOn(client);
    try {
      const prng = new Prng(0x10);
      const calls: Promise<SendResult>[] = [];
      const totals: number[] = [];
      for (let call = 0; call < 2; call++) {
        // Separate allocations of 1..4096 bytes (some empty): 1024 iovecs on scattered pages.
        const chunks = Array.from({ length: IOV_MAX }, (_, i) => (i % 97 === 13 ? Buffer.alloc(0) : prng.bytes(prng.logSize(1, 4096))));
        for (const c of chunks) verifier.expect(c);
        totals.push(chunks.reduce((a, c) => a + c.length, 0));
        calls.push(tzs.sendv(chunks));
      }
      const tr = await Promise.all(calls);
      tr.forEach((r, i) => assert.equal(r.bytes, totals[i]));
      await trx.waitForBytes(verifier.expected, 10_000);
      assert.ok(verifier.complete, `TCP stream differs at byte ${verifier.mismatchAt}`);
    } finally {
      await tzs.close();
      await destroySocket(client);
      await trx.close();
    }
  });

  test(`${backend}: UDP: IOV_MAX (1024) separately allocated chunks make one datagram, copied or not`, opts(backend, 20_000, { zeroCopy: [65536] }), async () => {
    const urx = await udpReceiver();
    const usock = await boundUdp();
    const uzs = adoptOn(usock);
    try {
      const prng = new Prng(0x11);
      const dest = { address: '127.0.0.1', port: urx.port };
      // 1024 separate Buffers of 1..63 bytes: about 32 KiB, above the default copy threshold.
      const chunks = Array.from({ length: IOV_MAX }, () => Buffer.from(prng.bytes(prng.int(1, 63))));
      const whole = concat(chunks);
      assert.ok(whole.length <= 65507 && whole.length >= 16384);
      // A copying send (forced).
      assert.equal((await uzs.sendv(chunks, { ...dest, zeroCopy: false })).bytes, whole.length);
      await urx.waitFor(1, 5_000);
      assert.ok(urx.messages[0]!.data.equals(whole), 'copying sendv: the 1024 chunks make one datagram, in order');
      // The default: at/above the threshold, so the library chooses zero copy. The kernel refuses a
      // zero-copy datagram whose iovecs need more than net.core.max_skb_frags page fragments
      // (EMSGSIZE); the library must still deliver it (fall back to a copying send).
      const r = await uzs.sendv(chunks, dest);
      assert.equal(r.bytes, whole.length);
      await urx.waitFor(2, 5_000);
      assert.ok(urx.messages[1]!.data.equals(whole), 'default sendv: one datagram, in order');
      // A realistic message: 20 separately allocated 1000-byte pieces.
      const pieces = Array.from({ length: 20 }, () => prng.bytes(1000));
      assert.equal((await uzs.sendv(pieces, dest)).bytes, 20_000);
      await urx.waitFor(3, 5_000);
      assert.ok(urx.messages[2]!.data.equals(concat(pieces)));
    } finally {
      await uzs.close();
      await closeDgram(usock);
      await urx.close();
    }
  });

  test(`${backend}: UDP: a sendv of 32 chunks from 32 pool buffers is one datagram (more page fragments than one skb holds)`, opts(backend, 20_000, { pools: [32 * 4096] }), async () => {
    const urx = await udpReceiver();
    const usock = await boundUdp();
    const uzs = adoptOn(usock);
    const pool = poolOn(backend, ring, { bufferSize: 4096, count: 32 });
    try {
      const prng = new Prng(0x12);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < 32; i++) chunks.push(prng.fill(pool.acquire()!.subarray(0, 1000)));
      const whole = concat(chunks);
      const r = await uzs.sendv(chunks, { address: '127.0.0.1', port: urx.port });
      assert.equal(r.bytes, 32_000);
      await urx.waitFor(1, 5_000);
      assert.ok(urx.messages[0]!.data.equals(whole));
      assert.equal(pool.stats().free, 32);
    } finally {
      await uzs.close();
      await closeDgram(usock);
      await urx.close();
      await pool.close();
    }
  });

  test(`${backend}: a sendv is a registered-buffer send only when every chunk is from one pool of the socket's ring`, opts(backend, 30_000, { rings: [256], pools: [4 * 4096, 2 * 4096, 2 * 4096], zeroCopy: [[4, 8192]] }), async (t) => {
    // On msg_zerocopy and copy nothing is registered: every case is a plain send (fixed 0) and the
    // pool buffers still come back; on io_uring the fixed cases need the kernel's SENDMSG_ZC with
    // a registered buffer.
    if (backend === 'io_uring' && !capabilities().sendmsgZcFixed) {
      t.skip('IORING_OP_SENDMSG_ZC with IORING_RECVSEND_FIXED_BUF is not available (Linux 6.15+)');
      return;
    }
    // io_uring: a second Ring's pool; the other backends have no Ring (they run where io_uring is
    // refused): a third plain pool stands in for it.
    const other = backend === 'io_uring' ? new Ring() : undefined;
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    const p1 = poolOn(backend, ring, { bufferSize: 4096, count: 4 });
    const p2 = poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    const q = other !== undefined ? other.createBufferPool({ bufferSize: 4096, count: 2 }) : poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    try {
      const prng = new Prng(0xf1);
      const dest = { address: '127.0.0.1', port: rx.port };
      let seq = 0;
      const cases: { name: string; chunks: () => Uint8Array[]; fixed: boolean }[] = [
        { name: 'two buffers of one pool', chunks: () => [p1.acquire()!.subarray(0, 700), p1.acquire()!.subarray(100, 900)], fixed: true },
        { name: 'two slices of one buffer', chunks: () => { const b = p1.acquire()!; return [b.subarray(0, 10), b.subarray(2000, 3000)]; }, fixed: true },
        { name: 'one pool chunk', chunks: () => [p1.acquire()!.subarray(0, 40)], fixed: true },
        { name: 'a pool chunk and a plain Buffer', chunks: () => [p1.acquire()!.subarray(0, 500), prng.bytes(500)], fixed: false },
        { name: 'chunks of two pools of this ring', chunks: () => [p1.acquire()!.subarray(0, 500), p2.acquire()!.subarray(0, 500)], fixed: false },
        { name: 'a chunk of another ring\'s pool', chunks: () => [q.acquire()!.subarray(0, 800)], fixed: false },
        { name: 'plain Buffers only', chunks: () => [prng.bytes(300), prng.bytes(300)], fixed: false },
      ];
      for (const c of cases) {
        const chunks = c.chunks();
        seq++;
        for (const ch of chunks) prng.fill(ch);
        const expected = concat(chunks);
        const before = zs.stats();
        const r = await zs.sendv(chunks, dest);
        const after = zs.stats();
        assert.equal(r.bytes, expected.length, `${c.name}: bytes`);
        assert.equal(after.fixed - before.fixed, c.fixed && backend === 'io_uring' ? 1 : 0, `${c.name}: fixed`);
        await rx.waitFor(seq, 5_000);
        assert.ok(rx.messages[seq - 1]!.data.equals(expected), `${c.name}: datagram content`);
      }
      // Every pool chunk went zero copy (one notification each); pool buffers returned.
      assert.equal(zs.stats().notifications, notifies(backend) ? 6 : 0, 'the six sendv calls with pool chunks were zero copy, the plain one (600 B) copied (copy: no notifications)');
      assert.equal(zs.stats().fixed, backend === 'io_uring' ? 3 : 0, 'registered-buffer sends (io_uring only)');
      assert.equal(p1.stats().free, 4);
      assert.equal(p2.stats().free, 2);
      assert.equal(q.stats().free, 2);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
      await Promise.all([p1.close(), p2.close(), q.close()]);
      await other?.close();
    }
  });

  test(`${backend}: TCP: a sendv that starts with an empty chunk and is cut short by a peer reset rejects with the errno (child process)`, opts(backend, 20_000, { rings: [256], zeroCopy: [16 << 20] }), async () => {
    for (const mode of ['plain', 'empty'] as const) {
      const child = spawn(process.execPath, ['dist/test/helpers/pool-sendv-reset.js', mode], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(backend) });
      const { code, out, err } = await collectChild(child, 15_000);
      assert.equal(code, 0, `pool-sendv-reset ${mode} exited with ${code}: ${err}`);
      const report = lastJson<{ outcome: { settled: boolean; code?: string }; uncaught: string[]; stats: { inFlight: number; errors: number } }>(out);
      assert.deepEqual(report.uncaught, [], `${mode}: nothing thrown out of the ring`);
      assert.equal(report.outcome.settled, true, `${mode}: the sendv settled`);
      assert.ok(report.outcome.code === 'EPIPE' || report.outcome.code === 'ECONNRESET', `${mode}: rejected with ${report.outcome.code}`);
      assert.equal(report.stats.inFlight, 0);
      assert.equal(report.stats.errors, 1);
    }
  });

  /** `len` bytes of `fill` starting `inPage` bytes past a page boundary. */
  function placed(len: number, inPage: number, fill: number): Buffer {
    const region = Buffer.allocUnsafeSlow(len + 8192).fill(fill);
    const skip = (4096 - (addressOf(region) % 4096)) % 4096;
    return region.subarray(skip + inPage, skip + inPage + len);
  }

  test(`${backend}: UDP: a header straddling two pages before a 16-page body (18 fragments) arrives intact, 300 of them`, opts(backend, 30_000, { zeroCopy: [[20, 62464]] }), async () => {
    // The library copies such a header into a page of the socket's slab (several slabs here); the
    // receiver checks every datagram, and each header is rewritten once its sendv settled.
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock, { zeroCopyThreshold: 0, autoDowngrade: false });
    try {
      const prng = new Prng(0x18f);
      const body = prng.fill(placed(61440, 1024, 0));
      const headers = Array.from({ length: 300 }, () => placed(1024, 4096 - 300, 0));
      const expected: Buffer[] = [];
      // In batches of 20 in flight: loopback UDP drops what the receiver's buffer cannot hold.
      for (let start = 0; start < 300; start += 20) {
        const pending: Promise<SendResult>[] = [];
        for (let i = start; i < start + 20; i++) {
          const h = headers[i]!;
          prng.fill(h);
          h.writeUInt32BE(i, 0);
          expected.push(concat([h, body]));
          pending.push(zs.sendv([h, body], { address: '127.0.0.1', port: rx.port }).then((r) => {
            h.fill(0xee); // the kernel is done with it: rewriting it cannot reach the datagram
            return r;
          }));
        }
        for (const r of await Promise.all(pending)) assert.equal(r.bytes, 1024 + 61440);
        await rx.waitFor(start + 20, 10_000);
      }
      const bySeq = new Map(rx.messages.map((m) => [m.data.readUInt32BE(0), m.data]));
      for (let i = 0; i < 300; i++) assert.ok(bySeq.get(i)?.equals(expected[i]!), `datagram #${i} intact`);
      assert.equal(zs.stats().errors, 0);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
    }
  });

  test(`${backend}: in the IFB sink namespace: [1 KiB header, 60 KiB body] goes zero copy (${sinkZeroCopy(backend)}) wherever the header lies; too many pieces copy`, { timeout: 40_000 }, async (t) => {
    await withSink(t, backendUnavailableReason(backend, skipReason), async (sink) => {
      const child = sink.spawn([process.execPath, 'dist/test/helpers/sendv-sink-sender.js', sink.destination, '9'], {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv(backend),
      });
      const { code, out, err } = await collectChild(child, 30_000);
      assert.equal(code, 0, `sendv-sink-sender exited with ${code}: ${err}`);
      const r = lastJson<Record<string, { zeroCopy?: boolean; bytes?: number; code?: string }>>(out);
      // zeroCopy where the backend sends zero copy into the sink (copy: never).
      const zc = sinkZeroCopy(backend);
      assert.deepEqual(r['17 fragments'], { zeroCopy: zc, bytes: 62464 }, 'the header pinned in place');
      assert.deepEqual(r['18 fragments'], { zeroCopy: zc, bytes: 62464 }, 'the header copied, the body zero copy');
      assert.deepEqual(r['18 fragments x200'], { zeroCopy: zc, bytes: 200 * 62464 });
      assert.deepEqual(r['20 pieces'], { zeroCopy: false, bytes: 20000 }, '40 fragments: the datagram is copied');
      assert.deepEqual(r['17 fragments, msghdr'], { zeroCopy: zc, bytes: 62464 });
      assert.deepEqual(r['18 fragments, msghdr'], { zeroCopy: zc, bytes: 62464 });
    });
  });
}
