/**
 * The copy threshold and auto-downgrade. Below `zeroCopyThreshold` (default
 * DEFAULT_ZERO_COPY_THRESHOLD) a send copies (IORING_OP_SEND: zeroCopy false and no notification),
 * at or above it goes SEND_ZC (one notification each); `{ zeroCopy }` per send overrides; pool
 * buffers always go zero copy. On loopback the kernel copies every zero-copy send, so after 64 in
 * a row the socket downgrades to copying sends (a probe every 1024 still goes zero copy), unless
 * `autoDowngrade: false`. In the IFB sink, sends at/above the threshold are zero copy and nothing
 * downgrades. Once per backend: msg_zerocopy chooses the same way (MSG_ZEROCOPY or not, its
 * error-queue ranges as the notifications); copy sends everything by copying, so the threshold
 * tests, which tell the two kinds apart by their notifications, skip there, and its sink test
 * checks that nothing claims zero copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type dgram from 'node:dgram';
import { DEFAULT_ZERO_COPY_THRESHOLD, Ring, type SendOptions, type SendResult, type ZeroCopySocket } from '../src/index.js';
import { zeroCopyUnavailableReason, throwsCode, fileRing, withSink, type LockedNeed, fileDefaultRing } from './helpers/env.js';
import { boundUdp, closeDgram, connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';
import { runPoolGsoSender } from './helpers/pool-helpers.js';
import { BACKENDS, adopterFor, backendUnavailableReason, childEnv, gatedOn, notifies, poolOn, sinkZeroCopy, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
/**
 * `need`: what a test locks besides the file's ring and the thread's default ring (the first
 * test's adopt() makes it; it stays open for the file).
 */
const NO_CHOICE = 'copy: every send is a copying sendmsg, so there is no zero-copy request to choose (no notification tells one kind from the other); the sink test below checks that nothing claims zero copy';
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}): { timeout: number; skip: string | false } => {
  if (backend === 'copy') return { timeout, skip: NO_CHOICE };
  const o = gatedOn(backend, timeout, skipReason, { ...need, rings: [256, 256, ...(need.rings ?? [])] });
  // A test with pools needs the file's Ring to make them, whatever sends them.
  return o;
};

const ring = fileRing(skipReason);
fileDefaultRing(skipReason, [256]);


/** A UDP sender adopted with `options` and a bound peer that reads and drops what it gets. */
async function udpPair(adoptOn: (s: dgram.Socket, o?: Parameters<Ring['adopt']>[1]) => ZeroCopySocket, options?: Parameters<Ring['adopt']>[1]): Promise<{ zs: ZeroCopySocket; dest: { address: string; port: number }; dispose(): Promise<void> }> {
  const sink = await boundUdp();
  const sock = await boundUdp();
  const zs = adoptOn(sock, options);
  return {
    zs,
    dest: { address: '127.0.0.1', port: sink.address().port },
    dispose: async () => {
      await zs.close();
      await closeDgram(sock as dgram.Socket);
      await closeDgram(sink);
    },
  };
}

/** Sends one buffer of `len` bytes and returns its result and how much stats().notifications grew. */
async function probe(zs: ZeroCopySocket, len: number, options: SendOptions = {}, buf?: Uint8Array): Promise<{ result: SendResult; notifications: number }> {
  const before = zs.stats().notifications;
  const result = await zs.send(buf ?? Buffer.alloc(len, 7), options);
  return { result, notifications: zs.stats().notifications - before };
}

/** Sends `count` buffers of `len` bytes in batches of `batch` (each batch awaited); returns every result. */
async function sendMany(zs: ZeroCopySocket, count: number, len: number, options: SendOptions, batch = 16): Promise<SendResult[]> {
  const buf = Buffer.alloc(len, 5);
  const out: SendResult[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    out.push(...(await Promise.all(Array.from({ length: n }, () => zs.send(buf, options)))));
  }
  return out;
}

