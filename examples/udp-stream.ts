/**
 * A paced UDP streamer (media, telemetry, QUIC-style): datagrams of `--segment` bytes at
 * `--rate` Mbit/s, sent as UDP GSO batches — one zero-copy send carries up to 64 KiB as many
 * datagrams, which the kernel cuts (UDP_SEGMENT) — every datagram numbered, so the receiver can
 * count loss and reordering. Each batch is written into its own buffer of a registered pool and
 * the buffer goes back to the pool by itself when the kernel has released it: the sender never
 * writes into memory the kernel still reads.
 *
 * Run: node dist/examples/udp-stream.js [--address A --port P] [--rate MBIT] [--segment BYTES] [--seconds S]
 * Without --address it streams to a receiver of its own on 127.0.0.1 and prints what arrived.
 * (Loopback always copies at the receiver: expect zeroCopy false there; into a NIC or the
 * benchmark's sink namespace the batches go zero copy.)
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { adopt, capabilities, Ring } from 'uring-zc';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    port: { type: 'string' },
    rate: { type: 'string', default: '400' },
    segment: { type: 'string', default: '1200' },
    seconds: { type: 'string', default: '2' },
  },
});
const rateBytes = (Number(values.rate) * 1e6) / 8; // per second
const segment = Number(values.segment);
const seconds = Number(values.seconds);
if (!(rateBytes > 0) || !(segment >= 16 && segment <= 8192) || !(seconds > 0)) {
  console.error('--rate must be > 0 Mbit/s, --segment 16..8192 bytes, --seconds > 0');
  process.exit(2);
}
// One GSO batch: as many whole datagrams as fit in 64 KiB (and at most 64, the kernel's limit on
// older kernels).
const perBatch = Math.min(64, Math.floor(65_000 / segment));
const batchBytes = perBatch * segment;

// The receiver, when streaming to ourselves: counts datagrams and checks their numbers.
let rx: dgram.Socket | undefined;
let received = 0;
let highest = -1;
let outOfOrder = 0;
if (values.address === undefined) {
  rx = dgram.createSocket({ type: 'udp4', recvBufferSize: 16 << 20 });
  rx.on('message', (m) => {
    received++;
    const seq = m.readUInt32BE(0);
    if (seq < highest) outOfOrder++;
    else highest = seq;
  });
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
}
const dest = { address: values.address ?? '127.0.0.1', port: Number(values.port ?? rx!.address().port), segmentSize: segment };

const sock = dgram.createSocket('udp4');
sock.bind(0);
await once(sock, 'listening');
const caps = capabilities();
console.error(`backend: ${caps.backend}${caps.backend === 'io_uring' ? '' : ` (io_uring: ${caps.backends.io_uring.reason})`}`);

// A pool of registered buffers where io_uring works (plain memory on the other backends is not
// needed: send() of a Buffer works everywhere and is released the same way).
const ring = caps.backend === 'io_uring' ? new Ring() : undefined;
const pool = ring?.createBufferPool({ bufferSize: batchBytes, count: 64 });
const zs = ring ? ring.adopt(sock, { receive: false }) : adopt(sock, { receive: false });

let seq = 0;
let sentBytes = 0;
let batches = 0;
let zeroCopied = 0;
let failed: Error | undefined;
const started = performance.now();
const deadline = started + seconds * 1000;

/** Fills one batch's datagrams: a sequence number, then a pattern. */
function fill(buf: Buffer): void {
  for (let i = 0; i < perBatch; i++) {
    const o = i * segment;
    buf.writeUInt32BE(seq++, o);
    buf.fill(seq & 0xff, o + 4, o + segment);
  }
}

// Pacing: every millisecond, send what the rate allows since the start (a token bucket whose
// depth is one batch); a pool buffer not yet released means the kernel is behind: wait for it.
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    if (now >= deadline || failed) return resolve();
    while (sentBytes + batchBytes <= ((now - started) / 1000) * rateBytes) {
      const buf = pool ? pool.acquire() : Buffer.allocUnsafe(batchBytes);
      if (buf === null) break; // all 64 in flight
      fill(buf);
      sentBytes += batchBytes;
      batches++;
      zs.send(buf, dest, (err, _bytes, zeroCopy) => {
        if (err) failed ??= err;
        else if (zeroCopy) zeroCopied++;
      });
    }
    setTimeout(tick, 1);
  };
  tick();
});
await zs.close(); // every batch released
const elapsed = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 100)); // the last datagrams reach the receiver
const report = {
  backend: zs.backend,
  datagrams: seq,
  batches,
  mbitPerSecond: Number(((sentBytes * 8) / elapsed / 1e6).toFixed(1)),
  zeroCopyBatches: zeroCopied,
  error: failed ? String((failed as { code?: string }).code ?? failed) : null,
  ...(rx ? { received, lost: seq - received, outOfOrder } : {}),
};
console.log(JSON.stringify(report));
rx?.close();
sock.close();
await pool?.close();
await ring?.close();
