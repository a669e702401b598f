/**
 * Runs inside a namespace whose net.core.optmem_max is tiny (test/enobufs.test.ts): MSG_ZEROCOPY
 * sends on the msg_zerocopy backend then meet ENOBUFS (no option memory for their completion
 * notifications). A TCP stream of many sends over the namespace's loopback and a burst of UDP
 * datagrams must still complete: every send settled once, the stream intact at the receiver.
 * Prints one JSON line.
 *
 * argv: sends size
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { adopt } from '../../src/index.js';
import { Prng } from './data.js';

const [sendsText, sizeText] = process.argv.slice(2);
const SENDS = Number(sendsText);
const SIZE = Number(sizeText);

const server = net.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as net.AddressInfo).port;
const received = createHash('sha256');
let receivedBytes = 0;
const gotAll = new Promise<void>((resolve) => {
  server.once('connection', (s) => {
    s.on('data', (d: Buffer) => {
      received.update(d);
      receivedBytes += d.length;
    });
    s.on('end', () => resolve());
  });
});
const client = net.connect(port, '127.0.0.1');
await once(client, 'connect');
const zs = adopt(client, { backend: 'msg_zerocopy' });
const sent = createHash('sha256');
const bufs = Array.from({ length: 16 }, (_, i) => new Prng(i + 1).bytes(SIZE));
const calls = new Array<number>(SENDS).fill(0);
const errors: string[] = [];
await new Promise<void>((resolve) => {
  let done = 0;
  for (let i = 0; i < SENDS; i++) {
    const b = bufs[i % bufs.length]!;
    sent.update(b);
    zs.send(b, { zeroCopy: true }, (err) => {
      calls[i]!++;
      if (err) errors.push(String((err as { code?: string }).code));
      if (++done === SENDS) resolve();
    });
  }
});
const tcpStats = zs.stats();
await zs.close();
client.end();
await gotAll;
server.close();

// UDP: a burst, each datagram its own zero-copy send and completion.
const rx = dgram.createSocket('udp4');
rx.bind(0, '127.0.0.1');
await once(rx, 'listening');
const tx = dgram.createSocket('udp4');
tx.bind(0, '127.0.0.1');
await once(tx, 'listening');
const uz = adopt(tx, { backend: 'msg_zerocopy' });
const dest = { address: '127.0.0.1', port: rx.address().port, zeroCopy: true };
const udp = await Promise.allSettled(Array.from({ length: SENDS }, () => uz.send(bufs[0]!.subarray(0, 1200), dest)));
await uz.close();
rx.close();
tx.close();

process.stdout.write(`${JSON.stringify({
  tcp: { sentBytes: SENDS * SIZE, receivedBytes, intact: sent.digest('hex') === received.digest('hex'), errors, calledOnce: calls.every((c) => c === 1), stats: tcpStats },
  udp: { ok: udp.filter((r) => r.status === 'fulfilled').length, failed: udp.filter((r) => r.status === 'rejected').map((r) => String(((r as PromiseRejectedResult).reason as { code?: string }).code)) },
})}\n`);
