/**
 * Runs inside namespace a of a veth pair (spawned by test/pool.test.ts): connects to host:port,
 * adopts the socket on its own Ring, and sends the block stream (pool-helpers.ts) from a buffer
 * pool, refilling each buffer as it comes back. Prints one JSON line: the run report and the
 * socket's and pool's counters after every send settled.
 *
 * argv: host port seed bufferSize count minBytes
 */
import net from 'node:net';
import { once } from 'node:events';
import { createBufferPool, Ring } from '../../src/index.js';
import { plan, sendFromPool } from './pool-helpers.js';
import { childAdopt, childBackend } from './backends.js';

async function main(): Promise<void> {
  const [host, portText, seedText, sizeText, countText, minText] = process.argv.slice(2);
  if (host === undefined || portText === undefined || seedText === undefined || sizeText === undefined || countText === undefined || minText === undefined) {
    throw new Error('usage: pool-sender host port seed bufferSize count minBytes');
  }
  const seed = Number(seedText);
  const bufferSize = Number(sizeText);
  // io_uring: this Ring's registered pool; the other backends: a pool of plain memory (no Ring).
  const backend = childBackend();
  const ring = backend === 'io_uring' ? new Ring() : undefined;
  const pool = ring !== undefined ? ring.createBufferPool({ bufferSize, count: Number(countText) }) : createBufferPool({ bufferSize, count: Number(countText), backend });
  const sock = net.connect({ host, port: Number(portText) });
  await once(sock, 'connect');
  sock.resume(); // read the receiver's end of stream
  const zs = childAdopt(ring, sock); // the parent's backend (URING_ZC_TEST_BACKEND)
  const report = await sendFromPool(zs, pool, seed, plan(seed, bufferSize, Number(minText)));
  const stats = zs.stats();
  const poolStats = pool.stats();
  await zs.close();
  sock.end();
  await once(sock, 'close');
  await pool.close();
  await ring?.close();
  process.stdout.write(`${JSON.stringify({ report, stats, poolStats })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`pool-sender: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
