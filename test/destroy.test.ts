/**
 * Teardown of a stream mid-send: destroy(), the Node socket's destroy()/resetAndDestroy()/end(),
 * ring.close() and a peer reset while a large TCP send is half done and more are queued. Nothing
 * more goes on the wire for that socket, every send settles exactly once (after its release),
 * inFlight never goes below 0, close() resolves and the descriptors are back to their baseline.
 * Once per backend; ring.close() is io_uring's (on the others the resend test closes with destroy()).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import readline from 'node:readline';
import net from 'node:net';
import { test } from 'node:test';
import { Ring, type ZeroCopySocket } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { codeOf, turns, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { StreamVerifier, boundUdp, closeDgram, connectTcp, countFds, destroySocket, listFds, tcpReceiver, udpReceiver, type TcpReceiver } from './helpers/net.js';
import { Settles } from './helpers/settle.js';
import { BACKENDS, adopterFor, gatedOn, ioUringOnly, warmBackend, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
/**
 * Each test's Ring and a stalled stream's zero-copy sends: the 32 MiB one (its first 4 MiB request
 * in the kernel) and what queues behind it, counted whole to be safe (without it, as an
 * unprivileged user under a small RLIMIT_MEMLOCK, the ring or the pinning is refused).
 */
const opts = (backend: Backend, timeout: number): { timeout: number; skip: string | false } => gatedOn(backend, timeout, skipReason, { rings: [256], zeroCopy: [BIG] });
const RING_CLOSE = 'ring.close() is a Ring\'s, and a Ring is io_uring (the same teardown by zs.destroy() and the Node socket runs here)';

const BIG = 32 << 20;
const QUEUED = 64;
const SMALL = 64 << 10;

interface Stalled {
  /** io_uring: the test's own Ring; undefined on the other backends. */
  ring: Ring | undefined;
  rx: TcpReceiver;
  peer: net.Socket;
  client: net.Socket;
  zs: ZeroCopySocket;
  settles: Settles;
  verifier: StreamVerifier;
}

/**
 * A TCP connection whose receiver does not read: a 32 MiB zero-copy send is in the kernel,
 * waiting for buffer space, and 64 sends of 64 KiB wait behind it.
 */
async function stalledStream(backend: Backend): Promise<Stalled> {
  const ring = backend === 'io_uring' ? new Ring() : undefined;
  const verifier = new StreamVerifier();
  const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
  const client = await connectTcp(rx.port);
  const peer = await rx.peer;
  const s: Stalled = { ring, rx, peer, client, zs: adopterFor(backend, ring && (() => ring))(client), settles: undefined!, verifier };
  s.settles = new Settles(s.zs);
  const big = new Prng(7).bytes(BIG);
  verifier.expect(big);
  s.zs.send(big, undefined, s.settles.cb(0));
  for (let i = 1; i <= QUEUED; i++) {
    const b = new Prng(100 + i).bytes(SMALL);
    verifier.expect(b);
    s.zs.send(b, undefined, s.settles.cb(i));
  }
  // The big send reaches the kernel and fills the socket buffers; the peer reads nothing.
  await turns(20);
  assert.equal(s.settles.settled, 0, 'nothing settles while the peer does not read');
  return s;
}

/**
 * A TCP connection whose receiver does not read, fed 1000 sends of 64 KiB: they go as batches
 * of 64 (one SENDMSG_ZC each), and the batch in the kernel is cut short by the full buffers, so
 * its unsent sends are back in the queue while its notification is still to come.
 */
async function stalledBatches(backend: Backend): Promise<Stalled & { n: number }> {
  const ring = backend === 'io_uring' ? new Ring() : undefined;
  const verifier = new StreamVerifier();
  const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
  const client = await connectTcp(rx.port);
  const peer = await rx.peer;
  const zs = adopterFor(backend, ring && (() => ring))(client);
  const s = { ring, rx, peer, client, zs, settles: new Settles(zs), verifier, n: 1000 };
  for (let i = 0; i < s.n; i++) {
    const b = new Prng(1000 + i).bytes(SMALL);
    verifier.expect(b);
    zs.send(b, { zeroCopy: true }, s.settles.cb(i));
  }
  await turns(20);
  assert.ok(s.settles.settled < s.n, 'sends wait behind the full socket');
  return s;
}

/** Reads what the kernel still delivers, then checks that it is an intact prefix that stops inside the cut send. */
async function assertCutPrefix(s: Stalled, what: string): Promise<void> {
  s.rx.resume();
  await turns(50);
  assert.equal(s.verifier.mismatchAt, -1, `${what}: the peer received exactly the stream's bytes, in order`);
  assert.ok(s.verifier.verified < BIG, `${what}: the peer got ${s.verifier.verified} bytes: nothing past the cut send went out`);
}

