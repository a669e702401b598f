/**
 * Lifecycle: adopting, sending and closing leaks no descriptor; an idle default ring does not keep
 * the process alive; several rings in one thread are independent. Once per backend (the children
 * and workers get it through URING_ZC_BACKEND); several Rings are io_uring's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Ring, type SendResult } from '../src/index.js';
import { datagram } from './helpers/data.js';
import { turns, within, zeroCopyUnavailableReason, type LockedNeed } from './helpers/env.js';
import { boundUdp, closeDgram, connectTcp, countFds, destroySocket, listFds, tcpReceiver, udpReceiver } from './helpers/net.js';
import { BACKENDS, adopterFor, gatedOn, ioUringOnly, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
/**
 * The file's first adopt() makes this thread's default ring, open until the process exits;
 * `need` is what a test locks besides it (rings of its own, of its children and workers: the
 * kernel counts every process of the user together).
 */
const opts = (backend: Backend, timeout: number, need: LockedNeed = {}) => gatedOn(backend, timeout, skipReason, { ...need, rings: [256, ...(need.rings ?? [])] });
/**
 * adopt() options for a send-only dgram socket in a child or worker: receive: false on
 * msg_zerocopy (Node's libuv >= 1.52 drains the error queue of a socket it reads: adopt() would
 * give it copy).
 */
const childDgramOptions = (backend: Backend): string => (backend === 'msg_zerocopy' ? '{ receive: false }' : '{}');

