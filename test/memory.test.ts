/**
 * Memory stays flat under constant load, and an idle socket does not hold what the caller let go.
 * The heap is measured after full collections (gc exposed through v8 flags): what is asserted is
 * growth per send, not time.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Ring, type ZeroCopySocket } from '../src/index.js';
import { turns, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { boundUdp, closeDgram, connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';

const skipReason = zeroCopyUnavailableReason();
const opts = (timeout: number) => ({ timeout, skip: skipReason ?? false });

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function heapAfterGc(): Promise<number> {
  await turns(3);
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * Keeps `outstanding` sends in flight on `zs` (each callback sends again) until `total` have
 * settled. While it runs (the queues never empty), the heap is measured after full collections
 * when `from` and `to` sends have settled; resolves with the growth between the two, and the
 * number of failed sends.
 */
function sustain(zs: ZeroCopySocket, buf: Buffer, outstanding: number, total: number, from: number, to: number,
  dest?: { address: string; port: number }): Promise<{ growth: number; failed: number }> {
  return new Promise((resolve) => {
    let started = 0;
    let settled = 0;
    let failed = 0;
    let at = 0;
    let growth = 0;
    const cb = (err: Error | null): void => {
      settled++;
      if (err !== null) failed++;
      if (settled === from || settled === to) {
        gc();
        gc();
        const heap = process.memoryUsage().heapUsed;
        if (settled === from) at = heap;
        else growth = heap - at;
      }
      if (started < total) {
        started++;
        zs.send(buf, dest, cb);
      } else if (settled === total) {
        resolve({ growth, failed });
      }
    };
    for (; started < outstanding; started++) zs.send(buf, dest, cb);
  });
}

test('UDP: with more sends outstanding than the ring takes, the heap does not grow with the number of sends', opts(120_000), async () => {
  // entries 4: at most 4 datagram requests in the kernel, the other 60 wait in the backlog, which never empties.
  const ring = new Ring({ entries: 4 });
  const rx = dgram.createSocket('udp4');
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  const tx = await boundUdp('udp4');
  const zs = ring.adopt(tx, { receive: false });
  const dest = { address: '127.0.0.1', port: rx.address().port };
  const buf = Buffer.alloc(64, 1);
  try {
    const { growth, failed } = await within(sustain(zs, buf, 64, 400_000, 50_000, 350_000, dest), 60_000, '400k sends');
    assert.equal(failed, 0);
    // 8 bytes per send (a backlog array compacted only when it runs empty) would be 2.4 MB.
    assert.ok(growth < 600_000, `heap grew ${growth} bytes over 300k sends while the backlog never emptied`);
  } finally {
    await zs.close();
    await closeDgram(tx);
    await closeDgram(rx);
    await ring.close();
  }
});

test('TCP: with more sends queued than a stream batch takes, the heap does not grow with the number of sends', opts(120_000), async () => {
  const ring = new Ring();
  const rx = await tcpReceiver();
  const client = await connectTcp(rx.port);
  const zs = ring.adopt(client);
  const buf = Buffer.alloc(256, 2);
  try {
    // 200 outstanding: more than a batch (64), so the stream queue never runs empty.
    const { growth, failed } = await within(sustain(zs, buf, 200, 400_000, 50_000, 350_000), 90_000, '400k sends');
    assert.equal(failed, 0);
    assert.ok(growth < 600_000, `heap grew ${growth} bytes over 300k sends while the stream queue never emptied`);
  } finally {
    await zs.close();
    await destroySocket(client);
    await rx.close();
    await ring.close();
  }
});

test('an idle socket keeps no reference to the memory of its last send (UDP and TCP)', opts(30_000), async () => {
  const ring = new Ring();
  const urx = dgram.createSocket('udp4');
  urx.bind(0, '127.0.0.1');
  await once(urx, 'listening');
  const utx = await boundUdp('udp4');
  const uzs = ring.adopt(utx);
  const rx = await tcpReceiver();
  const client = await connectTcp(rx.port);
  const tzs = ring.adopt(client);
  try {
    const refs: WeakRef<ArrayBuffer>[] = [];
    for (const [zs, dest] of [[uzs, { address: '127.0.0.1', port: urx.address().port }], [tzs, undefined]] as const) {
      for (const size of [4096, 60000]) {
        // A small view of a large ArrayBuffer, sent once and awaited; then the caller drops both.
        let big: ArrayBuffer | undefined = new ArrayBuffer(32 << 20);
        refs.push(new WeakRef(big));
        await zs.send(new Uint8Array(big, 4096, size), dest);
        await zs.sendv([new Uint8Array(big, 0, 100), new Uint8Array(big, 100, 100)], dest);
        big = undefined;
      }
    }
    await heapAfterGc();
    await heapAfterGc();
    assert.deepEqual(refs.map((r) => r.deref() === undefined), refs.map(() => true), 'every ArrayBuffer was collected');
  } finally {
    await uzs.close();
    await tzs.close();
    await closeDgram(utx);
    await closeDgram(urx);
    await destroySocket(client);
    await rx.close();
    await ring.close();
  }
});
