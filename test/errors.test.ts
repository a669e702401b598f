/**
 * Failures: kernel errors keep the errno name as `code` (EPIPE/ECONNRESET, EOPNOTSUPP), our own
 * rules use ERR_URING_ZC_* codes, bad arguments throw synchronously and disturb nothing else, and
 * closing a ring with sends in the kernel settles every one of them. Once per backend, with the same
 * codes on each; the ring.close() tests are io_uring's (a Ring is).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { test } from 'node:test';
import { Ring, UringZcError, adopt, capabilities, type SendResult } from '../src/index.js';
import { Prng, datagram } from './helpers/data.js';
import { codeOf, outcome, turns, within, zeroCopyUnavailableReason, throwsCode, type LockedNeed, fileDefaultRing } from './helpers/env.js';
import {
  StreamVerifier,
  boundUdp,
  closeDgram,
  connectTcp,
  destroySocket,
  tcpAndUdp,
  tcpReceiver,
  udpReceiver,
} from './helpers/net.js';
import { BACKENDS, adopterFor, gatedOn, ioUringOnly, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
fileDefaultRing(skipReason);
/**
 * The first adopt() makes the thread's default ring, which stays open for the file; `need` is
 * what a test locks besides it (its own rings, its zero-copy sends in flight).
 */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });
const RING_CLOSE = 'ring.close() is a Ring\'s, and a Ring is io_uring; this backend\'s sends end with zs.destroy() (test/destroy.test.ts runs per backend)';

/** Asserts that `p` rejects with a UringZcError whose code is one of `codes`; returns the code. */
async function rejectsWith(p: Promise<unknown>, codes: string[], what: string): Promise<string> {
  const o = await outcome(p);
  assert.equal(o.ok, false, `${what}: expected a rejection with ${codes.join(' or ')}, got ${JSON.stringify(o.ok && o.value)}`);
  const err = (o as { error: unknown }).error;
  assert.ok(err instanceof UringZcError, `${what}: rejected with a UringZcError (got ${String(err)})`);
  const code = codeOf(err)!;
  assert.ok(codes.includes(code), `${what}: code ${code}, expected ${codes.join(' or ')}`);
  return code;
}

