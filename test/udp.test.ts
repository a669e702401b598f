/**
 * UDP: datagrams over loopback (IPv4 and IPv6, per-send destination on an unconnected socket, and
 * a connected socket without one) arrive intact and report `zeroCopy: false` (local delivery
 * copies); datagrams into the IFB sink namespace report `zeroCopy: true` (false on the copy
 * backend). Once per backend.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type dgram from 'node:dgram';
import { adopt, Ring, type SendResult, type ZeroCopySocket } from '../src/index.js';
import { collectChild } from './helpers/pool-helpers.js';
import { datagram } from './helpers/data.js';
import { zeroCopyUnavailableReason, withSink, type LockedNeed, fileDefaultRing } from './helpers/env.js';
import { boundUdp, closeDgram, udpReceiver, type UdpReceiver } from './helpers/net.js';
import { BACKENDS, adopterFor, backendUnavailableReason, gatedOn, notifies, sinkZeroCopy, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
fileDefaultRing(skipReason);
/** `need`: what a test locks besides the thread's default ring (the first adopt() makes it). */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });

/** Sizes up to the largest IPv4 UDP payload (65535 - 20 - 8). */
const SIZES = [1, 2, 100, 1472, 1473, 4096, 9000, 16384, 32768, 65507];

/**
 * Sends `count` seeded datagrams, in batches small enough for the receivers' buffers, each to
 * `target(seq)`. Waits for each batch to arrive before the next, so that loopback never drops.
 */
async function sendBatches(
  zs: ZeroCopySocket,
  count: number,
  sizeOf: (seq: number) => number,
  target: (seq: number) => { rx: UdpReceiver; dest: { address: string; port: number } | undefined },
): Promise<SendResult[]> {
  const results: SendResult[] = [];
  const batch = 16;
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const expectAt = new Map<UdpReceiver, number>();
    const promises: Promise<SendResult>[] = [];
    for (let seq = start; seq < end; seq++) {
      const { rx, dest } = target(seq);
      expectAt.set(rx, (expectAt.get(rx) ?? rx.messages.length) + 1);
      promises.push(dest === undefined ? zs.send(datagram(seq, sizeOf(seq))) : zs.send(datagram(seq, sizeOf(seq)), dest));
    }
    results.push(...(await Promise.all(promises)));
    for (const [rx, n] of expectAt) await rx.waitFor(n, 10_000);
  }
  return results;
}

/** Every datagram `rx` got is intact, came from `from`, and the set of sequence numbers is `seqs`. */
function checkReceived(rx: UdpReceiver, seqs: number[], sizeOf: (seq: number) => number, fromPort: number): void {
  assert.equal(rx.messages.length, seqs.length, 'datagram count');
  const got = new Set<number>();
  for (const m of rx.messages) {
    assert.ok(m.data.length >= 1);
    // A 1-3 byte datagram carries no sequence number: take the first unseen one it matches.
    const seq =
      m.data.length >= 4
        ? m.data.readUInt32BE(0)
        : seqs.find((s) => !got.has(s) && sizeOf(s) === m.data.length && datagram(s, sizeOf(s)).equals(m.data));
    assert.ok(seq !== undefined && seqs.includes(seq), `unexpected datagram #${seq} (${m.data.length} bytes)`);
    assert.ok(!got.has(seq), `datagram #${seq} twice`);
    got.add(seq);
    assert.equal(m.data.length, sizeOf(seq), `datagram #${seq} length`);
    assert.ok(m.data.equals(datagram(seq, sizeOf(seq))), `datagram #${seq} content`);
    assert.equal(m.port, fromPort, `datagram #${seq} source port is the adopted socket's`);
  }
}

function checkResults(results: SendResult[], sizeOf: (seq: number) => number): void {
  results.forEach((r, seq) => assert.deepEqual(r, { bytes: sizeOf(seq), zeroCopy: false }, `send #${seq}`));
}

