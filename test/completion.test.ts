/**
 * The two-CQE protocol as the API shows it: a zero-copy send's promise settles once, and only
 * after its notification CQE (IORING_CQE_F_NOTIF); the Buffer is held until then; notifications
 * of different sockets on one ring may come in any order; a small ring queues the excess. Once per
 * backend: msg_zerocopy's notification is its error-queue range (one per sendmsg that took bytes,
 * so a TCP send split by a full socket buffer has several); copy has none and settles when sendmsg
 * took the bytes. The ring's own backlog is io_uring's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Ring, type SendResult, type ZeroCopySocket } from '../src/index.js';
import { Prng, datagram } from './helpers/data.js';
import { turns, within, zeroCopyUnavailableReason, type LockedNeed } from './helpers/env.js';
import {
  StreamVerifier,
  boundUdp,
  closeDgram,
  connectTcp,
  destroySocket,
  tcpReceiver,
  udpReceiver,
  type TcpReceiver,
  type UdpReceiver,
} from './helpers/net.js';
import { BACKENDS, adopterFor, assertStreamNotifications, gatedOn, ioUringOnly, notifies, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
/** Each test makes its own default Ring; `need` is what it locks on top (see LockedNeed). */
const opts = (backend: Backend, timeout: number, need: LockedNeed) => gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });

/** io_uring: the test's own Ring (made first: if it cannot be, no socket is left open); none elsewhere. */
function ownRing(backend: Backend, entries?: number): Ring | undefined {
  if (backend !== 'io_uring') return undefined;
  return entries === undefined ? new Ring() : new Ring({ entries });
}

/** Closes the test's Ring (which closes its sockets) or, without one, the sockets. */
async function closeAll(ring: Ring | undefined, ...sockets: ZeroCopySocket[]): Promise<void> {
  if (ring !== undefined) await ring.close();
  else for (const zs of sockets) await zs.close();
}

/**
 * More than the loopback TCP path can hold for a peer that does not read (net.ipv4.tcp_wmem max
 * 4 MiB + tcp_rmem max 32 MiB by default, and the receive buffer does not grow while nobody reads):
 * such a send cannot finish until the peer reads.
 */
const STUCK_SIZE = 48 << 20;

interface Settled {
  index: number;
  zc: boolean;
  notificationsAtSettle: number;
  inFlightAtSettle: number;
}

/**
 * Sends `n` payloads without awaiting; every 4th asks for a copying send (no notification).
 * Records, as each promise settles, the socket's counters at that moment.
 */
async function sendAndWatch(backend: Backend, zs: ZeroCopySocket, n: number, payload: (i: number) => Buffer, onSent?: (b: Buffer) => void) {
  const settled: Settled[] = [];
  const settleCount = new Array<number>(n).fill(0);
  const promises: Promise<SendResult>[] = [];
  let zcSettled = 0;
  for (let i = 0; i < n; i++) {
    const zc = i % 4 !== 3;
    const buf = payload(i);
    onSent?.(buf);
    // Explicit per send: the library may not swap one kind for the other behind our back.
    const p = zs.send(buf, { zeroCopy: zc });
    promises.push(
      p.then((r) => {
        settleCount[i]!++;
        if (zc) zcSettled++;
        const s = zs.stats();
        settled.push({ index: i, zc, notificationsAtSettle: s.notifications, inFlightAtSettle: s.inFlight });
        // Settled only after its notification: every zero-copy send settled so far has had one.
        if (notifies(backend)) assert.ok(s.notifications >= zcSettled, `send #${i} settled before its notification (${s.notifications} < ${zcSettled})`);
        return r;
      }),
    );
  }
  assert.equal(zs.stats().inFlight, n, 'every accepted send is in flight right after send()');
  const results = await Promise.all(promises);
  return { results, settled, settleCount, zcCount: settled.filter((s) => s.zc).length };
}

