/**
 * TCP sends from a pool of registered buffers: each buffer is refilled the moment it comes back
 * (at its notification), many sends in flight, bytes arrive in order.
 * Run: node dist/examples/tcp-pool.js
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Ring } from 'uring-zc';

const total = 64 * 1024 * 1024;
const server = net.createServer((c) => {
  const h = createHash('sha256');
  let n = 0;
  c.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  c.on('end', () => {
    console.log(`received ${n} bytes, sha256 ${h.digest('hex').slice(0, 16)}`);
    server.close();
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as net.AddressInfo;

const ring = new Ring();
const pool = ring.createBufferPool({ bufferSize: 64 * 1024, count: 32 });
const c = net.connect(port, '127.0.0.1');
await once(c, 'connect');
const zs = ring.adopt(c);

const sent = createHash('sha256');
const sends: Promise<unknown>[] = [];
for (let off = 0, i = 0; off < total; off += pool.bufferSize, i++) {
  const b = await pool.acquireAsync(); // waits while all 32 are in flight
  b.fill(i & 0xff);
  sent.update(b);
  sends.push(zs.send(b)); // FIXED_BUF; b returns to the pool at its notification
}
await Promise.all(sends);
console.log(`sent ${total} bytes, sha256 ${sent.digest('hex').slice(0, 16)}`, zs.stats(), pool.stats());
await zs.close();
c.end();
await ring.close();
