/**
 * The backends without io_uring, msg_zerocopy and copy: a quick core of the send suite (TCP
 * integrity with many in flight, a stalled and resumed peer through the epoll wake-up, UDP
 * destinations, sendv, GSO, pools, destroy mid-stream, zeroCopy in the sink), what is theirs only
 * (libuv >= 1.52 and dgram sockets Node reads, a sender that resends from every callback), and how
 * a backend is chosen (option, URING_ZC_BACKEND, auto, AF_UNIX). The whole send suite runs per
 * backend too, in its own files (test/helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { adopt, capabilities, Ring, type ZeroCopySocket } from '../src/index.js';
import { Prng, datagram } from './helpers/data.js';
import { throwsCode, turns, within, withSink, zeroCopyUnavailableReason } from './helpers/env.js';
import { StreamVerifier, boundUdp, closeDgram, connectTcp, countFds, destroySocket, listFds, tcpReceiver, udpReceiver } from './helpers/net.js';
import { collectChild } from './helpers/pool-helpers.js';
import { Settles } from './helpers/settle.js';

const KINDS = ['msg_zerocopy', 'copy'] as const;
const mzcReason = capabilities().backends.msg_zerocopy.ok ? null : `MSG_ZEROCOPY is not available here: ${capabilities().backends.msg_zerocopy.reason}`;
const reason = (kind: string): string | false => (kind === 'msg_zerocopy' ? mzcReason ?? false : false);

/** Makes this thread's backend of `kind` (its epoll set is a descriptor of its own, kept for the thread, like the default ring's). */
async function warm(kind: 'msg_zerocopy' | 'copy'): Promise<void> {
  const s = await boundUdp('udp4');
  await adopt(s, { backend: kind }).close();
  await closeDgram(s);
}

