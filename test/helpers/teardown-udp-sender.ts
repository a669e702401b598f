/**
 * Worker for teardown-bound.ts: sends `count` zero-copy datagrams of `size` bytes to
 * `address`:9 on this thread's default ring, then (100 ms later, while the qdisc still holds
 * them) posts its counts and waits to be terminated.
 */
import dgram from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { adopt } from '../../src/index.js';
import { fillPattern } from './stream-pattern.js';

const { address, count, size } = workerData as { address: string; count: number; size: number };
const s = dgram.createSocket('udp4');
await new Promise<void>((r) => s.bind(0, () => r()));
const zs = adopt(s, { zeroCopyThreshold: 0, autoDowngrade: false, receive: false });
let settled = 0;
for (let i = 0; i < count; i++) {
  const b = Buffer.allocUnsafe(size);
  fillPattern(b, i * size);
  zs.send(b, { address, port: 9 }, () => settled++);
}
setTimeout(() => parentPort!.postMessage({ issued: count, settled, inFlight: zs.stats().inFlight }), 100);
