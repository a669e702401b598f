/**
 * Zero-copy UDP sends with a per-send destination, Node-style callbacks and promises.
 * Run: node dist/examples/udp-send.js [address] [port]   (default: a local receiver on 127.0.0.1;
 * loopback always copies, so expect zeroCopy: false there: see README, "Capabilities").
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { adopt, capabilities } from 'uring-zc';

const caps = capabilities();
if (!caps.sendZc) {
  console.error(`zero-copy send is not available here: ${caps.reason ?? 'unknown'}`);
  process.exit(1);
}

const rx = dgram.createSocket('udp4');
rx.bind(0, '127.0.0.1');
await once(rx, 'listening');
let received = 0;
rx.on('message', () => received++);
const address = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? rx.address().port);

const sock = dgram.createSocket('udp4');
sock.bind(0);
await once(sock, 'listening');
const zs = adopt(sock, { zeroCopyThreshold: 0 }); // this thread's default ring

const payload = Buffer.alloc(32 * 1024, 0x61);
const dest = { address, port }; // one options object for every send
const first = await zs.send(payload, dest); // resolves at the kernel's notification
console.log('first send', first);

// The callback form allocates nothing per send; keep 32 in flight, 1000 in all.
let started = 0;
let done = 0;
await new Promise<void>((resolve, reject) => {
  const next = (): void => {
    if (started === 1000) return;
    started++;
    zs.send(payload, dest, (err) => {
      if (err) return reject(err);
      if (++done === 1000) resolve();
      else next();
    });
  };
  for (let i = 0; i < 32; i++) next();
});

await zs.close(); // after every send was released
console.log('stats', zs.stats());
setTimeout(() => {
  console.log(`received ${received} datagrams locally (a receive buffer that is not read in time drops the rest)`);
  rx.close();
  sock.close();
}, 100);