async function finish(s: Stalled, fdsBefore: number, what: string): Promise<void> {
  await within(s.zs.close(), 10_000, `${what}: zs.close()`);
  assert.equal(s.zs.closed, true);
  await destroySocket(s.client);
  await s.rx.close();
  if (s.ring !== undefined) await within(s.ring.close(), 10_000, `${what}: ring.close()`);
  await turns(5);
  s.settles.assertOnce(what);
  assert.equal(s.zs.stats().inFlight, 0, `${what}: inFlight back to 0`);
  assert.equal(countFds(), fdsBefore, `${what}: descriptors back to the baseline\n${listFds().join('\n')}`);
}

/** The queued sends' codes are `queued`; the cut one's is one of `cut`. */
function assertCodes(s: Stalled, cut: string[], queued: string, what: string): void {
  const codes = s.settles.codes();
  assert.ok(cut.includes(String(codes[0])), `${what}: the cut send settled with ${codes[0]}, expected ${cut.join(' or ')}`);
  assert.deepEqual(codes.slice(1), new Array(QUEUED).fill(queued), `${what}: the queued sends`);
}

for (const backend of BACKENDS) {
  test(`${backend}: zs.destroy() mid-send: the queued sends settle at once, the cut send with ECANCELED after its release; nothing more goes out`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    void s.zs.destroy();
    await s.settles.waitFor(QUEUED, 5_000, 'queued sends after destroy()');
    // The kernel holds the cut send's pages until they are acknowledged (io_uring's notification,
    // msg_zerocopy's error-queue range); copy's sendmsg copied them, so nothing holds it back.
    if (backend !== 'copy') assert.equal(s.settles.outcomes[0], undefined, 'the cut send waits for its release');
    await assertCutPrefix(s, 'destroy()');
    await s.settles.waitFor(QUEUED + 1, 10_000, 'the cut send after the peer read');
    assertCodes(s, ['ECANCELED'], 'ERR_URING_ZC_SOCKET_CLOSED', 'destroy()');
    await finish(s, fds, 'destroy()');
  });

  test(`${backend}: the Node socket's destroy() mid-send: the same, and the peer sees the end of the stream`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    const ended = once(s.peer, 'close');
    s.client.destroy();
    await s.settles.waitFor(QUEUED, 5_000, 'queued sends after sock.destroy()');
    await assertCutPrefix(s, 'sock.destroy()');
    await s.settles.waitFor(QUEUED + 1, 10_000, 'the cut send');
    await within(ended, 10_000, 'the peer sees the connection end');
    assertCodes(s, ['ECANCELED'], 'ERR_URING_ZC_SOCKET_CLOSED', 'sock.destroy()');
    await finish(s, fds, 'sock.destroy()');
  });

  test(`${backend}: the Node socket's resetAndDestroy() resets the connection: the cut send is released without the peer reading, and the data still queued is dropped`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    s.client.resetAndDestroy();
    // The peer does not read: only a reset (dropping the queued data) can release the cut send.
    await s.settles.waitFor(QUEUED + 1, 10_000, 'every send after resetAndDestroy(), the peer not reading');
    assertCodes(s, ['ECANCELED'], 'ERR_URING_ZC_SOCKET_CLOSED', 'resetAndDestroy()');
    // Not events.once(): it rejects at an 'error', and the reset reaches the peer as ECONNRESET
    // before its 'close' on Node 24 (its 'error' listener in tcpReceiver keeps that quiet).
    const closed = new Promise((resolve) => s.peer.once('close', resolve));
    s.rx.resume();
    await within(closed, 10_000, 'the peer\'s socket closes');
    // A FIN would come after every byte the kernel had accepted; a reset drops those not yet sent.
    assert.ok(s.verifier.verified < s.zs.bytesWritten, `the peer read ${s.verifier.verified} of the ${s.zs.bytesWritten} bytes the kernel had accepted: the connection was reset, not closed`);
    assert.equal(s.verifier.mismatchAt, -1, 'what the peer read is an intact prefix');
    await finish(s, fds, 'resetAndDestroy()');
  });

  test(`${backend}: ring.close() mid-stream: every send settles once (RING_CLOSED queued, the cut one ECANCELED) and close() resolves`, ioUringOnly(backend, RING_CLOSE, opts(backend, 60_000)), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    const closing = s.ring!.close();
    await s.settles.waitFor(QUEUED, 5_000, 'queued sends after ring.close()');
    await assertCutPrefix(s, 'ring.close()');
    await within(closing, 10_000, 'ring.close()');
    assertCodes(s, ['ECANCELED'], 'ERR_URING_ZC_RING_CLOSED', 'ring.close()');
    await finish(s, fds, 'ring.close()');
  });

  for (const how of ['sock.end()', 'zs.destroy() then sock.end()', 'ring.close()'] as const) {
    test(`${backend}: ${how} while a batch cut short waits for its notification: every send settles once, inFlight never below 0, close() resolves, no fd leaks`, how === 'ring.close()' ? ioUringOnly(backend, RING_CLOSE, opts(backend, 60_000)) : opts(backend, 60_000), async () => {
      await warmBackend(backend);
    const fds = countFds();
      const s = await stalledBatches(backend);
      const ringClosed = how === 'ring.close()' ? s.ring!.close() : undefined;
      if (how === 'zs.destroy() then sock.end()') void s.zs.destroy();
      if (how !== 'ring.close()') s.client.end();
      s.rx.resume();
      await s.settles.waitFor(s.n, 20_000, `every send after ${how}`);
      await turns(20);
      s.settles.assertOnce(how);
      assert.equal(s.verifier.mismatchAt, -1, `${how}: what the peer read is an intact prefix`);
      const codes = new Set(s.settles.codes());
      const allowed = new Set([null, 'EPIPE', 'ECANCELED', 'ERR_URING_ZC_SOCKET_CLOSED', 'ERR_URING_ZC_RING_CLOSED']);
      for (const c of codes) assert.ok(allowed.has(c), `${how}: a send settled with ${c}`);
      if (ringClosed !== undefined) await within(ringClosed, 10_000, 'ring.close()');
      await finish(s, fds, how);
    });
  }

  test(`${backend}: sock.end() with sends queued: the broken stream fails every send once (EPIPE), close() resolves`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    s.client.end();
    await s.settles.waitFor(QUEUED, 5_000, 'queued sends after sock.end()');
    s.rx.resume();
    await s.settles.waitFor(QUEUED + 1, 10_000, 'the cut send');
    assertCodes(s, ['EPIPE'], 'EPIPE', 'sock.end()');
    assert.equal(s.verifier.mismatchAt, -1, 'what the peer read is an intact prefix');
    await finish(s, fds, 'sock.end()');
  });

  test(`${backend}: zs.destroy() then sock.end(): every send settles once`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const s = await stalledStream(backend);
    void s.zs.destroy();
    s.client.end();
    await s.settles.waitFor(QUEUED, 5_000, 'queued sends');
    await assertCutPrefix(s, 'destroy() + end()');
    await s.settles.waitFor(QUEUED + 1, 10_000, 'the cut send');
    assertCodes(s, ['ECANCELED', 'EPIPE'], 'ERR_URING_ZC_SOCKET_CLOSED', 'destroy() + end()');
    await finish(s, fds, 'destroy() + end()');
  });

  test(`${backend}: a peer reset hits a batch cut short: every send of it and behind it settles once, with the errno`, opts(backend, 60_000), async () => {
    await warmBackend(backend);
    const fds = countFds();
    const ring = backend === 'io_uring' ? new Ring() : undefined;
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adopterFor(backend, ring && (() => ring))(client);
    const settles = new Settles(zs);
    // 1000 sends of 64 KiB: batches of 64 (4 MiB), the first cut short by the full socket buffers.
    const n = 1000;
    const buf = new Prng(3).bytes(SMALL);
    for (let i = 0; i < n; i++) zs.send(buf, { zeroCopy: true }, settles.cb(i));
    await turns(20);
    const sent = settles.settled;
    assert.ok(sent < n, 'sends wait behind the full socket');
    (await rx.peer).resetAndDestroy();
    await settles.waitFor(n, 10_000, 'every send after the reset');
    settles.assertOnce('reset');
    const failed = settles.codes().filter((c) => c !== null);
    assert.ok(failed.length > 0 && failed.every((c) => c === 'ECONNRESET' || c === 'EPIPE'), `the failed sends have the errno: ${[...new Set(failed)].join(', ')}`);
    await within(zs.close(), 10_000, 'zs.close()');
    await destroySocket(client);
    await rx.close();
    await ring?.close();
    await turns(5);
    settles.assertOnce('reset, after close');
    assert.equal(countFds(), fds, `descriptors back to the baseline\n${listFds().join('\n')}`);
  });

  test(`${backend}: ${backend === 'io_uring' ? 'ring.close()' : 'zs.destroy()'} with a callback that resends on error: the callback never runs inside send() (UDP backlog, TCP queue)`, opts(backend, 30_000), async () => {
    for (const kind of ['udp', 'tcp'] as const) {
      // entries 1: one datagram request in the kernel, the others wait in the ring's backlog.
      // The other backends have no Ring: the socket is destroyed instead, its sends queued.
      const ring = backend === 'io_uring' ? new Ring({ entries: 1 }) : undefined;
      const urx = await udpReceiver('udp4');
      const rx = await tcpReceiver();
      const client = await connectTcp(rx.port);
      const tx = await boundUdp('udp4');
      const adoptOn = adopterFor(backend, ring && (() => ring));
      const zs = kind === 'udp' ? adoptOn(tx) : adoptOn(client);
      const dest = kind === 'udp' ? { address: '127.0.0.1', port: urx.port } : undefined;
      const buf = Buffer.alloc(1000, 7);
      let inSend = false;
      let nested = 0;
      let failures = 0;
      let done!: () => void;
      const finished = new Promise<void>((r) => {
        done = r;
      });
      const cb = (err: Error | null): void => {
        if (inSend) nested++;
        if (err === null) return;
        if (++failures >= 200) {
          if (failures === 200) done();
          return;
        }
        inSend = true;
        try {
          zs.send(buf, dest, cb);
        } finally {
          inSend = false;
        }
      };
      for (let i = 0; i < 20; i++) zs.send(buf, dest, cb);
      const closing = ring !== undefined ? ring.close() : zs.destroy();
      await within(finished, 10_000, `${kind}: 200 resends on error`);
      assert.equal(nested, 0, `${kind}: callbacks that ran inside send()`);
      await within(closing, 10_000, ring !== undefined ? 'ring.close()' : 'zs.destroy()');
      await closeDgram(tx);
      await destroySocket(client);
      await rx.close();
      await urx.close();
    }
  });
}

