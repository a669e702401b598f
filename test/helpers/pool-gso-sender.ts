/**
 * Runs inside the IFB sink namespace (spawned by test/gso.test.ts and test/threshold.test.ts
 * through SinkNamespace.spawn): adopts a dgram socket bound in the namespace and sends to
 * `destination:port`, where the sink drops every packet without a copy. Steps run in order; the
 * sends of one step go in batches of `batch` (default 16), each batch awaited before the next, so
 * that the socket's copy/zero-copy history is settled before the next sends are decided.
 * Prints one JSON line: one row per send (bytes, zeroCopy or the error code, and the growth of
 * stats().notifications and stats().fixed across its batch) and the final counters.
 *
 * argv: destination port stepsJSON
 *   step: { len, count, segmentSize?, pool?: true, zeroCopy?: boolean, batch? }
 * Adopt options come from the env var POOL_GSO_ADOPT (JSON), if set; the backend from
 * URING_ZC_TEST_BACKEND (test/helpers/backends.ts; the pool is this process's Ring's on io_uring,
 * plain memory from createBufferPool() on the other backends).
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createBufferPool, Ring, type SendOptions, type SendResult } from '../../src/index.js';
import { Prng } from './data.js';
import { childAdopt, childBackend } from './backends.js';

interface Step {
  len: number;
  count: number;
  segmentSize?: number;
  pool?: boolean;
  zeroCopy?: boolean;
  batch?: number;
}

interface Row {
  step: number;
  len: number;
  bytes?: number;
  zeroCopy?: boolean;
  code?: string;
}

async function main(): Promise<void> {
  const [destination, portText, stepsText] = process.argv.slice(2);
  if (destination === undefined || portText === undefined || stepsText === undefined) {
    throw new Error('usage: pool-gso-sender destination port stepsJSON');
  }
  const steps = JSON.parse(stepsText) as Step[];
  const adoptOptions = process.env.POOL_GSO_ADOPT ? (JSON.parse(process.env.POOL_GSO_ADOPT) as object) : {};
  // A Ring where io_uring sends (its pool registered); the syscall backends send from a pool of
  // plain memory and never touch io_uring (they run here where io_uring is refused).
  const backend = childBackend();
  const ring = backend === 'io_uring' ? new Ring() : undefined;
  const pool = ring !== undefined ? ring.createBufferPool({ bufferSize: 65536, count: 16 }) : createBufferPool({ bufferSize: 65536, count: 16, backend });
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '0.0.0.0');
  await once(sock, 'listening');
  const zs = childAdopt(ring, sock, adoptOptions);
  const prng = new Prng(0x650);
  const rows: Row[] = [];
  const stepStats: { notifications: number; fixed: number; downgraded: boolean }[] = [];
  for (let s = 0; s < steps.length; s++) {
    const step = steps[s]!;
    const options: SendOptions = { address: destination, port: Number(portText) };
    if (step.segmentSize !== undefined) options.segmentSize = step.segmentSize;
    if (step.zeroCopy !== undefined) options.zeroCopy = step.zeroCopy;
    const batch = step.batch ?? 16;
    const before = zs.stats();
    for (let start = 0; start < step.count; start += batch) {
      const sends: Promise<SendResult>[] = [];
      for (let i = start; i < Math.min(step.count, start + batch); i++) {
        const buf = step.pool ? (pool.acquire() ?? (await pool.acquireAsync())).subarray(0, step.len) : Buffer.allocUnsafe(step.len);
        prng.fill(buf);
        sends.push(zs.send(buf, options));
      }
      for (const p of sends) {
        try {
          const r = await p;
          rows.push({ step: s, len: step.len, bytes: r.bytes, zeroCopy: r.zeroCopy });
        } catch (e) {
          rows.push({ step: s, len: step.len, code: String((e as { code?: unknown }).code) });
        }
      }
    }
    const after = zs.stats();
    stepStats.push({ notifications: after.notifications - before.notifications, fixed: after.fixed - before.fixed, downgraded: after.downgraded });
  }
  const stats = zs.stats();
  const poolStats = pool.stats();
  await zs.close();
  sock.close();
  await pool.close();
  await ring?.close();
  process.stdout.write(`${JSON.stringify({ rows, stepStats, stats, poolStats })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`pool-gso-sender: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
