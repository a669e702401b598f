/**
 * Child of test/sendv.test.ts (isolated because a failure here can leave a request stuck in the
 * ring, which would keep the test process alive): a TCP sendv of `[empty chunk, 16 MiB]` to a peer
 * that reads nothing and then resets the connection. The kernel reports the bytes it sent before
 * the reset (a short result), so the library continues the send from that offset and the
 * continuation fails. Prints one JSON line: how the sendv settled (or that it did not within 2 s),
 * any uncaught exception, and the socket's counters.
 *
 * argv: 'empty' | 'plain' (without the empty chunk, for comparison)
 */
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ring } from '../../src/index.js';
import { childAdopt, childBackend } from './backends.js';

const uncaught: string[] = [];
process.on('uncaughtException', (e: Error & { code?: string }) => {
  uncaught.push(`${e.code ?? e.name}: ${e.message}`);
});

async function main(): Promise<void> {
  const mode = process.argv[2] === 'plain' ? 'plain' : 'empty';
  // A Ring only for io_uring: the syscall backends never call io_uring_setup.
  const ring = childBackend() === 'io_uring' ? new Ring() : undefined;
  let peer: net.Socket | undefined;
  const server = net.createServer({ pauseOnCreate: true } as net.ServerOpts, (s) => {
    peer = s;
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  while (peer === undefined) await sleep(1);
  const zs = childAdopt(ring, client);
  const big = Buffer.alloc(16 << 20, 0x61);
  const chunks = mode === 'empty' ? [Buffer.alloc(0), big] : [big];
  let outcome: { settled: boolean; bytes?: number; code?: string } = { settled: false };
  const p = zs.sendv(chunks).then(
    (r) => (outcome = { settled: true, bytes: r.bytes }),
    (e: { code?: string }) => (outcome = { settled: true, code: String(e.code) }),
  );
  // Let the send fill the peer's window and the send buffer, then reset the connection.
  await sleep(50);
  peer.resetAndDestroy();
  await Promise.race([p, sleep(2000)]);
  process.stdout.write(`${JSON.stringify({ mode, outcome, uncaught, stats: zs.stats() })}\n`);
  // A stuck request keeps the ring (and this process) alive: exit explicitly.
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`pool-sendv-reset: ${String((e as Error)?.stack ?? e)}\n`);
  process.exit(1);
});