for (const backend of BACKENDS) {
const adoptOn = adopterFor(backend);
for (const type of ['udp4', 'udp6'] as const) {
  const host = type === 'udp4' ? '127.0.0.1' : '::1';
  const maxPayload = type === 'udp4' ? 65507 : 65527;

  // Batches of 16 in flight; the sizes from 16384 up go zero copy.
  test(`${backend} ${type}: per-send destinations on an unconnected socket arrive intact, zeroCopy false`, opts(backend, 30_000, { zeroCopy: [[16, maxPayload]] }), async () => {
    const rxA = await udpReceiver(type);
    const rxB = await udpReceiver(type);
    const sock = await boundUdp(type);
    const zs = adoptOn(sock);
    try {
      const count = 60;
      const sizeOf = (seq: number): number => (seq === count - 1 ? maxPayload : SIZES[seq % SIZES.length]!);
      // Alternate destinations in runs of different lengths: the destination must follow each send.
      const toA = (seq: number): boolean => seq % 5 < 3;
      const results = await sendBatches(zs, count, sizeOf, (seq) => {
        const rx = toA(seq) ? rxA : rxB;
        return { rx, dest: { address: host, port: rx.port } };
      });
      checkResults(results, sizeOf);
      const seqs = Array.from({ length: count }, (_, i) => i);
      checkReceived(rxA, seqs.filter(toA), sizeOf, sock.address().port);
      checkReceived(rxB, seqs.filter((s) => !toA(s)), sizeOf, sock.address().port);
      const total = seqs.reduce((a, s) => a + sizeOf(s), 0);
      const { sends, bytes, zeroCopied, copied, errors, inFlight } = zs.stats();
      assert.deepEqual({ sends, bytes, zeroCopied, copied, errors, inFlight }, { sends: count, bytes: total, zeroCopied: 0, copied: count, errors: 0, inFlight: 0 });
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rxA.close();
      await rxB.close();
    }
  });

  test(`${backend} ${type}: a connected socket sends without an address, intact, zeroCopy false`, opts(backend, 30_000, { zeroCopy: [[16, maxPayload]] }), async () => {
    const rx = await udpReceiver(type);
    const sock = await boundUdp(type);
    sock.connect(rx.port, host);
    await once(sock, 'connect');
    const zs = adoptOn(sock);
    try {
      const count = 40;
      const sizeOf = (seq: number): number => SIZES[(seq * 7) % SIZES.length]!;
      const results = await sendBatches(zs, count, sizeOf, () => ({ rx, dest: undefined }));
      checkResults(results, sizeOf);
      checkReceived(rx, Array.from({ length: count }, (_, i) => i), sizeOf, sock.address().port);
      assert.equal(zs.stats().sends, count);
      assert.equal(zs.stats().copied, count);
      assert.equal(zs.stats().inFlight, 0);
    } finally {
      await zs.close();
      await closeDgram(sock as dgram.Socket);
      await rx.close();
    }
  });
}

test(`${backend} udp4 into the IFB sink namespace: every datagram is sent with zeroCopy ${sinkZeroCopy(backend)}`, { timeout: 60_000 }, async (t) => {
  const specs = ['1024:4', '4096:4', '16384:4', '61440:4'];
  await withSink(t, backendUnavailableReason(backend, skipReason), async (sink) => {
    // The sends must start inside the namespace: the child process adopts and sends there.
    const child = sink.spawn([process.execPath, 'dist/test/helpers/sink-sender.js', sink.destination, '9', ...specs], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, URING_ZC_BACKEND: backend },
    });
    const { code, out, err } = await collectChild(child, 40_000);
    assert.equal(code, 0, `sink-sender exited with ${code}: ${err}`);
    const report = JSON.parse(out.trim()) as {
      rows: { size: number; bytes?: number; zeroCopy?: boolean; code?: string }[];
      stats: { sends: number; zeroCopied: number; copied: number; errors: number; inFlight: number; notifications: number };
    };
    const sizes = specs.flatMap((s) => {
      const [size, n] = s.split(':').map(Number);
      return new Array<number>(n!).fill(size!);
    });
    assert.equal(report.rows.length, sizes.length);
    const zc = sinkZeroCopy(backend);
    report.rows.forEach((row, i) => assert.deepEqual(row, { size: sizes[i], bytes: sizes[i], zeroCopy: zc }, `send #${i}`));
    assert.equal(report.stats.sends, sizes.length);
    assert.equal(report.stats.zeroCopied, zc ? sizes.length : 0);
    assert.equal(report.stats.copied, zc ? 0 : sizes.length);
    assert.equal(report.stats.errors, 0);
    assert.equal(report.stats.inFlight, 0);
    assert.equal(report.stats.notifications, notifies(backend) ? sizes.length : 0, 'one notification per zero-copy send (none on copy)');
  });
});
}

