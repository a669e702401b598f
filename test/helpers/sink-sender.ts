/**
 * Runs inside the IFB sink namespace (spawned by test/udp.test.ts through SinkNamespace.spawn):
 * adopts a dgram socket bound in the namespace and sends datagrams to `destination:port`, where
 * the sink drops them without a copy. Prints one JSON line: every send's result, and the stats.
 *
 * argv: destination port size:count [size:count ...]
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { adopt } from '../../src/index.js';
import { datagram } from './data.js';

interface Row {
  size: number;
  bytes?: number;
  zeroCopy?: boolean;
  code?: string;
}

async function main(): Promise<void> {
  const [destination, portText, ...specs] = process.argv.slice(2);
  if (destination === undefined || portText === undefined || specs.length === 0) {
    throw new Error('usage: sink-sender destination port size:count...');
  }
  const port = Number(portText);
  const sizes: number[] = [];
  for (const spec of specs) {
    const [size, count] = spec.split(':').map(Number);
    for (let i = 0; i < (count ?? 1); i++) sizes.push(size!);
  }
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '0.0.0.0');
  await once(sock, 'listening');
  // Threshold 0: every size goes zero copy (the default threshold would copy the 1 KB sends).
  // Send-only: receive: false, as the README advises (and needed for MSG_ZEROCOPY on Node >= 24, where
  // libuv would read the completions off the error queue of a socket it reads).
  const zs = adopt(sock, { zeroCopyThreshold: 0, receive: false });
  // All in flight at once: each datagram is its own request.
  const rows = await Promise.all(
    sizes.map(async (size, seq): Promise<Row> => {
      try {
        const r = await zs.send(datagram(seq, size), { address: destination, port });
        return { size, bytes: r.bytes, zeroCopy: r.zeroCopy };
      } catch (e) {
        return { size, code: String((e as { code?: unknown }).code) };
      }
    }),
  );
  const stats = zs.stats();
  await zs.close();
  sock.close();
  process.stdout.write(`${JSON.stringify({ rows, stats })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`sink-sender: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