for (const kind of KINDS) {
  test(`${kind}: 64 MiB over TCP in mixed sizes, all in flight at once, arrive intact and in order`, { timeout: 60_000, skip: reason(kind) }, async () => {
    await warm(kind);
    const fds = countFds();
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adopt(client, { backend: kind });
    assert.equal(zs.backend, kind);
    try {
      const prng = new Prng(41);
      const sends: Promise<unknown>[] = [];
      let total = 0;
      while (total < 64 << 20) {
        const b = prng.bytes(Math.min((64 << 20) - total, prng.logSize(1, 1 << 20)));
        verifier.expect(b);
        total += b.length;
        sends.push(zs.send(b));
      }
      const results = (await within(Promise.all(sends), 40_000, 'the sends')) as { bytes: number }[];
      assert.equal(results.reduce((n, r) => n + r.bytes, 0), total);
      await rx.waitForBytes(total, 20_000);
      assert.ok(verifier.complete, `intact (mismatch at ${verifier.mismatchAt})`);
      assert.equal(zs.stats().inFlight, 0);
      assert.equal(zs.bytesWritten, total);
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
    }
    await turns(3);
    assert.equal(countFds(), fds, `descriptors back to the baseline\n${listFds().join('\n')}`);
  });

  test(`${kind}: a peer that stops reading and reads again gets a long stream intact (writability and completions through the epoll set)`, { timeout: 60_000, skip: reason(kind) }, async () => {
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ paused: true, onData: (c, s) => {
      verifier.push(c);
      // Pause every so often: sends meet EAGAIN again and again while completions queue up.
      if ((verifier.verified & 0xfffff) < c.length) {
        s.pause();
        setTimeout(() => s.resume(), 5);
      }
    } });
    const client = await connectTcp(rx.port);
    const zs = adopt(client, { backend: kind });
    try {
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 48; i++) {
        const b = new Prng(100 + i).bytes(1 << 20);
        verifier.expect(b);
        sends.push(zs.send(b, { zeroCopy: true }));
      }
      await turns(20);
      assert.ok(zs.stats().inFlight > 0, 'sends wait for the paused peer');
      rx.resume();
      await within(Promise.all(sends), 40_000, 'the sends after the peer reads');
      await rx.waitForBytes(48 << 20, 20_000);
      assert.ok(verifier.complete, `intact (mismatch at ${verifier.mismatchAt})`);
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
    }
  });

  test(`${kind}: UDP per-send destinations, sendv and GSO arrive intact; zeroCopy false on loopback`, { timeout: 30_000, skip: reason(kind) }, async () => {
    const rx = await udpReceiver('udp4');
    const tx = await boundUdp('udp4');
    const zs = adopt(tx, { backend: kind });
    const dest = { address: '127.0.0.1', port: rx.port };
    try {
      const plain = await Promise.all(Array.from({ length: 50 }, (_, i) => zs.send(datagram(i, 20000), dest)));
      plain.forEach((r) => assert.deepEqual(r, { bytes: 20000, zeroCopy: false }));
      const head = Buffer.from('head:');
      const v = await zs.sendv([head, datagram(50, 30000)], dest);
      assert.equal(v.bytes, 30005);
      const g = await zs.send(datagram(51, 3000), { ...dest, segmentSize: 1000 });
      assert.equal(g.bytes, 3000);
      await rx.waitFor(50 + 1 + 3, 10_000);
      const bySeq = new Map(rx.messages.slice(0, 50).map((m) => [m.data.readUInt32BE(0), m.data]));
      for (let i = 0; i < 50; i++) assert.ok(bySeq.get(i)?.equals(datagram(i, 20000)), `datagram ${i} intact`);
      assert.ok(rx.messages[50]!.data.equals(Buffer.concat([head, datagram(50, 30000)])), 'the sendv datagram');
      assert.ok(Buffer.concat(rx.messages.slice(51, 54).map((m) => m.data)).equals(datagram(51, 3000)), 'the GSO segments');
    } finally {
      await zs.close();
      await closeDgram(tx);
      await rx.close();
    }
  });

  test(`${kind}: pool buffers are plain memory here, and still return to their pool only when their send settles`, { timeout: 30_000, skip: reason(kind) || (zeroCopyUnavailableReason() ?? false) }, async () => {
    const ring = new Ring();
    const pool = ring.createBufferPool({ bufferSize: 4096, count: 4 });
    const rx = await udpReceiver('udp4');
    const tx = await boundUdp('udp4');
    const zs = adopt(tx, { backend: kind });
    try {
      const b = pool.acquire()!;
      b.fill(9);
      const p = zs.send(b, { address: '127.0.0.1', port: rx.port });
      assert.equal(pool.stats().inFlight, 1);
      const r = await p;
      assert.equal(r.bytes, 4096);
      assert.equal(zs.stats().fixed, 0, 'not a registered-buffer send');
      assert.equal(pool.stats().free, 4, 'back in the pool after the send settled');
      await rx.waitFor(1, 5_000);
      assert.ok(rx.messages[0]!.data.equals(Buffer.alloc(4096, 9)));
    } finally {
      await zs.close();
      await closeDgram(tx);
      await rx.close();
      await pool.close();
      await ring.close();
    }
  });

  test(`${kind}: destroy() mid-stream: queued sends settle with ERR_URING_ZC_SOCKET_CLOSED, each exactly once; nothing past the cut goes out`, { timeout: 30_000, skip: reason(kind) }, async () => {
    await warm(kind);
    const fds = countFds();
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ paused: true, onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    const zs = adopt(client, { backend: kind });
    const st = new Settles(zs);
    const n = 200;
    for (let i = 0; i < n; i++) {
      const b = new Prng(300 + i).bytes(256 << 10);
      verifier.expect(b);
      zs.send(b, { zeroCopy: true }, st.cb(i));
    }
    await turns(20);
    assert.ok(st.settled < n, 'sends wait behind the paused peer');
    void zs.destroy();
    rx.resume();
    await st.waitFor(n, 20_000, 'every send after destroy()');
    await within(zs.close(), 10_000, 'zs.close()');
    await turns(10);
    st.assertOnce(`${kind} destroy`);
    const codes = new Set(st.codes());
    for (const c of codes) assert.ok(c === null || c === 'ERR_URING_ZC_SOCKET_CLOSED' || c === 'ECANCELED', `a send settled with ${c}`);
    assert.ok(codes.has('ERR_URING_ZC_SOCKET_CLOSED'), 'the queued sends were not sent');
    assert.equal(verifier.mismatchAt, -1, 'what the peer got is an intact prefix');
    assert.ok(verifier.verified < n * (256 << 10), 'nothing past the cut went out');
    await destroySocket(client);
    await rx.close();
    await turns(3);
    assert.equal(countFds(), fds, `descriptors back to the baseline\n${listFds().join('\n')}`);
  });

  test(`${kind}: the Node socket's resetAndDestroy() with a peer that never reads: every send is released and settles once, no fd left`, { timeout: 30_000, skip: reason(kind) }, async () => {
    await warm(kind);
    const fds = countFds();
    const rx = await tcpReceiver({ paused: true });
    const client = await connectTcp(rx.port);
    const zs = adopt(client, { backend: kind });
    const st = new Settles(zs);
    const big = new Prng(77).bytes(4 << 20);
    for (let i = 0; i < 16; i++) zs.send(big, { zeroCopy: true }, st.cb(i));
    await turns(20);
    assert.ok(st.settled < 16, 'sends wait for the peer');
    client.resetAndDestroy();
    // The peer never reads: only the reset can release what the kernel holds.
    await st.waitFor(16, 10_000, 'every send after resetAndDestroy()');
    await within(zs.close(), 10_000, 'zs.close()');
    st.assertOnce(`${kind} reset`);
    await rx.close();
    await turns(3);
    assert.equal(countFds(), fds, `descriptors back to the baseline\n${listFds().join('\n')}`);
  });

  test(`${kind}: into the IFB sink namespace, every datagram reports zeroCopy ${kind === 'msg_zerocopy'}`, { timeout: 60_000 }, async (t) => {
    const specs = ['16384:8', '61440:8'];
    await withSink(t, kind === 'msg_zerocopy' ? mzcReason : null, async (sink) => {
      const child = sink.spawn([process.execPath, 'dist/test/helpers/sink-sender.js', sink.destination, '9', ...specs], {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, URING_ZC_BACKEND: kind },
      });
      const { code, out, err } = await collectChild(child, 40_000);
      assert.equal(code, 0, `sink-sender exited with ${code}: ${err}`);
      const report = JSON.parse(out.trim()) as { rows: { size: number; bytes?: number; zeroCopy?: boolean; code?: string }[]; stats: { errors: number; inFlight: number } };
      assert.equal(report.rows.length, 16);
      for (const row of report.rows) assert.deepEqual(row, { size: row.size, bytes: row.size, zeroCopy: kind === 'msg_zerocopy' });
      assert.equal(report.stats.errors, 0);
      assert.equal(report.stats.inFlight, 0);
    });
  });
}

