/**
 * The installed-package smoke test (scripts/ci-install.sh, ci-arm64.sh copy it into a scratch
 * project, so that 'uring-zc' resolves from that project's node_modules as a user's code would):
 * `adopt()` sends MIB MiB over TCP loopback with whatever backend capabilities() picked, the
 * receiver hashes every byte, and the two hashes and lengths must agree.
 *
 * Usage: node smoke.mjs [MIB=64]. Prints one JSON line; exit status 0 only when intact.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adopt, capabilities } from 'uring-zc';

const total = Number(process.argv[2] ?? 64) * 1024 * 1024;
const chunk = 1024 * 1024;
const timer = setTimeout(() => {
  console.error('smoke: no result after 120 s');
  process.exit(1);
}, 120_000);

// Which addon file node-gyp-build picked: the package root is two levels above dist/src/index.js.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.resolve('uring-zc'))), '..', '..');
const addon = path.relative(root, createRequire(path.join(root, 'package.json'))('node-gyp-build').resolve(root));

const server = net.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = /** @type {net.AddressInfo} */ (server.address());
const received = new Promise((resolve) => {
  server.once('connection', (c) => {
    const h = createHash('sha256');
    let n = 0;
    c.on('data', (d) => {
      h.update(d);
      n += d.length;
    });
    c.on('end', () => resolve({ n, hash: h.digest('hex') }));
  });
});

const client = net.connect(port, '127.0.0.1');
await once(client, 'connect');
const zs = adopt(client);
const sent = createHash('sha256');
const sends = [];
for (let off = 0, i = 0; off < total; off += chunk, i++) {
  // Every chunk different (its index in each 4-byte word), so a lost or reordered chunk shows.
  const b = Buffer.alloc(Math.min(chunk, total - off));
  for (let j = 0; j + 4 <= b.length; j += 4) b.writeUInt32LE((i << 20) | (j >>> 2), j);
  sent.update(b);
  sends.push(zs.send(b));
}
const results = await Promise.all(sends);
const bytes = results.reduce((s, r) => s + r.bytes, 0);
await zs.close();
client.end();
const got = await received;
server.close();
clearTimeout(timer);
const report = {
  node: process.version,
  arch: process.arch,
  addon,
  backend: capabilities().backend,
  socketBackend: zs.backend,
  sentBytes: bytes,
  receivedBytes: got.n,
  intact: got.n === total && bytes === total && got.hash === sent.digest('hex'),
};
console.log(JSON.stringify(report));
process.exit(report.intact ? 0 : 1);
