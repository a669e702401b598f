/**
 * Pool slices at every boundary: a view of a pool buffer lends that buffer and no other; an empty
 * view lends nothing (it reads no memory, and where two buffers meet it names neither); views
 * across two buffers or outside the pool are refused with ERR_URING_ZC_INVALID_ARG. Once per
 * backend (the pool is the file's Ring's on io_uring, plain memory from createBufferPool() on the
 * others; what is lent is the socket layer's, whoever sends).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BufferPool, ZeroCopySocket } from '../src/index.js';
import { fileRing, poolUnavailableReason, throwsCode } from './helpers/env.js';
import { boundUdp, closeDgram, udpReceiver, type UdpReceiver } from './helpers/net.js';
import { BACKENDS, adopterFor, backendUnavailableReason, poolOn, type Backend } from './helpers/backends.js';

const skipReason = poolUnavailableReason();
const ring = fileRing(skipReason);
const SIZE = 1000; // not a page multiple: boundaries fall inside pages too
const COUNT = 4;
/** io_uring's tests need the file's Ring for their pool (skipReason); every test the backend that sends. */
const opts = (backend: Backend): { timeout: number; skip: string | false } => ({ timeout: 20_000, skip: (backend === 'io_uring' ? skipReason : null) ?? backendUnavailableReason(backend, skipReason) ?? false });

function acquireAll(pool: BufferPool): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < COUNT; i++) out.push(pool.acquire()!);
  // acquire() pops from the end of its free list: sort by address so out[i] is buffer i.
  return out.sort((a, b) => a.byteOffset - b.byteOffset);
}

/** A pool of COUNT buffers of SIZE bytes and a UDP socket adopted on the file's ring, sending to a loopback receiver; all closed after `fn`. */
async function withPool(backend: Backend, adoptOn: (s: import('node:dgram').Socket) => ZeroCopySocket, fn: (pool: BufferPool, zs: ZeroCopySocket, dest: { address: string; port: number }, rx: UdpReceiver) => Promise<void>): Promise<void> {
  const pool = poolOn(backend, ring, { bufferSize: SIZE, count: COUNT });
  const rx = await udpReceiver('udp4');
  const tx = await boundUdp('udp4');
  const zs = adoptOn(tx);
  try {
    await fn(pool, zs, { address: '127.0.0.1', port: rx.port }, rx);
  } finally {
    await zs.close();
    await closeDgram(tx);
    await rx.close();
    await pool.close();
  }
}

for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend, ring);

  test(`${backend}: an empty view at either end of a pool buffer lends nothing: the buffers the caller holds stay its own`, opts(backend), async () => {
    await withPool(backend, adoptOn, async (pool, zs, dest, rx) => {
        const bufs = acquireAll(pool);
        for (const [i, b] of bufs.entries()) {
          for (const view of [b.subarray(b.length), b.subarray(0, 0), b.subarray(500, 500)]) {
            const r = await zs.send(view, dest);
            assert.equal(r.bytes, 0);
            const rv = await zs.sendv([view], dest);
            assert.equal(rv.bytes, 0);
            assert.deepEqual([pool.stats().free, pool.stats().inFlight], [0, 0], `buffer ${i}: an empty view lent no buffer`);
          }
        }
        // Every buffer is still held by the caller: release() of each works once.
        for (const b of bufs) pool.release(b);
        assert.equal(pool.stats().free, COUNT);
    });
  });

  test(`${backend}: a one-byte view at the first and last byte of each buffer lends that buffer, which returns to the pool at its settle`, opts(backend), async () => {
    await withPool(backend, adoptOn, async (pool, zs, dest, rx) => {
        for (const at of ['first', 'last'] as const) {
          const bufs = acquireAll(pool);
          for (const [i, b] of bufs.entries()) {
            b.fill(i + 1);
            const view = at === 'first' ? b.subarray(0, 1) : b.subarray(b.length - 1);
            const p = zs.send(view, dest);
            assert.equal(pool.stats().inFlight, 1, `${at} byte of buffer ${i}: one buffer lent`);
            await p;
            assert.equal(pool.stats().free, i + 1, `${at} byte of buffer ${i}: that buffer (and only it) came back`);
            // It is the caller's no more: releasing it now is a double release.
            throwsCode(() => pool.release(b), 'ERR_URING_ZC_INVALID_STATE', `${at} byte of buffer ${i}: released twice`);
          }
          await rx.waitFor(COUNT * (at === 'first' ? 1 : 2), 5_000);
        }
        assert.deepEqual(rx.messages.map((m) => [...m.data]), [[1], [2], [3], [4], [1], [2], [3], [4]], 'each send carried its own buffer\'s byte');
    });
  });

  test(`${backend}: views across two buffers, before the first or past the last, and an empty release between two buffers throw ERR_URING_ZC_INVALID_ARG and lend nothing`, opts(backend), async () => {
    const pool = poolOn(backend, ring, { bufferSize: SIZE, count: COUNT });
    const tx = await boundUdp('udp4');
    const zs = adoptOn(tx);
    const dest = { address: '127.0.0.1', port: 9 };
    try {
      const bufs = acquireAll(pool);
      const mem = bufs[0]!.buffer;
      const start = bufs[0]!.byteOffset;
      for (let i = 0; i + 1 < COUNT; i++) {
        const across = Buffer.from(mem, start + (i + 1) * SIZE - 1, 2);
        throwsCode(() => zs.send(across, dest), 'ERR_URING_ZC_INVALID_ARG', `a view across buffers ${i} and ${i + 1}`);
        throwsCode(() => zs.sendv([across], dest), 'ERR_URING_ZC_INVALID_ARG', `sendv: a view across buffers ${i} and ${i + 1}`);
        throwsCode(() => pool.release(bufs[i]!.subarray(SIZE)), 'ERR_URING_ZC_INVALID_ARG', `release of an empty view between buffers ${i} and ${i + 1}`);
      }
      if (start > 0) {
        throwsCode(() => zs.send(Buffer.from(mem, start - 1, 1), dest), 'ERR_URING_ZC_INVALID_ARG', 'a view before the first buffer');
      }
      if (start + COUNT * SIZE < mem.byteLength) {
        throwsCode(() => zs.send(Buffer.from(mem, start + COUNT * SIZE, 1), dest), 'ERR_URING_ZC_INVALID_ARG', 'a view past the last buffer');
      }
      assert.deepEqual([pool.stats().free, pool.stats().inFlight], [0, 0], 'nothing was lent');
      // An empty view at the pool's very end can only be the last buffer's.
      pool.release(bufs[COUNT - 1]!.subarray(SIZE));
      for (const b of bufs.slice(0, -1)) pool.release(b);
      assert.equal(pool.stats().free, COUNT);
    } finally {
      await zs.close();
      await closeDgram(tx);
      await pool.close();
    }
  });
}