test('msg_zerocopy: a dgram socket that Node reads copies where libuv drains its error queue (libuv >= 1.52: Node 24); with receive: false it keeps MSG_ZEROCOPY; the sends of both settle', { timeout: 20_000, skip: mzcReason ?? false }, async () => {
  // libuv 1.52 reads the error queue of a UDP socket it polls for reading, where MSG_ZEROCOPY
  // completions arrive (seen with strace: recvmsg(MSG_ERRQUEUE) on Node's descriptor); with
  // them gone, such sends never settled.
  const [major = 0, minor = 0] = process.versions.uv.split('.').map(Number);
  const drains = major > 1 || (major === 1 && minor >= 52);
  const rx = await udpReceiver('udp4');
  const read = await boundUdp('udp4');
  const sendOnly = await boundUdp('udp4');
  const zsRead = adopt(read, { backend: 'msg_zerocopy' });
  const zsSendOnly = adopt(sendOnly, { backend: 'msg_zerocopy', receive: false });
  try {
    assert.equal(zsRead.backend, drains ? 'copy' : 'msg_zerocopy', `libuv ${process.versions.uv}, Node reads the socket`);
    assert.equal(zsSendOnly.backend, 'msg_zerocopy', 'Node does not read it');
    const dest = { address: '127.0.0.1', port: rx.port };
    const results = await within(Promise.all([zsRead.send(datagram(0, 20000), dest), zsSendOnly.send(datagram(1, 20000), dest)]), 10_000, 'both sends settle');
    assert.deepEqual(results, [{ bytes: 20000, zeroCopy: false }, { bytes: 20000, zeroCopy: false }], 'loopback copies');
    await rx.waitFor(2, 10_000);
    const bySeq = new Map(rx.messages.map((m) => [m.data.readUInt32BE(0), m.data]));
    for (const i of [0, 1]) assert.ok(bySeq.get(i)?.equals(datagram(i, 20000)), `datagram ${i} intact`);
  } finally {
    await zsRead.close();
    await zsSendOnly.close();
    await closeDgram(read);
    await closeDgram(sendOnly);
    await rx.close();
  }
});

for (const kind of KINDS) {
  test(`${kind}: a sender that sends again from each callback still lets the event loop turn (a timer fires)`, { timeout: 30_000, skip: reason(kind) }, async () => {
    const rx = dgram.createSocket('udp4');
    rx.bind(0, '127.0.0.1');
    await once(rx, 'listening');
    const tx = await boundUdp('udp4');
    const zs = adopt(tx, { backend: kind, receive: false });
    const dest = { address: '127.0.0.1', port: rx.address().port };
    const buf = Buffer.alloc(1000, 3);
    let fired = false;
    setTimeout(() => (fired = true), 1);
    // Bounded: a backend that never yields would reach the cap with the timer not fired.
    const cap = 200_000;
    let sends = 0;
    await within(new Promise<void>((resolve) => {
      let inFlight = 0;
      const cb = (): void => {
        inFlight--;
        sends++;
        if (!fired && sends < cap) {
          inFlight++;
          zs.send(buf, dest, cb);
        } else if (inFlight === 0) {
          resolve();
        }
      };
      for (let i = 0; i < 64; i++) {
        inFlight++;
        zs.send(buf, dest, cb);
      }
    }), 20_000, 'the send loop');
    assert.ok(fired, `the timer fired while the loop sent (${sends} sends)`);
    await zs.close();
    await closeDgram(tx);
    await closeDgram(rx);
  });
}

