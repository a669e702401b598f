/**
 * Worker for test/worker.test.ts: allocates Buffers of 64 KiB..2 MiB, fills them with 0x5a and
 * keeps the last `liveBytes` of them alive, for `ms` milliseconds or `maxBytes` allocated,
 * whichever comes first; then posts the bytes it allocated. Memory freed by a dead worker and
 * reused here shows up in a stream as 0x5a.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { ms, maxBytes, liveBytes } = workerData as { ms: number; maxBytes: number; liveBytes: number };
const live: Buffer[] = [];
let liveSum = 0;
let total = 0;
const end = performance.now() + ms;
let size = 64 << 10;
while (performance.now() < end && total < maxBytes) {
  size = size >= 2 << 20 ? 64 << 10 : size * 2;
  const b = Buffer.allocUnsafe(size).fill(0x5a);
  live.push(b);
  liveSum += size;
  total += size;
  while (liveSum > liveBytes) liveSum -= live.shift()!.length;
  // Let V8 free what was dropped now and then (the allocations above are outside its heap).
  if ((total & ((64 << 20) - 1)) < size) await new Promise((r) => setImmediate(r));
}
parentPort!.postMessage(total);