/** A receiver in another process that shuts down its sending side at once and reads 1 KiB at a time (as `ncat --recv-only` does), printing the byte count and SHA-1 of each connection. */
const HALF_CLOSE_RECEIVER = `
import socket, sys, hashlib
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(16)
print(srv.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = srv.accept()
    c.shutdown(socket.SHUT_WR)
    n = 0; h = hashlib.sha1()
    while True:
        d = c.recv(1024)
        if not d: break
        n += len(d); h.update(d)
    print(n, h.hexdigest(), flush=True)
    c.close()
`;

const python = spawnSync('python3', ['--version']).status === 0 ? null : 'python3 is not installed (the half-closing receiver)';

for (const backend of BACKENDS) {
  test(`${backend}: a peer that half-closes at once and keeps reading slowly (another process) gets 64 MiB intact, 20 times in a row`, { timeout: 180_000, skip: gatedOn(backend, 180_000, skipReason, { rings: [256], zeroCopy: [[64, 1 << 20]] }).skip || (python ?? false) }, async () => {
    const runs = 20;
    const rxProc = spawn('python3', ['-c', HALF_CLOSE_RECEIVER, String(runs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: rxProc.stdout! })[Symbol.asyncIterator]();
    const ring = backend === 'io_uring' ? new Ring() : undefined;
    try {
      const port = Number((await within(lines.next(), 10_000, 'the receiver\'s port')).value);
      const payload = new Prng(11).bytes(64 << 20);
      const want = createHash('sha1').update(payload).digest('hex');
      for (let run = 0; run < runs; run++) {
        // allowHalfOpen: Node would otherwise end our side too when the peer's FIN arrives.
        const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        client.on('error', () => {});
        await once(client, 'connect');
        const zs = adopterFor(backend, ring && (() => ring))(client);
        const sends: Promise<unknown>[] = [];
        for (let at = 0; at < payload.length; at += 1 << 20) sends.push(zs.send(payload.subarray(at, at + (1 << 20)), { zeroCopy: true }));
        const results = await within(Promise.allSettled(sends), 60_000, `run ${run}: the sends`);
        const failed = results.filter((r) => r.status === 'rejected').map((r) => codeOf((r as PromiseRejectedResult).reason));
        assert.deepEqual(failed, [], `run ${run}: failed sends`);
        await zs.close();
        client.end();
        const line = String((await within(lines.next(), 60_000, `run ${run}: the receiver's count`)).value);
        assert.equal(line, `${payload.length} ${want}`, `run ${run}: the receiver got 64 MiB intact`);
        await destroySocket(client);
      }
    } finally {
      rxProc.kill();
      await ring?.close();
    }
  });
}
