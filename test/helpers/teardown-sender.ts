/**
 * Worker for test/worker.test.ts: connects to the receiver, adopts the connection on this
 * thread's default ring (or the backend in workerData) and streams `total` bytes of the pattern in `chunk`-byte zero-copy sends,
 * each a fresh Buffer, `window` of them accepted by the library at a time. Once `stallMs` passed
 * since the last send settled (the peer does not read: sends are stuck in the kernel), it posts
 * 'stalled' with its counts, and with `exit: true` calls process.exit() itself right after.
 */
import { once } from 'node:events';
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { adopt } from '../../src/index.js';
import { fillPattern } from './stream-pattern.js';

interface SenderData {
  port: number;
  total: number;
  chunk: number;
  window: number;
  stallMs: number;
  exit: boolean;
  /** The backend the test runs (default: auto). */
  backend?: 'io_uring' | 'msg_zerocopy' | 'copy';
}

const d = workerData as SenderData;
const s = net.connect({ port: d.port, host: '127.0.0.1' });
s.on('error', () => {});
await once(s, 'connect');
const zs = adopt(s, { zeroCopyThreshold: 0, autoDowngrade: false, backend: d.backend ?? 'auto' });
if (d.backend !== undefined && zs.backend !== d.backend) throw new Error(`adopted on ${zs.backend}, not ${d.backend}`);
let next = 0;
let issued = 0;
let settled = 0;
let lastSettle = performance.now();
const issue = (): void => {
  while (issued - settled < d.window && next < d.total) {
    const b = Buffer.allocUnsafe(d.chunk);
    fillPattern(b, next);
    next += d.chunk;
    issued++;
    zs.send(b, undefined, () => {
      settled++;
      lastSettle = performance.now();
      issue();
    });
  }
};
issue();
// Bounded: the stream is far longer than the peer's buffers, so it stalls within a few seconds.
const deadline = performance.now() + 20_000;
const watch = setInterval(() => {
  const now = performance.now();
  if (now - lastSettle < d.stallMs && now < deadline) return;
  clearInterval(watch);
  parentPort!.postMessage({ issued, settled, inFlight: zs.stats().inFlight });
  if (d.exit) process.exit(0);
}, 20);
