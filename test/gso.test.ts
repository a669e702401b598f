/**
 * UDP GSO (`segmentSize`: IORING_OP_SENDMSG(_ZC) with a UDP_SEGMENT control message): a loopback
 * receiver gets exactly ⌈len / segmentSize⌉ datagrams carrying the buffer's bytes in order (plain
 * buffers, a pool buffer, a sendv); inside the IFB sink namespace GSO sends report zeroCopy: true;
 * segmentSize on TCP, and out-of-range sizes, throw ERR_URING_ZC_INVALID_ARG. Once per backend
 * (sendmsg(2) with the same control message on msg_zerocopy and copy; zeroCopy false on copy).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SendResult } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { codeOf, throwsCode, sendmsgZcUnavailableReason, fileRing, withSink, type LockedNeed } from './helpers/env.js';
import { boundUdp, closeDgram, tcpAndUdp, udpReceiver } from './helpers/net.js';
import { concat, runPoolGsoSender } from './helpers/pool-helpers.js';
import { BACKENDS, adopterFor, backendUnavailableReason, childEnv, gatedOn, notifies, poolOn, sinkZeroCopy, type Backend } from './helpers/backends.js';

const skipReason = sendmsgZcUnavailableReason();
/** `need`: what a test locks besides the file's ring. */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => {
  const o = gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });
  // A test with pools needs the file's Ring to make them, whatever sends them.
  return o;
};

const ring = fileRing(skipReason);