test('choosing: the option and URING_ZC_BACKEND pick a backend; a forced syscall backend never probes io_uring; bad values are refused', { timeout: 30_000 }, async () => {
  const tx = await boundUdp('udp4');
  try {
    throwsCode(() => adopt(tx, { backend: 'bogus' as 'copy' }), 'ERR_URING_ZC_INVALID_ARG', 'backend: bogus');
    const zs = adopt(tx, { backend: 'copy' });
    assert.equal(zs.backend, 'copy');
    await zs.close();
    if (zeroCopyUnavailableReason() === null) {
      const ring = new Ring();
      throwsCode(() => ring.adopt(tx, { backend: 'msg_zerocopy' }), 'ERR_URING_ZC_INVALID_ARG', 'ring.adopt() with another backend');
      assert.equal(ring.adopt(tx).backend, 'io_uring');
      await ring.close();
    }
    assert.equal(capabilities().backend, capabilities().backends.io_uring.ok ? 'io_uring' : capabilities().backends.msg_zerocopy.ok ? 'msg_zerocopy' : 'copy', 'auto picks the best that works');
  } finally {
    await closeDgram(tx);
  }
  // A child with URING_ZC_BACKEND=copy: capabilities() says io_uring was not probed, adopt() copies.
  const script = `
    import('${path.resolve('dist/src/index.js')}').then(async (m) => {
      const dgram = await import('node:dgram');
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const zs = m.adopt(s);
        console.log(JSON.stringify({ caps: m.capabilities(), backend: zs.backend }));
        zs.close().then(() => s.close());
      });
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, URING_ZC_BACKEND: 'copy' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const { code, out, err } = await collectChild(child, 20_000);
  assert.equal(code, 0, err);
  const r = JSON.parse(out.trim()) as { caps: { backend: string; ioUring: boolean; backends: { io_uring: { ok: boolean; reason: string } } }; backend: string };
  assert.equal(r.backend, 'copy');
  assert.equal(r.caps.backend, 'copy');
  assert.equal(r.caps.ioUring, false);
  assert.match(r.caps.backends.io_uring.reason, /not probed: URING_ZC_BACKEND=copy/);
  const bad = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, URING_ZC_BACKEND: 'fast' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const b = await collectChild(bad, 20_000);
  assert.notEqual(b.code, 0);
  assert.match(b.err, /ERR_URING_ZC_INVALID_ARG|URING_ZC_BACKEND must be one of/);
});

test('AF_UNIX sockets get a copying send under every backend, bytes intact', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-unix-'));
  const file = path.join(dir, 's.sock');
  let got = Buffer.alloc(0);
  const peers: net.Socket[] = [];
  const server = net.createServer((s) => {
    peers.push(s);
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  });
  server.listen(file);
  await once(server, 'listening');
  const client = net.connect(file);
  await once(client, 'connect');
  const sockets: ZeroCopySocket[] = [];
  try {
    const kinds = zeroCopyUnavailableReason() === null ? ['auto', 'io_uring', ...KINDS] as const : ['auto', ...KINDS] as const;
    for (const kind of kinds) {
      const zs = adopt(client, { backend: kind });
      sockets.push(zs);
      assert.equal(zs.backend, 'copy', `${kind}: AF_UNIX copies`);
      const r = await zs.send(Buffer.from(`over unix with ${kind};`), { zeroCopy: true });
      assert.equal(r.zeroCopy, false);
      // A stream has one writer at a time: the next backend adopts it once this one has closed.
      await zs.close();
    }
    for (let i = 0; i < 100 && got.length < 10; i++) await turns(1);
    await within((async () => {
      while (!got.toString().includes(';', got.length - 1)) await turns(1);
    })(), 5_000, 'the bytes over unix');
    assert.equal(got.toString(), kinds.map((k) => `over unix with ${k};`).join(''));
  } finally {
    for (const zs of sockets) await zs.close();
    await destroySocket(client);
    for (const p of peers) p.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
