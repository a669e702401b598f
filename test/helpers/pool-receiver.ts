/**
 * Runs inside namespace b of a veth pair (spawned by test/pool.test.ts): listens on `host`, port 0,
 * prints `{"port": N}`, accepts one connection and checks every byte of it, in order, against the
 * block stream (pool-helpers.ts plan/fillBlock). At the end of the stream prints one JSON line:
 * bytes received, bytes verified, the first mismatch (-1 when none) and the stream's sha256.
 *
 * argv: host seed bufferSize minBytes
 */
import net from 'node:net';
import { once } from 'node:events';
import { BlockVerifier, plan } from './pool-helpers.js';

async function main(): Promise<void> {
  const [host, seedText, sizeText, minText] = process.argv.slice(2);
  if (host === undefined || seedText === undefined || sizeText === undefined || minText === undefined) {
    throw new Error('usage: pool-receiver host seed bufferSize minBytes');
  }
  const seed = Number(seedText);
  const verifier = new BlockVerifier(seed, plan(seed, Number(sizeText), Number(minText)));
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
  const [conn] = (await once(server, 'connection')) as [net.Socket];
  server.close();
  conn.on('data', (chunk: Buffer) => verifier.push(chunk));
  await once(conn, 'end');
  process.stdout.write(
    `${JSON.stringify({
      expected: verifier.expected,
      received: verifier.received,
      verified: verifier.verified,
      mismatchAt: verifier.mismatchAt,
      complete: verifier.complete,
      sha256: verifier.digest(),
    })}\n`,
  );
  conn.end();
}

main().catch((e: unknown) => {
  process.stderr.write(`pool-receiver: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