for (const backend of BACKENDS) {
  const adoptOn = adopterFor(backend);

  // Each of the 51 cycles makes and closes a 16-entry ring. A closed ring still counts until the
  // kernel's exit work frees it, later and with no bound (measured: counted right after close(),
  // gone 100 ms later; with 64 KiB the 50 cycles outran the frees), so every cycle's ring may count.
  test(`${backend}: no descriptor leaks after 50 adopt/send/close cycles (TCP and UDP; explicit and Node-socket close${backend === 'io_uring' ? '; rings' : ''})`, opts(backend, 60_000, { rings: backend === 'io_uring' ? new Array<number>(51).fill(16) : [] }), async () => {
    const trx = await tcpReceiver();
    const urx = await udpReceiver('udp4');
    const dest = { address: '127.0.0.1', port: urx.port };
    let udpSent = 0;

    const cycle = async (): Promise<void> => {
      // TCP, explicit close.
      {
        const c = await connectTcp(trx.port);
        const zs = adoptOn(c);
        assert.equal((await zs.send(Buffer.alloc(3000, 1))).bytes, 3000);
        await zs.close();
        assert.equal(zs.closed, true);
        await destroySocket(c);
      }
      // TCP, the Node socket closes with a send still in flight: the send finishes, then our side closes.
      {
        const c = await connectTcp(trx.port);
        const zs = adoptOn(c);
        const p = zs.send(Buffer.alloc(5000, 2));
        await destroySocket(c);
        assert.equal((await p).bytes, 5000);
        await within(zs.close(), 5_000, 'close after the net.Socket closed');
        assert.equal(zs.closed, true);
      }
      // TCP, the Node socket closes when idle: ours closes with it.
      {
        const c = await connectTcp(trx.port);
        const zs = adoptOn(c);
        assert.equal((await zs.send(Buffer.alloc(10, 3))).bytes, 10);
        await destroySocket(c);
        assert.equal(zs.closed, true, 'closed on the net.Socket\'s close event');
      }
      // UDP, explicit close.
      {
        const s = await boundUdp('udp4');
        const zs = adoptOn(s);
        assert.equal((await zs.send(datagram(udpSent++, 100), dest)).bytes, 100);
        await zs.close();
        await closeDgram(s);
      }
      // UDP, the dgram socket closes: ours closes with it.
      {
        const s = await boundUdp('udp4');
        const zs = adoptOn(s);
        assert.equal((await zs.send(datagram(udpSent++, 100), dest)).bytes, 100);
        await closeDgram(s);
        await turns(1);
        assert.equal(zs.closed, true, 'closed on the dgram.Socket\'s close event');
      }
      // A ring of its own, closed with its socket still adopted (io_uring: the others have no Ring).
      if (backend === 'io_uring') {
        const ring = new Ring({ entries: 16 });
        const s = await boundUdp('udp4');
        const zs = ring.adopt(s);
        assert.equal((await zs.send(datagram(udpSent++, 100), dest)).bytes, 100);
        await ring.close();
        assert.equal(zs.closed, true, 'the ring closes its sockets');
        await closeDgram(s);
      }
    };

    /** Waits (bounded) until the receiver has seen every connection of the cycle close. */
    const settleServer = async (): Promise<void> => {
      for (let i = 0; i < 10_000 && trx.openConnections() > 0; i++) await turns(1);
      assert.equal(trx.openConnections(), 0, 'the receiver closed every accepted connection');
    };

    try {
      // Warm up: the default ring, the capability probe and Node's own lazily opened descriptors.
      await cycle();
      await settleServer();
      const before = countFds();
      const listBefore = listFds();
      for (let i = 0; i < 50; i++) await cycle();
      await settleServer();
      const after = countFds();
      assert.equal(after, before, `descriptors before ${before}, after ${after}:\nbefore ${listBefore.join(', ')}\nafter ${listFds().join(', ')}`);
    } finally {
      await trx.close();
      await urx.close();
    }
  });

  test(`${backend}: a process with an idle ${backend === 'io_uring' ? 'default ring' : 'backend (its epoll set)'} exits by itself`, opts(backend, 30_000, { rings: [256] }), async () => {
    const index = pathToFileURL(path.resolve('dist/src/index.js')).href;
    // Adopts a UDP and a TCP socket on the default ring, sends on both, awaits, then leaves everything
    // open but unreferenced. Only the ring could keep the process alive now; idle, it must not.
    const script = `
      import dgram from 'node:dgram';
      import net from 'node:net';
      import { once } from 'node:events';
      import { adopt } from ${JSON.stringify(index)};
      const rx = dgram.createSocket('udp4');
      rx.bind(0, '127.0.0.1');
      await once(rx, 'listening');
      const got = once(rx, 'message');
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      const uz = adopt(s, ${childDgramOptions(backend)});
      const udp = await uz.send(Buffer.from('hello'), { address: '127.0.0.1', port: rx.address().port });
      await got;
      let peer;
      const srv = net.createServer((c) => { peer = c; c.resume(); });
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      const c = net.connect(srv.address().port, '127.0.0.1');
      await once(c, 'connect');
      const tz = adopt(c);
      const tcp = await tz.send(Buffer.alloc(100000, 1));
      process.stdout.write(JSON.stringify({ udp, tcp, backends: [uz.backend, tz.backend] }) + '\\n');
      rx.close();
      srv.close();
      s.unref();
      c.unref();
      peer?.unref();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, URING_ZC_BACKEND: backend } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, 15_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    assert.equal(killed, false, `the idle process did not exit within 15 s (stdout: ${out.trim()})`);
    assert.equal(code, 0, `exit code ${code}: ${err}`);
    assert.deepEqual(JSON.parse(out.trim()), { udp: { bytes: 5, zeroCopy: false }, tcp: { bytes: 100000, zeroCopy: false }, backends: [backend, backend] });
  });

  test(`${backend}: several rings in one thread work independently; closing one leaves the other working`, ioUringOnly(backend, 'several Rings are io_uring\'s (this backend has one instance per thread, made by adopt())', opts(backend, 60_000, { rings: [256, 32] })), async () => {
    // The rings first: if one cannot be made, no socket is left open to keep the process alive.
    const r1 = new Ring();
    const r2 = new Ring({ entries: 32 });
    const urx = await udpReceiver('udp4');
    const trx = await tcpReceiver();
    const dest = { address: '127.0.0.1', port: urx.port };
    const s1 = await boundUdp('udp4');
    const s2 = await boundUdp('udp4');
    const c1 = await connectTcp(trx.port);
    const c2 = await connectTcp(trx.port);
    try {
      const u1 = r1.adopt(s1);
      const u2 = r2.adopt(s2);
      const t1 = r1.adopt(c1);
      const t2 = r2.adopt(c2);
      assert.equal(u1.ring, r1);
      assert.equal(u2.ring, r2);
      // Interleaved on both rings.
      const a: Promise<SendResult>[] = [];
      const b: Promise<SendResult>[] = [];
      for (let i = 0; i < 200; i++) {
        a.push(u1.send(datagram(i, 300), dest));
        b.push(u2.send(datagram(1000 + i, 400), dest));
        a.push(t1.send(Buffer.alloc(2000, 1)));
        b.push(t2.send(Buffer.alloc(3000, 2)));
      }
      await within(Promise.all([...a, ...b]), 30_000, 'interleaved sends on two rings');
      assert.deepEqual([u1.stats().sends, u2.stats().sends, t1.stats().sends, t2.stats().sends], [200, 200, 200, 200]);
      assert.deepEqual([u1.stats().bytes, u2.stats().bytes, t1.stats().bytes, t2.stats().bytes], [60000, 80000, 400000, 600000]);

      // Close r1 while both rings have sends in flight.
      const late1: Promise<unknown>[] = [];
      const late2: Promise<SendResult>[] = [];
      for (let i = 0; i < 100; i++) {
        late1.push(u1.send(datagram(2000 + i, 300), dest).catch((e: unknown) => e));
        late2.push(u2.send(datagram(3000 + i, 400), dest));
        late2.push(t2.send(Buffer.alloc(1000, 3)));
      }
      await within(r1.close(), 10_000, 'closing r1');
      assert.equal(r1.closed, true);
      assert.equal(r2.closed, false);
      await within(Promise.all(late1), 10_000, 'r1 sends settle');
      const res2 = await within(Promise.all(late2), 30_000, 'r2 sends while r1 closes');
      res2.forEach((r, i) => assert.equal(r.bytes, i % 2 === 0 ? 400 : 1000, `r2 send #${i}`));
      // r2 goes on: new sends and a new adoption.
      assert.equal((await u2.send(datagram(9999, 50), dest)).bytes, 50);
      const s3 = await boundUdp('udp4');
      try {
        const u3 = r2.adopt(s3);
        assert.equal((await u3.send(datagram(9998, 60), dest)).bytes, 60);
      } finally {
        await closeDgram(s3);
      }
      assert.equal(u2.stats().errors, 0);
      assert.equal(t2.stats().errors, 0);
      assert.equal(u2.stats().inFlight, 0);
      assert.equal(t2.stats().sends, 300);
      await within(r2.close(), 10_000, 'closing r2');
    } finally {
      await r1.close();
      await r2.close();
      await closeDgram(s1);
      await closeDgram(s2);
      await destroySocket(c1);
      await destroySocket(c2);
      await trx.close();
      await urx.close();
    }
  });

  test(`${backend}: ${backend === 'io_uring' ? 'rings' : 'backends'} in worker threads send on their own; a worker that exits with its ${backend === 'io_uring' ? 'ring' : 'socket'} still open exits cleanly`, opts(backend, 30_000, { rings: [256, 256], zeroCopy: [1000, 1000] }), async () => {
    const index = pathToFileURL(path.resolve('dist/src/index.js')).href;
    // In a child process, so that a crash at worker teardown fails this test, not the runner.
    const script = `
      import { Worker } from 'node:worker_threads';
      import dgram from 'node:dgram';
      import { once } from 'node:events';
      const rx = dgram.createSocket('udp4');
      rx.bind(0, '127.0.0.1');
      await once(rx, 'listening');
      let received = 0;
      rx.on('message', () => received++);
      const code = \`
        const { parentPort, workerData } = require('node:worker_threads');
        const dgram = require('node:dgram');
        import(\${JSON.stringify(${JSON.stringify(index)})}).then(async (m) => {
          const s = dgram.createSocket('udp4');
          await new Promise((r) => s.bind(0, '127.0.0.1', r));
          const zs = m.adopt(s, { ...${childDgramOptions(backend)}, zeroCopyThreshold: 0 }); // this worker's default ring (or backend)
          if (zs.backend !== ${JSON.stringify(backend)}) throw new Error('adopted on ' + zs.backend);
          let ok = 0;
          for (let i = 0; i < 50; i++) {
            const r = await zs.send(Buffer.alloc(1000, i), { address: '127.0.0.1', port: workerData.port });
            if (r.bytes === 1000) ok++;
          }
          if (workerData.close) { await zs.close(); s.close(); }
          parentPort.postMessage(ok); // the other worker exits with its ring and socket open
        });\`;
      const results = await Promise.all([true, false].map((close) => new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, execArgv: [], workerData: { port: rx.address().port, close } });
        let ok;
        w.on('message', (m) => { ok = m; if (!close) w.terminate(); });
        w.on('error', reject);
        w.on('exit', (c) => resolve({ ok, exit: c }));
      })));
      await new Promise((r) => setTimeout(r, 100));
      rx.close();
      process.stdout.write(JSON.stringify({ results, received: received > 0 }) + '\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, URING_ZC_BACKEND: backend } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    assert.equal(signal, null, `the process died by ${signal} (stderr: ${err})`);
    assert.equal(code, 0, `exit code ${code}: ${err}`);
    const r = JSON.parse(out.trim()) as { results: { ok: number; exit: number }[]; received: boolean };
    assert.deepEqual(r.results.map((x) => x.ok), [50, 50], 'every send in both workers resolved with its bytes');
    assert.equal(r.received, true);
  });
}