/** `p` with a no-op rejection handler attached now; awaiting it still rejects. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}


for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend);

  test(`${backend}: send after the peer reset: rejects with EPIPE or ECONNRESET, later sends reject too`, opts(backend, 30_000, { zeroCopy: [64 << 10] }), async () => {
    const rx = await tcpReceiver();
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    try {
      const peer = await rx.peer;
      // RST instead of FIN: the connection is gone at once.
      peer.resetAndDestroy();
      const buf = new Prng(1).bytes(64 << 10);
      let code: string | undefined;
      // Bounded: loopback delivers the RST within a few sends; each await lets it be processed.
      for (let i = 0; i < 2000 && code === undefined; i++) {
        const o = await outcome(zs.send(buf));
        if (!o.ok) {
          assert.ok(o.error instanceof UringZcError, `rejected with a UringZcError (got ${String(o.error)})`);
          code = codeOf(o.error);
        }
      }
      assert.ok(code === 'EPIPE' || code === 'ECONNRESET', `first failure code ${code}`);
      for (let i = 0; i < 3; i++) {
        const o = await outcome(zs.send(buf));
        assert.equal(o.ok, false, 'a send after the stream broke rejects');
        assert.ok(o.error instanceof UringZcError);
        assert.equal(typeof codeOf(o.error), 'string');
        assert.match(codeOf(o.error)!, /^(E[A-Z]+|ERR_URING_ZC_[A-Z_]+)$/);
      }
      assert.ok(zs.stats().errors >= 4);
      assert.equal(zs.stats().inFlight, 0);
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
    }
  });

  test(`${backend}: send on a closed ZeroCopySocket rejects ERR_URING_ZC_SOCKET_CLOSED`, opts(backend, 20_000), async () => {
    const rx = await udpReceiver('udp4');
    const sock = await boundUdp('udp4');
    const zs = adoptOn(sock);
    try {
      assert.deepEqual(await zs.send(datagram(0, 10), { address: '127.0.0.1', port: rx.port }), { bytes: 10, zeroCopy: false });
      await zs.close();
      assert.equal(zs.closed, true);
      await rejectsWith(zs.send(datagram(1, 10), { address: '127.0.0.1', port: rx.port }), ['ERR_URING_ZC_SOCKET_CLOSED'], 'UDP send after close()');
      // The Node socket is untouched by our close: it still sends.
      sock.send(datagram(2, 10), rx.port, '127.0.0.1');
      await rx.waitFor(2, 10_000);
    } finally {
      await zs.close();
      await closeDgram(sock);
      await rx.close();
    }
    const trx = await tcpReceiver();
    const client = await connectTcp(trx.port);
    const tz = adoptOn(client);
    try {
      await tz.close();
      await rejectsWith(tz.send(Buffer.from('x')), ['ERR_URING_ZC_SOCKET_CLOSED'], 'TCP send after close()');
    } finally {
      await destroySocket(client);
      await trx.close();
    }
  });

  test(`${backend}: the Node socket closed: later sends reject ERR_URING_ZC_SOCKET_CLOSED`, opts(backend, 20_000), async () => {
    const both = await tcpAndUdp(adoptOn);
    const { client, tzs: tz, urx, usock: sock, uzs: uz } = both;
    try {
      assert.equal((await tz.send(Buffer.from('hello'))).bytes, 5);
      await destroySocket(client);
      await rejectsWith(tz.send(Buffer.from('x')), ['ERR_URING_ZC_SOCKET_CLOSED'], 'TCP send after the net.Socket closed');
      await tz.close();
      assert.equal(tz.closed, true);

      assert.equal((await uz.send(Buffer.from('hello'), { address: '127.0.0.1', port: urx.port })).bytes, 5);
      await closeDgram(sock);
      await rejectsWith(uz.send(Buffer.from('x'), { address: '127.0.0.1', port: urx.port }), ['ERR_URING_ZC_SOCKET_CLOSED'], 'UDP send after the dgram.Socket closed');
      await uz.close();
      assert.equal(uz.closed, true);
    } finally {
      await both.close();
    }
  });

  // AF_UNIX sockets: see backends.test.ts (they get a copying send under every backend).

  // Its own ring; about 50 good TCP sends of up to 200 000 bytes (zero copy above the threshold)
  // queued between the bad calls; the UDP ones (up to 8000 bytes) copy.
  test(`${backend}: bad arguments throw ERR_URING_ZC_INVALID_ARG synchronously and leave in-flight sends intact`, opts(backend, 60_000, { rings: [256], zeroCopy: [[50, 200_000]] }), async () => {
    // The ring first: if it cannot be made, no socket is left open to keep the process alive.
    // Its own Ring on io_uring; the forced backend elsewhere (whose adopt() validates the same).
    const ring = backend === 'io_uring' ? new Ring() : undefined;
    const on = ring !== undefined ? ring.adopt.bind(ring) : adoptOn;
    const verifier = new StreamVerifier();
    const trx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(trx.port);
    const urx = await udpReceiver('udp4');
    const usock = await boundUdp('udp4');
    const tcp = on(client);
    const udp = on(usock);
    const dest = { address: '127.0.0.1', port: urx.port };
    const prng = new Prng(3);
    const good: Promise<SendResult>[] = [];
    const goodUdpSizes: number[] = [];
    let udpSeq = 0;
    // Good sends on both sockets between every bad call: none of them may be disturbed.
    const sendGood = (): void => {
      const b = prng.bytes(prng.int(1, 200_000));
      verifier.expect(b);
      // Observed at once: if an assertion below fails, the ring closes them without an unhandled rejection.
      good.push(handled(tcp.send(b)));
      const size = prng.int(1, 8000);
      goodUdpSizes.push(size);
      good.push(handled(udp.send(datagram(udpSeq++, size), dest)));
    };
    const ok = Buffer.from('payload');
    const sab = new Uint8Array(new SharedArrayBuffer(16));
    const resizable = new Uint8Array(new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(16, { maxByteLength: 64 }));
    const detachedAb = new ArrayBuffer(32);
    const detached = new Uint8Array(detachedAb, 8, 8);
    structuredClone(detachedAb, { transfer: [detachedAb] });
    assert.equal(detached.byteLength, 0, 'the view is detached');
    const bigDatagram = Buffer.alloc(65536);
    const unconnectedDgram = dgram.createSocket('udp4');
    const bad: [string, () => unknown][] = [
      // Not a buffer.
      ['number', () => tcp.send(42 as unknown as Uint8Array)],
      ['undefined', () => tcp.send(undefined as unknown as Uint8Array)],
      ['null', () => udp.send(null as unknown as Uint8Array, dest)],
      ['plain object', () => tcp.send({ length: 3 } as unknown as Uint8Array)],
      ['array of numbers', () => tcp.send([1, 2, 3] as unknown as Uint8Array)],
      ['bare ArrayBuffer', () => tcp.send(new ArrayBuffer(8) as unknown as Uint8Array)],
      ['string', () => tcp.send('hello' as unknown as Uint8Array)],
      ['string to UDP', () => udp.send('hello' as unknown as Uint8Array, dest)],
      ['SharedArrayBuffer-backed Uint8Array', () => tcp.send(sab)],
      ['SharedArrayBuffer-backed Uint8Array to UDP', () => udp.send(sab, dest)],
      ['resizable ArrayBuffer', () => tcp.send(resizable)],
      ['detached ArrayBuffer', () => tcp.send(detached)],
      ['detached ArrayBuffer to UDP', () => udp.send(detached, dest)],
      // Options.
      ['options not an object', () => udp.send(ok, 5 as unknown as object)],
      ['unknown send option', () => udp.send(ok, { ...dest, adress: '127.0.0.1' } as unknown as object)],
      ['unknown send option on TCP', () => tcp.send(ok, { flags: 1 } as unknown as object)],
      ['zeroCopy not a boolean', () => tcp.send(ok, { zeroCopy: 'yes' as unknown as boolean })],
      ['port 0', () => udp.send(ok, { address: '127.0.0.1', port: 0 })],
      ['port 70000', () => udp.send(ok, { address: '127.0.0.1', port: 70000 })],
      ['port 1.5', () => udp.send(ok, { address: '127.0.0.1', port: 1.5 })],
      ['port as a string', () => udp.send(ok, { address: '127.0.0.1', port: '53' as unknown as number })],
      ['address without port', () => udp.send(ok, { address: '127.0.0.1' })],
      ['port without address', () => udp.send(ok, { port: urx.port })],
      ['non-IP address "localhost"', () => udp.send(ok, { address: 'localhost', port: urx.port })],
      ['IPv6 address on a udp4 socket', () => udp.send(ok, { address: '::1', port: urx.port })],
      ['address on a TCP socket', () => tcp.send(ok, { address: '127.0.0.1', port: trx.port })],
      ['datagram > 65535 bytes', () => udp.send(bigDatagram, dest)],
      // Constructors and adopt().
      ['Ring entries 0', () => new Ring({ entries: 0 })],
      ['Ring entries 3', () => new Ring({ entries: 3 })],
      ['Ring entries 8192', () => new Ring({ entries: 8192 })],
      ['Ring entries 1.5', () => new Ring({ entries: 1.5 })],
      ['unknown Ring option', () => new Ring({ entry: 4 } as unknown as object)],
      ['zeroCopyThreshold -1', () => adopt(client, { backend, zeroCopyThreshold: -1 })],
      ["zeroCopyThreshold 'x'", () => adopt(client, { backend, zeroCopyThreshold: 'x' as unknown as number })],
      ['zeroCopyThreshold on this socket\'s adopt', () => on(usock, { zeroCopyThreshold: -1 })],
      ['unknown adopt option', () => adopt(client, { backend, threshold: 1 } as unknown as object)],
      ['adopt(non-socket object)', () => adopt({} as unknown as number, { backend })],
      ['adopt(negative fd)', () => adopt(-1, { backend })],
      ['adopt(fd 1.5)', () => adopt(1.5, { backend })],
    ];
    try {
      // The last send's ArrayBuffer, detached afterwards: still refused on the next send.
      {
        const size = 40;
        const ab = new ArrayBuffer(64);
        const v = new Uint8Array(ab, 8, size);
        v.set(datagram(udpSeq, size));
        goodUdpSizes.push(size);
        udpSeq++;
        assert.equal((await udp.send(v, dest)).bytes, size);
        structuredClone(ab, { transfer: [ab] });
        throwsCode(() => udp.send(v, dest), 'ERR_URING_ZC_INVALID_ARG', 'detached ArrayBuffer of the previous send');
      }
      sendGood();
      // Every bad call is tried (and the good sends checked) before failing, so one report lists all.
      const wrong: string[] = [];
      for (const [what, fn] of bad) {
        try {
          throwsCode(fn, 'ERR_URING_ZC_INVALID_ARG', what);
        } catch (e) {
          wrong.push((e as Error).message);
        }
        sendGood();
      }
      // An unbound dgram socket is a state problem, not an argument problem.
      throwsCode(() => adopt(unconnectedDgram, { backend }), 'ERR_URING_ZC_INVALID_STATE', 'unbound dgram');
      sendGood();
      const results = await within(Promise.all(good), 45_000, 'good sends around the bad calls');
      for (let i = 0; i < results.length; i += 2) {
        assert.equal(results[i + 1]!.bytes, goodUdpSizes[i / 2 + 1], `UDP good send #${i / 2 + 1}`);
      }
      assert.equal(tcp.stats().sends, good.length / 2);
      assert.equal(tcp.stats().errors, 0, 'no TCP send failed');
      assert.equal(udp.stats().sends, good.length / 2 + 1);
      assert.equal(udp.stats().errors, 0, 'no UDP send failed');
      await trx.waitForBytes(verifier.expected, 30_000);
      assert.ok(verifier.complete, `TCP stream intact (first bad byte at ${verifier.mismatchAt})`);
      await urx.waitFor(goodUdpSizes.length, 10_000);
      for (const m of urx.messages) {
        const seq = m.data.length >= 4 ? m.data.readUInt32BE(0) : -1;
        if (seq >= 0) assert.ok(m.data.equals(datagram(seq, goodUdpSizes[seq]!)), `UDP datagram #${seq} intact`);
      }
      assert.deepEqual(wrong, [], 'every bad call throws ERR_URING_ZC_INVALID_ARG synchronously');
    } finally {
      await ring?.close();
      await tcp.close();
      await udp.close();
      await destroySocket(client);
      await closeDgram(usock);
      unconnectedDgram.close();
      await trx.close();
      await urx.close();
    }
  });

  test(`${backend}: adopt() of an unbound dgram socket or a connecting net socket: ERR_URING_ZC_INVALID_STATE`, opts(backend, 20_000), async () => {
    const d = dgram.createSocket('udp4');
    throwsCode(() => adopt(d, { backend }), 'ERR_URING_ZC_INVALID_STATE', 'unbound dgram.Socket');
    d.close();
    const rx = await tcpReceiver();
    const s = net.connect({ port: rx.port, host: '127.0.0.1' });
    s.on('error', () => {});
    try {
      assert.equal(s.connecting, true);
      throwsCode(() => adopt(s, { backend }), 'ERR_URING_ZC_INVALID_STATE', 'connecting net.Socket');
      await once(s, 'connect');
      // Once connected, the same socket is adoptable.
      const zs = adoptOn(s);
      assert.equal((await zs.send(Buffer.from('ok'))).bytes, 2);
      await zs.close();
    } finally {
      await destroySocket(s);
      await rx.close();
    }
  });

  // One 4 MiB TCP send is in the kernel at a time (the rest wait in the library, unpinned).
  test(`${backend}: ring.close() with sends in the kernel: every send settles, close resolves, later use is ERR_URING_ZC_RING_CLOSED`, ioUringOnly(backend, RING_CLOSE, opts(backend, 60_000, { rings: [256], zeroCopy: [4 << 20] })), async () => {
    // The ring first: if it cannot be made, no socket is left open to keep the process alive.
    const ring = new Ring();
    // A peer that never reads: the sends stay in the kernel.
    const rx = await tcpReceiver({ paused: true });
    const client = await connectTcp(rx.port);
    const urx = await udpReceiver('udp4');
    const usock = await boundUdp('udp4');
    const zs = ring.adopt(client);
    const uz = ring.adopt(usock);
    try {
      const prng = new Prng(11);
      const sends: Promise<SendResult>[] = [];
      for (let i = 0; i < 24; i++) sends.push(zs.send(prng.bytes(4 << 20)));
      for (let i = 0; i < 8; i++) sends.push(uz.send(datagram(i, 1000), { address: '127.0.0.1', port: urx.port }));
      const watched = sends.map((p) => outcome(p));
      // Let the first TCP request reach the kernel and fill the socket buffers.
      await rx.peer;
      await turns(20);
      assert.ok(zs.stats().inFlight > 0, 'TCP sends are stuck in flight');
      const closing = ring.close();
      // close() resolves only once the kernel released every Buffer. Data it already queued on the
      // socket for a peer that never reads is held until the connection goes: reset it.
      client.resetAndDestroy();
      await within(closing, 10_000, 'ring.close() with sends in flight');
      assert.equal(ring.closed, true);
      const outcomes = await within(Promise.all(watched), 10_000, 'sends settle after ring.close()');
      let rejected = 0;
      outcomes.forEach((o, i) => {
        if (o.ok) return;
        rejected++;
        assert.ok(o.error instanceof UringZcError, `send #${i}: a UringZcError`);
        assert.ok(['ECANCELED', 'ERR_URING_ZC_RING_CLOSED'].includes(codeOf(o.error)!), `send #${i}: code ${codeOf(o.error)}`);
      });
      assert.ok(rejected > 0, 'the stuck TCP sends were cancelled, not completed');
      assert.equal(zs.stats().inFlight, 0);
      assert.equal(uz.stats().inFlight, 0);
      await rejectsWith(zs.send(Buffer.from('late')), ['ERR_URING_ZC_RING_CLOSED'], 'TCP send on a closed ring');
      await rejectsWith(uz.send(Buffer.from('late'), { address: '127.0.0.1', port: urx.port }), ['ERR_URING_ZC_RING_CLOSED'], 'UDP send on a closed ring');
      throwsCode(() => ring.adopt(usock), 'ERR_URING_ZC_RING_CLOSED', 'adopt on a closed ring');
      // close() again is harmless.
      await within(ring.close(), 5_000, 'second ring.close()');
    } finally {
      // The peer goes first: its reset frees whatever the kernel still holds, so the ring can close
      // even when the assertions above failed.
      await rx.close();
      await destroySocket(client);
      await within(ring.close(), 10_000, 'ring.close() after the peer went away');
      await closeDgram(usock);
      await urx.close();
    }
  });

  test(`${backend}: ring.close() with UDP sends in the kernel and in the backlog: all settle, close resolves`, ioUringOnly(backend, RING_CLOSE, opts(backend, 30_000, { rings: [8] })), async () => {
    // The ring first: if it cannot be made, no socket is left open to keep the process alive.
    const ring = new Ring({ entries: 8 });
    const urx = await udpReceiver('udp4');
    const usock = await boundUdp('udp4');
    const uz = ring.adopt(usock);
    try {
      const n = 300;
      const watched: ReturnType<typeof outcome<SendResult>>[] = [];
      for (let i = 0; i < n; i++) watched.push(outcome(uz.send(datagram(i, 500), { address: '127.0.0.1', port: urx.port })));
      assert.ok(ring.inFlight > ring.maxInFlight, 'some sends wait in the backlog');
      await within(ring.close(), 10_000, 'ring.close() with UDP sends queued');
      const outcomes = await within(Promise.all(watched), 10_000, 'sends settle after ring.close()');
      let resolved = 0;
      outcomes.forEach((o, i) => {
        if (o.ok) {
          resolved++;
          assert.deepEqual(o.value, { bytes: 500, zeroCopy: false }, `send #${i}`);
        } else {
          assert.ok(['ECANCELED', 'ERR_URING_ZC_RING_CLOSED'].includes(codeOf(o.error)!), `send #${i}: code ${codeOf(o.error)}`);
        }
      });
      assert.ok(resolved < n, 'the backlog was rejected, not sent after close()');
      assert.equal(uz.stats().inFlight, 0);
      assert.equal(uz.stats().sends + uz.stats().errors, n);
      assert.equal(ring.inFlight, 0);
    } finally {
      await ring.close();
      await closeDgram(usock);
      await urx.close();
    }
  });

  test(`${backend}: a closed ring: sends on its sockets reject ERR_URING_ZC_RING_CLOSED, adopt() throws it`, ioUringOnly(backend, RING_CLOSE, opts(backend, 20_000, { rings: [256] })), async () => {
    // The ring first: if it cannot be made, no socket is left open to keep the process alive.
    const ring = new Ring();
    const urx = await udpReceiver('udp4');
    const usock = await boundUdp('udp4');
    const trx = await tcpReceiver();
    const client = await connectTcp(trx.port);
    const uz = ring.adopt(usock);
    const tz = ring.adopt(client);
    try {
      assert.equal((await uz.send(Buffer.from('before'), { address: '127.0.0.1', port: urx.port })).bytes, 6);
      assert.equal((await tz.send(Buffer.from('before'))).bytes, 6);
      await within(ring.close(), 10_000, 'ring.close() when idle');
      assert.equal(ring.closed, true);
      await rejectsWith(uz.send(Buffer.from('late'), { address: '127.0.0.1', port: urx.port }), ['ERR_URING_ZC_RING_CLOSED'], 'UDP send on a closed ring');
      await rejectsWith(tz.send(Buffer.from('late')), ['ERR_URING_ZC_RING_CLOSED'], 'TCP send on a closed ring');
      throwsCode(() => ring.adopt(usock), 'ERR_URING_ZC_RING_CLOSED', 'adopt on a closed ring (dgram)');
      throwsCode(() => ring.adopt(client), 'ERR_URING_ZC_RING_CLOSED', 'adopt on a closed ring (net)');
    } finally {
      await ring.close();
      await destroySocket(client);
      await closeDgram(usock);
      await trx.close();
      await urx.close();
    }
  });
}

test('capabilities() returns the documented fields and does not throw', { timeout: 10_000 }, () => {
  const caps = capabilities();
  for (const k of ['ioUring', 'sendZc', 'sendmsgZc', 'reportUsage', 'fixedBuffers'] as const) {
    assert.equal(typeof caps[k], 'boolean', k);
  }
  assert.equal(caps.kernel, os.release());
  assert.equal(typeof caps.memlockLimit, 'number');
  assert.ok(caps.memlockLimit === Infinity || Number.isNaN(caps.memlockLimit) || caps.memlockLimit >= 0);
  assert.ok(caps.ioUringDisabled === null || [0, 1, 2].includes(caps.ioUringDisabled), `ioUringDisabled ${caps.ioUringDisabled}`);
  if (!caps.ioUring || !caps.sendZc) assert.equal(typeof caps.reason, 'string', 'a reason when unavailable');
  if (caps.sendZc) assert.equal(caps.ioUring, true);
  if (caps.reportUsage) assert.equal(caps.sendZc, true);
  // Cached and stable: a second call answers the same.
  assert.deepEqual(capabilities(), caps);
});