for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend, ring);

  test(`${backend}: default threshold: below DEFAULT_ZERO_COPY_THRESHOLD copies without a notification, at/above it goes zero copy (UDP and TCP loopback)`, opts(backend, 20_000, { zeroCopy: [40000] }), async () => {
    assert.equal(DEFAULT_ZERO_COPY_THRESHOLD, 16384);
    const u = await udpPair(adoptOn);
    const rx = await tcpReceiver();
    const client = await connectTcp(rx.port);
    const tzs = adoptOn(client);
    try {
      for (const [zs, o] of [[u.zs, u.dest], [tzs, {}]] as const) {
        for (const len of [1, 1000, DEFAULT_ZERO_COPY_THRESHOLD - 1]) {
          const p = await probe(zs, len, o);
          assert.deepEqual(p, { result: { bytes: len, zeroCopy: false }, notifications: 0 }, `${zs.type} ${len} B: a copying send`);
        }
        for (const len of [DEFAULT_ZERO_COPY_THRESHOLD, 40000]) {
          const p = await probe(zs, len, o);
          // Loopback: the kernel copies anyway and says so; the notification shows it was SEND_ZC.
          assert.deepEqual(p, { result: { bytes: len, zeroCopy: false }, notifications: 1 }, `${zs.type} ${len} B: a zero-copy send`);
        }
        assert.equal(zs.stats().downgraded, false);
      }
      await rx.waitForBytes(1 + 1000 + 16383 + 16384 + 40000, 5_000);
    } finally {
      await u.dispose();
      await tzs.close();
      await destroySocket(client);
      await rx.close();
    }
  });

  test(`${backend}: zeroCopyThreshold option: the boundary follows it; 0 makes every send zero copy, Infinity none; bad values throw`, opts(backend, 20_000, { zeroCopy: [1000] }), async () => {
    const t1000 = await udpPair(adoptOn, { zeroCopyThreshold: 1000 });
    const t0 = await udpPair(adoptOn, { zeroCopyThreshold: 0 });
    const tInf = await udpPair(adoptOn, { zeroCopyThreshold: Infinity });
    try {
      assert.equal((await probe(t1000.zs, 999, t1000.dest)).notifications, 0, 'threshold 1000: 999 B copies');
      assert.equal((await probe(t1000.zs, 1000, t1000.dest)).notifications, 1, 'threshold 1000: 1000 B goes zero copy');
      assert.equal((await probe(t0.zs, 1, t0.dest)).notifications, 1, 'threshold 0: 1 B goes zero copy');
      assert.equal((await probe(tInf.zs, 60000, tInf.dest)).notifications, 0, 'threshold Infinity: 60000 B copies');
      const sock = await boundUdp();
      try {
        for (const bad of [-1, 1.5, '100', NaN, null]) {
          throwsCode(() => adoptOn(sock, { zeroCopyThreshold: bad as number }), 'ERR_URING_ZC_INVALID_ARG', `zeroCopyThreshold ${String(bad)}`);
        }
        throwsCode(() => adoptOn(sock, { autoDowngrade: 'yes' as unknown as boolean }), 'ERR_URING_ZC_INVALID_ARG', 'autoDowngrade "yes"');
        throwsCode(() => adoptOn(sock, { threshold: 1 } as never), 'ERR_URING_ZC_INVALID_ARG', 'an unknown adopt option');
        throwsCode(() => t1000.zs.send(Buffer.alloc(10), { ...t1000.dest, zeroCopy: 1 as unknown as boolean }), 'ERR_URING_ZC_INVALID_ARG', 'zeroCopy 1');
      } finally {
        await closeDgram(sock);
      }
    } finally {
      await t1000.dispose();
      await t0.dispose();
      await tInf.dispose();
    }
  });

  test(`${backend}: per-send { zeroCopy } overrides the threshold; pool buffers always go zero copy`, opts(backend, 20_000, { pools: [2 * 4096], zeroCopy: [16384] }), async () => {
    const u = await udpPair(adoptOn);
    const pool = poolOn(backend, ring, { bufferSize: 4096, count: 2 });
    try {
      const o = u.dest;
      assert.deepEqual(await probe(u.zs, 100, { ...o, zeroCopy: true }), { result: { bytes: 100, zeroCopy: false }, notifications: 1 }, '100 B forced zero copy');
      assert.deepEqual(await probe(u.zs, 30000, { ...o, zeroCopy: false }), { result: { bytes: 30000, zeroCopy: false }, notifications: 0 }, '30000 B forced copy');
      assert.equal((await probe(u.zs, 100, o, pool.acquire()!.subarray(0, 100))).notifications, 1, 'a 100-byte pool slice goes zero copy');
      assert.equal((await probe(u.zs, 100, { ...o, zeroCopy: false }, pool.acquire()!.subarray(0, 100))).notifications, 1, 'a pool slice goes zero copy even with zeroCopy: false');
      const before = u.zs.stats().notifications;
      await u.zs.sendv([Buffer.alloc(50), Buffer.alloc(50)], { ...o, zeroCopy: true });
      await u.zs.sendv([Buffer.alloc(20000), Buffer.alloc(50)], { ...o, zeroCopy: false });
      await u.zs.sendv([Buffer.alloc(50), Buffer.alloc(50)], o);
      await u.zs.sendv([Buffer.alloc(16000), Buffer.alloc(384)], o);
      assert.equal(u.zs.stats().notifications - before, 2, 'sendv: forced zero copy and a total at the threshold notify; forced copy and a small total do not');
      assert.equal(u.zs.stats().fixed, backend === 'io_uring' ? 2 : 0, 'registered-buffer sends (io_uring only)');
      assert.equal(pool.stats().free, 2);
    } finally {
      await u.dispose();
      await pool.close();
    }
  });

  test(`${backend}: auto-downgrade (UDP loopback): after 64 copied zero-copy sends the socket copies, probing with one zero-copy send in 1024`, opts(backend, 30_000, { pools: [32768], zeroCopy: [[64, 16384]] }), async () => {
    const u = await udpPair(adoptOn);
    const pool = poolOn(backend, ring, { bufferSize: 32768, count: 1 });
    try {
      const len = DEFAULT_ZERO_COPY_THRESHOLD;
      const o = u.dest;
      let results = await sendMany(u.zs, 63, len, o);
      assert.ok(results.every((r) => r.zeroCopy === false), 'loopback copies');
      assert.deepEqual(pick(u.zs), { notifications: 63, downgraded: false, downgrades: 0 }, 'after 63 copied zero-copy sends');
      await u.zs.send(Buffer.alloc(len), o);
      assert.deepEqual(pick(u.zs), { notifications: 64, downgraded: true, downgrades: 1 }, 'the 64th copied zero-copy send downgrades');

      results = await sendMany(u.zs, 1023, len, o, 64);
      assert.ok(results.every((r) => r.bytes === len && r.zeroCopy === false));
      assert.deepEqual(pick(u.zs), { notifications: 64, downgraded: true, downgrades: 1 }, '1023 sends after the downgrade copied: no notification');
      await u.zs.send(Buffer.alloc(len), o);
      assert.deepEqual(pick(u.zs), { notifications: 65, downgraded: true, downgrades: 1 }, 'the 1024th went zero copy as a probe; copied again, so still downgraded');

      // While downgraded: an explicit zeroCopy: true and a pool buffer still go zero copy.
      assert.equal((await probe(u.zs, len, { ...o, zeroCopy: true })).notifications, 1, 'zeroCopy: true beats the downgrade');
      assert.equal((await probe(u.zs, 1000, o, pool.acquire()!.subarray(0, 1000))).notifications, 1, 'a pool buffer beats the downgrade');
      assert.equal((await probe(u.zs, len, o)).notifications, 0, 'a threshold send still copies');
      assert.equal(u.zs.stats().errors, 0);
    } finally {
      await u.dispose();
      await pool.close();
    }
  });

  test(`${backend}: autoDowngrade: false keeps every send at/above the threshold zero copy on loopback`, opts(backend, 20_000, { zeroCopy: [[16, 16384]] }), async () => {
    const u = await udpPair(adoptOn, { autoDowngrade: false });
    try {
      const results = await sendMany(u.zs, 200, DEFAULT_ZERO_COPY_THRESHOLD, u.dest);
      assert.ok(results.every((r) => r.zeroCopy === false), 'loopback copies');
      assert.deepEqual(pick(u.zs), { notifications: 200, downgraded: false, downgrades: 0 });
    } finally {
      await u.dispose();
    }
  });

  test(`${backend}: sends at/above the threshold on loopback, 100 in a row, downgrade only where they were zero-copy requests the kernel copied`, gatedOn(backend, 20_000, skipReason, { zeroCopy: [[16, 16384]] }), async () => {
    // io_uring and msg_zerocopy: the kernel copies each (loopback), so the 64th downgrades. copy:
    // each send is a copy by the backend's choice, not the kernel's: the socket never downgrades
    // (it used to, after 64, and reported downgraded: true with no zero-copy send ever made).
    const u = await udpPair(adoptOn);
    try {
      const results = await sendMany(u.zs, 100, DEFAULT_ZERO_COPY_THRESHOLD, u.dest);
      assert.ok(results.every((r) => r.bytes === DEFAULT_ZERO_COPY_THRESHOLD && r.zeroCopy === false), 'loopback copies');
      const zc = notifies(backend);
      assert.deepEqual(pick(u.zs), { notifications: zc ? 64 : 0, downgraded: zc, downgrades: zc ? 1 : 0 });
    } finally {
      await u.dispose();
    }
  });

  function pick(zs: ZeroCopySocket): { notifications: number; downgraded: boolean; downgrades: number } {
    const s = zs.stats();
    return { notifications: s.notifications, downgraded: s.downgraded, downgrades: s.downgrades };
  }

  test(`${backend}: in the IFB sink namespace, sends at/above the threshold report zeroCopy: ${sinkZeroCopy(backend)} and the socket never downgrades`, { timeout: 40_000 }, async (t) => {
    const steps = [
      { len: DEFAULT_ZERO_COPY_THRESHOLD, count: 160, batch: 16 },
      { len: 60000, count: 16 },
      { len: DEFAULT_ZERO_COPY_THRESHOLD - 1, count: 8 },
    ];
    await withSink(t, backendUnavailableReason(backend, skipReason), async (sink) => {
      const report = await runPoolGsoSender<{
        rows: { step: number; len: number; bytes?: number; zeroCopy?: boolean; code?: string }[];
        stepStats: { notifications: number; fixed: number; downgraded: boolean }[];
        stats: { errors: number; downgrades: number; downgraded: boolean; inFlight: number };
      }>(sink, steps, childEnv(backend));
      assert.equal(report.rows.length, 184);
      for (const row of report.rows) {
        const zc = sinkZeroCopy(backend) && row.len >= DEFAULT_ZERO_COPY_THRESHOLD;
        assert.deepEqual(row, { step: row.step, len: row.len, bytes: row.len, zeroCopy: zc }, `step ${row.step}`);
      }
      assert.deepEqual(report.stepStats.map((s) => s.notifications), notifies(backend) ? [160, 16, 0] : [0, 0, 0], 'one notification per zero-copy send, none for copies (copy: none at all)');
      assert.ok(report.stepStats.every((s) => !s.downgraded));
      assert.deepEqual({ errors: report.stats.errors, downgrades: report.stats.downgrades, downgraded: report.stats.downgraded, inFlight: report.stats.inFlight }, {
        errors: 0,
        downgrades: 0,
        downgraded: false,
        inFlight: 0,
      });
    });
  });
}