const [uvMajor = 0, uvMinor = 0] = process.versions.uv.split('.').map(Number);
/** libuv >= 1.52 reads the error queue of a UDP socket it polls (see test/backends.test.ts). */
const libuvDrainsErrqueue = uvMajor > 1 || (uvMajor === 1 && uvMinor >= 52);

/** Sends 'in' from `from` to `to` and checks that Node has not read it 200 ms later. */
async function sendUnread(from: dgram.Socket, to: dgram.Socket, received: string[], why: string): Promise<void> {
  await new Promise<void>((r) => from.send('in', to.address().port, '127.0.0.1', () => r()));
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(received, [], why);
}

/** Waits (at most 2 s) until Node has read the datagram sendUnread() left waiting. */
async function readAtLast(received: string[]): Promise<void> {
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(received, ['in']);
}

for (const backend of BACKENDS) {
const adoptOn = adopterFor(backend);
test(`${backend}: adopt(dgram, { receive: false }): Node stops reading while adopted (datagrams wait in the kernel) and reads again after close`, opts(backend, 20_000), async () => {
  const sock = await boundUdp();
  const received: string[] = [];
  sock.on('message', (m) => received.push(m.toString()));
  const rx = await udpReceiver();
  const other = await boundUdp();
  try {
    const zs = adoptOn(sock, { receive: false });
    // Sending is unaffected.
    assert.equal((await zs.send(Buffer.from('out'), { address: '127.0.0.1', port: rx.port })).bytes, 3);
    await rx.waitFor(1, 5_000);
    assert.equal(rx.messages[0]!.data.toString(), 'out');
    // A datagram to the adopted socket is not read while the ZeroCopySocket is open...
    await sendUnread(other, sock, received, 'Node did not read while receive: false');
    // ...and is read, having waited in the kernel, once it has closed.
    await zs.close();
    await readAtLast(received);
  } finally {
    await closeDgram(other);
    await closeDgram(sock);
    await rx.close();
  }
});

test(`${backend}: receive: false twice on one dgram socket: Node reads again only when both have closed`, opts(backend, 20_000, { rings: [256] }), async () => {
  // The ring first: if it cannot be made, no socket is left open to keep the process alive.
  // On the syscall backends the second adoption is a copy one (msg_zerocopy takes a socket's
  // error queue once; a second one would copy anyway).
  const ring2 = backend === 'io_uring' ? new Ring() : undefined;
  const sock = await boundUdp();
  const received: string[] = [];
  sock.on('message', (m) => received.push(m.toString()));
  const other = await boundUdp();
  try {
    const a = adoptOn(sock, { receive: false });
    const b = ring2 !== undefined ? ring2.adopt(sock, { receive: false }) : adopt(sock, { backend: 'copy', receive: false });
    await a.close();
    await sendUnread(other, sock, received, 'still stopped: the second ZeroCopySocket is open');
    await b.close();
    await readAtLast(received);
  } finally {
    await ring2?.close();
    await closeDgram(other);
    await closeDgram(sock);
  }
});

test(`${backend}: receive: bad values and sockets Node does not read are refused with ERR_URING_ZC_INVALID_ARG`, opts(backend, 10_000), async () => {
  const sock = await boundUdp();
  try {
    assert.throws(() => adopt(sock, { backend, receive: 'no' as unknown as boolean }), { code: 'ERR_URING_ZC_INVALID_ARG' });
    // A descriptor: uring-zc does not read it, so there is nothing to stop.
    assert.throws(() => adopt(0, { backend, receive: false }), { code: 'ERR_URING_ZC_INVALID_ARG' });
    // Nothing was adopted: the socket still reads.
    const zs = adopt(sock, { backend, receive: true });
    assert.equal(zs.backend, backend === 'msg_zerocopy' && libuvDrainsErrqueue ? 'copy' : backend, `adopted (libuv ${process.versions.uv}: >= 1.52 gives a socket Node reads copy on msg_zerocopy)`);
    await zs.close();
  } finally {
    await closeDgram(sock);
  }
});
}