for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend, ring);

  test(`${backend}: loopback: a GSO send arrives as exactly ⌈len / segmentSize⌉ datagrams with the buffer's bytes, in order`, opts(backend, 30_000, { pools: [2 * 32768], zeroCopy: [65000] }), async () => {
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    const pool = poolOn(backend, ring, { bufferSize: 32768, count: 2 });
    try {
      const prng = new Prng(0x650);
      const dest = { address: '127.0.0.1', port: rx.port };
      const poolBuf = pool.acquire()!;
      const cases: { name: string; buf: Uint8Array; seg: number; datagrams: number }[] = [
        { name: 'exact multiple (1000 / 100)', buf: prng.bytes(1000), seg: 100, datagrams: 10 },
        { name: 'one byte over (1001 / 100)', buf: prng.bytes(1001), seg: 100, datagrams: 11 },
        { name: 'exact multiple above the copy threshold (24000 / 3000)', buf: prng.bytes(24000), seg: 3000, datagrams: 8 },
        { name: 'MTU-sized segments (65000 / 1400)', buf: prng.bytes(65000), seg: 1400, datagrams: 47 },
        { name: 'one segment (9000 / 9000)', buf: prng.bytes(9000), seg: 9000, datagrams: 1 },
        { name: 'segment larger than the buffer (100 / 1000)', buf: prng.bytes(100), seg: 1000, datagrams: 1 },
        { name: 'a pool buffer slice (30000 / 1472)', buf: prng.fill(poolBuf.subarray(100, 30100)), seg: 1472, datagrams: 21 },
      ];
      let seen = 0;
      for (const c of cases) {
        const expected = Buffer.from(c.buf); // the pool buffer returns to the pool at settle
        assert.equal(c.datagrams, Math.ceil(c.buf.byteLength / c.seg));
        const r = await zs.send(c.buf, { ...dest, segmentSize: c.seg });
        assert.deepEqual(r, { bytes: c.buf.byteLength, zeroCopy: false }, `${c.name}: result (loopback copies)`);
        await rx.waitFor(seen + c.datagrams, 10_000);
        // Nothing more for this send: the next one's datagrams are counted from here.
        const got = rx.messages.slice(seen, seen + c.datagrams).map((m) => m.data);
        seen += c.datagrams;
        got.forEach((d, i) => {
          const want = expected.subarray(i * c.seg, Math.min(expected.length, (i + 1) * c.seg));
          assert.ok(d.equals(want), `${c.name}: datagram ${i} (${d.length} bytes, want ${want.length})`);
        });
      }
      // A GSO sendv: the concatenation, cut into segments.
      const chunks = [prng.bytes(3000), prng.bytes(2500), prng.bytes(1500)];
      const whole = concat(chunks);
      assert.equal((await zs.sendv(chunks, { ...dest, segmentSize: 2000 })).bytes, 7000);
      await rx.waitFor(seen + 4, 10_000);
      rx.messages.slice(seen, seen + 4).forEach((m, i) => assert.ok(m.data.equals(whole.subarray(i * 2000, (i + 1) * 2000)), `sendv datagram ${i}`));
      seen += 4;
      // Settle a moment longer than the last arrival: no extra datagram may follow.
      await new Promise((r) => setImmediate(r));
      assert.equal(rx.messages.length, seen, 'no datagram beyond ⌈len / segmentSize⌉ per send');
      const s = zs.stats();
      assert.equal(s.sends, cases.length + 1);
      assert.equal(s.errors, 0);
      assert.equal(s.fixed, backend === 'io_uring' ? 1 : 0, 'the pool buffer went registered (io_uring; plain memory elsewhere)');
      assert.equal(pool.stats().free, 2);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
      await pool.close();
    }
  });

  test(`${backend}: segmentSize on TCP, and segmentSize 0, 70000 or not an integer, throw ERR_URING_ZC_INVALID_ARG and queue nothing`, opts(backend, 10_000), async () => {
    const both = await tcpAndUdp(adoptOn);
    const { trx, tzs, urx, uzs } = both;
    try {
      const dest = { address: '127.0.0.1', port: urx.port };
      const buf = Buffer.alloc(4000, 1);
      throwsCode(() => tzs.send(buf, { segmentSize: 1000 }), 'ERR_URING_ZC_INVALID_ARG', 'TCP send() with segmentSize');
      throwsCode(() => tzs.sendv([buf], { segmentSize: 1000 }), 'ERR_URING_ZC_INVALID_ARG', 'TCP sendv() with segmentSize');
      for (const bad of [0, 70000, 65536, -1, 1.5, '1000', null]) {
        throwsCode(() => uzs.send(buf, { ...dest, segmentSize: bad as number }), 'ERR_URING_ZC_INVALID_ARG', `segmentSize ${JSON.stringify(bad)}`);
      }
      throwsCode(() => uzs.send(Buffer.alloc(70000), { ...dest, segmentSize: 1000 }), 'ERR_URING_ZC_INVALID_ARG', 'a GSO send of more than 65535 bytes');
      throwsCode(() => uzs.sendv([Buffer.alloc(40000), Buffer.alloc(30000)], { ...dest, segmentSize: 1000 }), 'ERR_URING_ZC_INVALID_ARG', 'a GSO sendv of more than 65535 bytes');
      for (const zs of [tzs, uzs]) assert.deepEqual({ inFlight: zs.stats().inFlight, sends: zs.stats().sends, errors: zs.stats().errors }, { inFlight: 0, sends: 0, errors: 0 });
      // The sockets still work.
      assert.equal((await uzs.send(buf, { ...dest, segmentSize: 1000 })).bytes, 4000);
      await urx.waitFor(4, 5_000);
      assert.equal((await tzs.send(buf)).bytes, 4000);
      await trx.waitForBytes(4000, 5_000);
    } finally {
      await both.close();
    }
  });

  interface SinkReport {
    rows: { step: number; len: number; bytes?: number; zeroCopy?: boolean; code?: string }[];
    stepStats: { notifications: number; fixed: number; downgraded: boolean }[];
    stats: { sends: number; errors: number; zeroCopied: number; inFlight: number; downgrades: number };
    poolStats: { free: number; inFlight: number };
  }

  test(`${backend}: in the IFB sink namespace GSO sends report zeroCopy: ${sinkZeroCopy(backend)} (plain buffers, pool buffers, forced small ones)`, { timeout: 40_000 }, async (t) => {
    const steps = [
      { len: 60000, count: 8, segmentSize: 1400 },
      { len: 40000, count: 8, segmentSize: 8000, pool: true },
      { len: 20000, count: 4, segmentSize: 20000 },
      { len: 4000, count: 4, segmentSize: 1000, zeroCopy: true },
      // Below the copy threshold without an override: a copying GSO send.
      { len: 4000, count: 4, segmentSize: 1000 },
    ];
    // The child's pool: a Ring's on io_uring, plain memory on the other backends.
    await withSink(t, backendUnavailableReason(backend, skipReason), async (sink) => {
      const report = await runPoolGsoSender<SinkReport>(sink, steps, childEnv(backend));
      assert.equal(report.rows.length, steps.reduce((a, s) => a + s.count, 0));
      for (const row of report.rows) {
        const step = steps[row.step]!;
        const zc = sinkZeroCopy(backend) && (step.len >= 16384 || step.zeroCopy === true || step.pool === true);
        assert.deepEqual(row, { step: row.step, len: step.len, bytes: step.len, zeroCopy: zc }, `step ${row.step}: ${JSON.stringify(step)}`);
      }
      report.stepStats.forEach((s, i) => {
        const step = steps[i]!;
        const zc = notifies(backend) && (step.len >= 16384 || step.zeroCopy === true || step.pool === true);
        assert.equal(s.notifications, zc ? step.count : 0, `step ${i}: notifications`);
        assert.equal(s.fixed, step.pool && backend === 'io_uring' ? step.count : 0, `step ${i}: fixed (registered: io_uring only)`);
        assert.equal(s.downgraded, false);
      });
      assert.equal(report.stats.errors, 0);
      assert.equal(report.stats.inFlight, 0);
      assert.equal(report.stats.downgrades, 0);
      assert.deepEqual(report.poolStats, { ...report.poolStats, free: 16, inFlight: 0 });
    });
  });

  test(`${backend}: a GSO send with more segments than the kernel allows rejects with its errno and the socket keeps working`, opts(backend, 10_000, { zeroCopy: [65000] }), async () => {
    const rx = await udpReceiver();
    const sock = await boundUdp();
    const zs = adoptOn(sock);
    try {
      const dest = { address: '127.0.0.1', port: rx.port };
      // 650 segments: above UDP_MAX_SEGMENTS (64, 128 on newer kernels).
      const results = await Promise.allSettled([zs.send(Buffer.alloc(65000, 2), { ...dest, segmentSize: 100 })]);
      const r = results[0]!;
      assert.equal(r.status, 'rejected');
      assert.equal(codeOf((r as PromiseRejectedResult).reason), 'EINVAL');
      const ok: SendResult = await zs.send(Buffer.alloc(3000, 3), { ...dest, segmentSize: 1000 });
      assert.equal(ok.bytes, 3000);
      await rx.waitFor(3, 5_000);
      assert.equal(rx.messages.length, 3);
      assert.deepEqual({ sends: zs.stats().sends, errors: zs.stats().errors, inFlight: zs.stats().inFlight }, { sends: 1, errors: 1, inFlight: 0 });
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
    }
  });
}