function checkWatch(backend: Backend, w: Awaited<ReturnType<typeof sendAndWatch>>, zs: ZeroCopySocket, sizes: number[]): void {
  const n = sizes.length;
  assert.deepEqual(w.settleCount, new Array<number>(n).fill(1), 'every promise settled exactly once');
  assert.equal(w.settled.length, n);
  let last = Infinity;
  for (const s of w.settled) {
    assert.ok(s.inFlightAtSettle <= last, 'inFlight only counts down while nothing new is sent');
    last = s.inFlightAtSettle;
  }
  assert.equal(last, 0);
  w.results.forEach((r, i) => assert.deepEqual(r, { bytes: sizes[i], zeroCopy: false }, `send #${i}`));
  const st = zs.stats();
  const what = 'one notification per zero-copy send, none for copying sends';
  if (zs.type === 'tcp') assertStreamNotifications(backend, st.notifications, w.zcCount, what);
  else assert.equal(st.notifications, notifies(backend) ? w.zcCount : 0, what);
  assert.equal(st.sends, n);
  assert.equal(st.errors, 0);
  assert.equal(st.inFlight, 0);
  assert.equal(st.bytes, sizes.reduce((a, b) => a + b, 0));
}

for (const backend of BACKENDS) {
  // Each test's own Ring on io_uring (adoptOn reads it at each call: `current`).
  let current: Ring | undefined;
  const adoptOn = adopterFor(backend, () => current!);

  // 48 of the 64 sends (up to 8000 bytes) are zero copy, all in flight at once.
  test(`${backend}: UDP: each send settles once, after its notification; inFlight counts down to 0`, opts(backend, 30_000, { zeroCopy: [[48, 8000]] }), async () => {
    const ring = ownRing(backend);
    current = ring;
    const rx = await udpReceiver('udp4');
    const sock = await boundUdp('udp4');
    sock.connect(rx.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const zs = adoptOn(sock);
    try {
      const sizes = Array.from({ length: 64 }, (_, i) => 1 + ((i * 997) % 8000));
      const w = await sendAndWatch(backend, zs, sizes.length, (i) => datagram(i, sizes[i]!));
      checkWatch(backend, w, zs, sizes);
    } finally {
      await closeAll(ring, zs);
      await closeDgram(sock);
      await rx.close();
    }
  });

  // 150 zero-copy sends of up to 256 KiB, all queued at once (their notifications may all wait).
  test(`${backend}: TCP: each send settles once, after its notification; inFlight counts down to 0`, opts(backend, 30_000, { zeroCopy: [[150, 256 << 10]] }), async () => {
    const ring = ownRing(backend);
    current = ring;
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    try {
      const prng = new Prng(42);
      const sizes = Array.from({ length: 200 }, () => prng.logSize(1, 256 << 10));
      const w = await sendAndWatch(backend, zs, sizes.length, (i) => prng.bytes(sizes[i]!), (b) => verifier.expect(b));
      checkWatch(backend, w, zs, sizes);
      await rx.waitForBytes(verifier.expected, 30_000);
      assert.ok(verifier.complete, `stream intact (first bad byte at ${verifier.mismatchAt})`);
    } finally {
      await closeAll(ring, zs);
      await destroySocket(client);
      await rx.close();
    }
  });

  // 2000 zero-copy sends of up to 575 bytes; the ring takes 512 at a time, the rest wait unpinned.
  test(`${backend}: UDP: 2000 sends in flight at once on one socket all settle exactly once`, opts(backend, 60_000, { zeroCopy: [[512, 575]] }), async () => {
    const ring = ownRing(backend);
    current = ring;
    const rx = await udpReceiver('udp4');
    const sock = await boundUdp('udp4');
    const zs = adoptOn(sock);
    try {
      const n = 2000;
      const counts = new Array<number>(n).fill(0);
      const promises: Promise<SendResult>[] = [];
      for (let i = 0; i < n; i++) {
        promises.push(
          zs.send(datagram(i, 64 + (i % 512)), { address: '127.0.0.1', port: rx.port, zeroCopy: true }).then((r) => {
            counts[i]!++;
            return r;
          }),
        );
      }
      assert.equal(zs.stats().inFlight, n);
      const results = await within(Promise.all(promises), 30_000, '2000 UDP sends');
      assert.deepEqual(counts, new Array<number>(n).fill(1));
      results.forEach((r, i) => assert.deepEqual(r, { bytes: 64 + (i % 512), zeroCopy: false }, `send #${i}`));
      const st = zs.stats();
      assert.equal(st.sends, n);
      assert.equal(st.notifications, notifies(backend) ? n : 0);
      assert.equal(st.inFlight, 0);
      if (ring !== undefined) assert.equal(ring.inFlight, 0);
      // Loopback may drop datagrams when the receiver falls behind; what arrives must be intact.
      await turns(20);
      for (const m of rx.messages) {
        const seq = m.data.readUInt32BE(0);
        assert.ok(m.data.equals(datagram(seq, 64 + (seq % 512))), `datagram #${seq} intact`);
      }
    } finally {
      await closeAll(ring, zs);
      await closeDgram(sock);
      await rx.close();
    }
  });

  test(`${backend}: the Buffer is held until its notification: inFlight > 0 until the promise resolves, bytes intact after GC`, opts(backend, 90_000, { zeroCopy: [STUCK_SIZE] }), async () => {
    const ring = ownRing(backend);
    current = ring;
    // Collect garbage on demand: a Buffer the library let go of would be freed and its memory reused.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const hashRx = createHash('sha256');
    const rx = await tcpReceiver({ paused: true, onData: (c) => hashRx.update(c) });
    const client = await connectTcp(rx.port);
    const zs = adoptOn(client);
    try {
      let settled = false;
      // The only reference to the Buffer after this function returns is the library's.
      const start = (): { promise: Promise<SendResult>; digest: string } => {
        const buf = new Prng(7).bytes(STUCK_SIZE);
        const digest = createHash('sha256').update(buf).digest('hex');
        const promise = zs.send(buf, { zeroCopy: true });
        return { promise, digest };
      };
      const { promise, digest } = start();
      void promise.then(
        () => (settled = true),
        () => (settled = true),
      );
      // The peer does not read: the send cannot finish, the Buffer must stay in flight.
      for (let i = 0; i < 50; i++) {
        gc();
        // Garbage of the same size class, filled with a marker, to take the memory of anything freed.
        const junk = Array.from({ length: 8 }, () => Buffer.alloc(STUCK_SIZE / 8, 0xee));
        assert.equal(junk.length, 8);
        await turns(2);
        assert.equal(settled, false, 'the send cannot have completed: the peer reads nothing');
        assert.equal(zs.stats().inFlight, 1);
      }
      rx.resume();
      // Bounded: the peer now reads, so the send finishes; each turn re-checks the counter.
      for (let i = 0; i < 1_000_000 && !settled; i++) {
        assert.equal(zs.stats().inFlight, 1, 'inFlight stays > 0 until the promise resolves');
        await turns(1);
      }
      const r = await within(promise, 60_000, 'the stuck send after the peer resumed');
      assert.deepEqual(r, { bytes: STUCK_SIZE, zeroCopy: false });
      assert.equal(zs.stats().inFlight, 0);
      await rx.waitForBytes(STUCK_SIZE, 30_000);
      assert.equal(hashRx.digest('hex'), digest, 'the peer got the Buffer exactly as it was when sent');
    } finally {
      await closeAll(ring, zs);
      await destroySocket(client);
      await rx.close();
    }
  });

  test(`${backend}: a UDP send is in flight from send() until its promise resolves`, opts(backend, 20_000, { zeroCopy: [30000] }), async () => {
    const ring = ownRing(backend);
    current = ring;
    const rx = await udpReceiver('udp4');
    const sock = await boundUdp('udp4');
    const zs = adoptOn(sock);
    try {
      let settled = false;
      const p = zs.send(datagram(1, 30000), { address: '127.0.0.1', port: rx.port, zeroCopy: true });
      void p.then(() => (settled = true));
      assert.equal(zs.stats().inFlight, 1);
      for (let i = 0; i < 100_000 && !settled; i++) {
        assert.equal(zs.stats().inFlight, 1);
        await turns(1);
      }
      assert.deepEqual(await p, { bytes: 30000, zeroCopy: false });
      assert.equal(zs.stats().inFlight, 0);
      assert.equal(zs.stats().notifications, notifies(backend) ? 1 : 0);
    } finally {
      await closeAll(ring, zs);
      await closeDgram(sock);
      await rx.close();
    }
  });

  // The stuck send, then up to 100 TCP sends of up to 512 KiB and UDP datagrams, all at once.
  test(`${backend}: TCP and UDP on one ${backend === 'io_uring' ? 'ring' : 'backend'}: notifications out of submission order, per-socket stats right`, opts(backend, 90_000, {
    zeroCopy: [STUCK_SIZE, 1000, 70000, [16, 1700], [100, 512 << 10], [100, 1400]],
  }), async () => {
    const ring = ownRing(backend);
    current = ring;
    const hashRx = createHash('sha256');
    const hashTx = createHash('sha256');
    const tcpRx = await tcpReceiver({ paused: true, onData: (c) => hashRx.update(c) });
    const udpRx = await udpReceiver('udp4');
    const client = await connectTcp(tcpRx.port);
    const usock = await boundUdp('udp4');
    const tcp = adoptOn(client);
    const udp = adoptOn(usock);
    const dest = { address: '127.0.0.1', port: udpRx.port, zeroCopy: true };
    try {
      const prng = new Prng(99);
      let tcpBytes = 0;
      let udpBytes = 0;
      const tcpSend = (buf: Buffer): Promise<SendResult> => {
        hashTx.update(buf);
        tcpBytes += buf.length;
        return tcp.send(buf, { zeroCopy: true });
      };
      const udpSend = (seq: number, size: number): Promise<SendResult> => {
        udpBytes += size;
        return udp.send(datagram(seq, size), dest);
      };
      // 1. Submitted first, completed last: a TCP send the peer does not read yet.
      let tcpFirstSettled = false;
      const tcpFirst = tcpSend(prng.bytes(STUCK_SIZE));
      void tcpFirst.then(() => (tcpFirstSettled = true), () => (tcpFirstSettled = true));
      const tcpMore = [tcpSend(prng.bytes(1000)), tcpSend(prng.bytes(70000))];
      // 2. Submitted after it, completed before it: UDP sends on the same ring.
      const udpFirst: Promise<SendResult>[] = [];
      for (let i = 0; i < 16; i++) udpFirst.push(udpSend(i, 200 + i * 100));
      const early = await within(Promise.all(udpFirst), 20_000, 'UDP sends behind a stuck TCP send');
      early.forEach((r, i) => assert.deepEqual(r, { bytes: 200 + i * 100, zeroCopy: false }));
      assert.equal(tcpFirstSettled, false, 'the TCP send cannot finish before its peer reads');
      assert.equal(tcp.stats().inFlight, 3);
      assert.equal(udp.stats().inFlight, 0);
      assert.equal(udp.stats().notifications, notifies(backend) ? 16 : 0);
      // 3. The peer reads; then interleave both sockets with many sends in flight.
      tcpRx.resume();
      const tcpLater: Promise<SendResult>[] = [];
      const udpLater: Promise<SendResult>[] = [];
      const tcpSizes: number[] = [];
      for (let i = 0; i < 100; i++) {
        const size = prng.logSize(1, 512 << 10);
        tcpSizes.push(size);
        tcpLater.push(tcpSend(prng.bytes(size)));
        udpLater.push(udpSend(16 + i, 1 + ((i * 331) % 1400)));
      }
      const [first, more, later, ulater] = await within(
        Promise.all([tcpFirst, Promise.all(tcpMore), Promise.all(tcpLater), Promise.all(udpLater)]),
        60_000,
        'interleaved sends',
      );
      assert.deepEqual(first, { bytes: STUCK_SIZE, zeroCopy: false });
      assert.deepEqual(more.map((r) => r.bytes), [1000, 70000]);
      assert.deepEqual(later.map((r) => r.bytes), tcpSizes);
      assert.deepEqual(ulater.map((r) => r.bytes), Array.from({ length: 100 }, (_, i) => 1 + ((i * 331) % 1400)));
      const pick = (z: ZeroCopySocket) => {
        const { sends, bytes, zeroCopied, copied, errors, inFlight, notifications } = z.stats();
        return { sends, bytes, zeroCopied, copied, errors, inFlight, notifications };
      };
      // One notification per kernel request: a stream send goes as requests of at most 4 MiB.
      const tcpRequests = Math.ceil(STUCK_SIZE / (4 << 20)) + 102;
      const t = pick(tcp);
      assertStreamNotifications(backend, t.notifications, tcpRequests, 'TCP notifications');
      assert.deepEqual(t, { sends: 103, bytes: tcpBytes, zeroCopied: 0, copied: 103, errors: 0, inFlight: 0, notifications: t.notifications });
      assert.deepEqual(pick(udp), { sends: 116, bytes: udpBytes, zeroCopied: 0, copied: 116, errors: 0, inFlight: 0, notifications: notifies(backend) ? 116 : 0 });
      await tcpRx.waitForBytes(tcpBytes, 30_000);
      assert.equal(hashRx.digest('hex'), hashTx.digest('hex'), 'TCP stream intact and in order');
    } finally {
      await closeAll(ring, tcp, udp);
      await destroySocket(client);
      await closeDgram(usock);
      await tcpRx.close();
      await udpRx.close();
    }
  });

  /** 500 sends of each kind queued at once on a ring with room for a handful: the rest wait, all settle. */
  // A 4-entry ring instead of the default one; every TCP send (up to 20000 bytes) may wait for its notification.
  test(`${backend}: Ring({ entries: 4 }) with 500 UDP and 500 TCP sends queued at once: all settle (backlog)`, ioUringOnly(backend, 'a Ring\'s backlog is io_uring\'s (the other backends have no submission queue to fill; 2000 sends in flight on one socket run on each)', gatedOn(backend, 60_000, skipReason, { rings: [4], zeroCopy: [[8, 600], [500, 20000]] })), async () => {
    // The ring first: if it cannot be made, no socket is left open to keep the process alive.
    const ring = ownRing(backend, 4)!;
    current = ring;
    const verifier = new StreamVerifier();
    const tcpRx: TcpReceiver = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const udpRx: UdpReceiver = await udpReceiver('udp4');
    const client = await connectTcp(tcpRx.port);
    const usock = await boundUdp('udp4');
    const tcp = adoptOn(client);
    const udp = adoptOn(usock);
    try {
      const prng = new Prng(5);
      const n = 500;
      const up: Promise<SendResult>[] = [];
      const tp: Promise<SendResult>[] = [];
      const tcpSizes: number[] = [];
      for (let i = 0; i < n; i++) {
        up.push(udp.send(datagram(i, 100 + i), { address: '127.0.0.1', port: udpRx.port, zeroCopy: true }));
        const size = prng.int(1, 20000);
        tcpSizes.push(size);
        const b = prng.bytes(size);
        verifier.expect(b);
        tp.push(tcp.send(b, { zeroCopy: true }));
      }
      assert.ok(ring.inFlight > ring.maxInFlight, `the excess waits in the backlog (${ring.inFlight} vs ${ring.maxInFlight})`);
      const [ur, tr] = await within(Promise.all([Promise.all(up), Promise.all(tp)]), 45_000, '1000 sends on a 4-entry ring');
      ur.forEach((r, i) => assert.deepEqual(r, { bytes: 100 + i, zeroCopy: false }, `UDP send #${i}`));
      tr.forEach((r, i) => assert.deepEqual(r, { bytes: tcpSizes[i], zeroCopy: false }, `TCP send #${i}`));
      assert.equal(udp.stats().sends, n);
      assert.equal(tcp.stats().sends, n);
      assert.equal(udp.stats().notifications, n);
      assert.equal(tcp.stats().notifications, n);
      assert.equal(ring.inFlight, 0);
      await tcpRx.waitForBytes(verifier.expected, 30_000);
      assert.ok(verifier.complete, `TCP stream intact (first bad byte at ${verifier.mismatchAt})`);
    } finally {
      await closeAll(ring, tcp, udp);
      await destroySocket(client);
      await closeDgram(usock);
      await tcpRx.close();
      await udpRx.close();
    }
  });
}
