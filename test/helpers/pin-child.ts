/**
 * Spawned by test/pinning.test.ts as an unprivileged user (no CAP_IPC_LOCK) under a small
 * RLIMIT_MEMLOCK. Mode "send": one 16 MiB TCP send and one 60000-byte UDP datagram with adopt()'s
 * defaults (both zero copy by the threshold, both over the limit), each to a receiver in this
 * process that checks the bytes. Mode "ring": what capabilities() and new Ring() say. Prints one
 * JSON line.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { adopt, capabilities, Ring } from '../../src/index.js';

function sha1(b: Uint8Array): string {
  return createHash('sha1').update(b).digest('hex');
}

async function sendMode(out: Record<string, unknown>): Promise<void> {
  const payload = Buffer.alloc(16 << 20);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  const hash = createHash('sha1');
  let received = 0;
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      hash.update(d);
      received += d.length;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(c, 'connect');
  const zs = adopt(c);
  const r = await zs.send(payload);
  for (let i = 0; i < 500 && received < payload.length; i++) await new Promise((res) => setTimeout(res, 10));
  out.tcp = { bytes: r.bytes, zeroCopy: r.zeroCopy, pinFallbacks: zs.stats().pinFallbacks, intact: received === payload.length && hash.digest('hex') === sha1(payload) };
  await zs.close();
  c.destroy();
  server.close();

  const rx = dgram.createSocket('udp4');
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  const tx = dgram.createSocket('udp4');
  tx.bind(0, '127.0.0.1');
  await once(tx, 'listening');
  const uzs = adopt(tx);
  const dgramPayload = payload.subarray(0, 60000);
  const arrived = once(rx, 'message') as Promise<[Buffer]>;
  const u = await uzs.send(dgramPayload, { address: '127.0.0.1', port: rx.address().port });
  const [msg] = await arrived;
  out.udp = { bytes: u.bytes, pinFallbacks: uzs.stats().pinFallbacks, intact: msg.equals(dgramPayload) };
  await uzs.close();
  tx.close();
  rx.close();
}

async function ringMode(out: Record<string, unknown>): Promise<void> {
  try {
    const r = new Ring();
    out.ring = { created: true };
    await r.close();
  } catch (e) {
    const x = e as { code?: string; message?: string };
    out.ring = { created: false, code: x.code, message: x.message };
  }
}

async function main(): Promise<void> {
  const caps = capabilities();
  const out: Record<string, unknown> = { uid: process.getuid?.(), memlockLimit: caps.memlockLimit, ioUring: caps.ioUring, sendZc: caps.sendZc, defaultRing: caps.defaultRing, reason: caps.reason ?? null };
  if (caps.ioUring && caps.sendZc) {
    if (process.argv[2] === 'ring') await ringMode(out);
    else if (caps.defaultRing) await sendMode(out);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`pin-child: ${String((e as Error)?.stack ?? e)}\n`);
  // Its sockets would keep it alive: a failure must end the child, not leave the test waiting.
  process.exit(1);
});
