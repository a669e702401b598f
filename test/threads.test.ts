/**
 * Several threads, one socket: worker threads each with a ring of their own send on one UDP
 * socket (adopted by descriptor in each) into the IFB sink — every datagram zero copy, their
 * counts adding up to the kernel's. A stream socket has one writer: adopting a TCP socket that is
 * adopted already, on this thread or another, is refused with ERR_URING_ZC_INVALID_STATE, and
 * allowed again once the first ZeroCopySocket has closed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { adopt, capabilities } from '../src/index.js';
import { dgramFd } from '../src/dgram-handle.js';
import { throwsCode, withSink, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';
import { collectChild } from './helpers/pool-helpers.js';
import type { WorkerOutcome } from './helpers/threads-udp-sender.js';

const WORKERS = 4;
const COUNT = 2000;
const SIZE = 60_000;

for (const kind of ['io_uring', 'msg_zerocopy', 'copy'] as const) {
  const b = capabilities().backends[kind];
  const why = kind === 'io_uring' ? zeroCopyUnavailableReason() : b.ok ? null : `backend ${kind} is not available here: ${b.reason}`;
  test(`[${kind}] ${WORKERS} worker threads, each with its own ${kind === 'io_uring' ? 'ring' : 'backend'}, send on one UDP socket into the sink: zeroCopy ${kind === 'msg_zerocopy' ? 'true for the one reader of the error queue' : kind === 'io_uring'}, counts add up to the kernel's`, { timeout: 90_000 }, async (t) => {
  await withSink(t, why, async (sink) => {
    const child = sink.spawn([process.execPath, 'dist/test/helpers/threads-udp-sender.js', sink.destination, String(WORKERS), String(COUNT), String(SIZE), kind], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { code, out, err } = await collectChild(child, 60_000);
    assert.equal(code, 0, `threads-udp-sender exited with ${code}: ${err}`);
    const r = JSON.parse(out.trim()) as { outcomes: WorkerOutcome[]; before: number; after: number };
    assert.equal(r.outcomes.length, WORKERS);
    for (const [i, o] of r.outcomes.entries()) {
      assert.deepEqual(o.errors, [], `worker ${i}: no errors`);
      assert.equal(o.sent, COUNT, `worker ${i}: every send settled with success`);
      assert.equal(o.bytes, COUNT * SIZE, `worker ${i}: bytes`);
      if (o.ringBackend === 'copy') assert.equal(o.zeroCopied, 0, `worker ${i}: copying sends report zeroCopy false`);
      else assert.equal(o.zeroCopied, COUNT, `worker ${i}: every datagram zeroCopy: true in the sink`);
    }
    const backends = r.outcomes.map((o) => o.ringBackend).sort();
    if (kind === 'msg_zerocopy') {
      // The socket's error queue has one reader: the first thread to adopt it; the others copy.
      assert.deepEqual(backends, ['copy', 'copy', 'copy', 'msg_zerocopy'], 'one thread reads the completions, the others copy');
    } else {
      assert.deepEqual(backends, Array(WORKERS).fill(kind), `every worker sent through its own ${kind} backend`);
    }
    const total = r.outcomes.reduce((a, o) => a + o.sent, 0);
    assert.equal(r.after - r.before, total, 'the namespace\'s UDP OutDatagrams + SndbufErrors (queue drops) equal the sum of the workers\' sends');
  });
  });
}

const backendsHere = (['io_uring', 'msg_zerocopy', 'copy'] as const).filter((k) => capabilities().backends[k].ok);

test('a TCP socket adopted already (this thread, any backend) is refused; after close() it can be adopted again', { timeout: 30_000 }, async () => {
  const rx = await tcpReceiver();
  const client = await connectTcp(rx.port);
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  for (const first of backendsHere) {
    const zs = adopt(client, { backend: first });
    for (const second of backendsHere) {
      throwsCode(() => adopt(client, { backend: second }), 'ERR_URING_ZC_INVALID_STATE', `${first} then ${second}`);
      throwsCode(() => adopt(fd, { backend: second }), 'ERR_URING_ZC_INVALID_STATE', `${first} then ${second} by fd`);
    }
    await zs.close();
  }
  // Closed: adoptable again, and it sends.
  const again = adopt(client);
  assert.equal((await again.send(Buffer.alloc(1000, 7))).bytes, 1000);
  await again.close();
  // UDP sockets have no stream to interleave: any number of adopters.
  await destroySocket(client);
  await rx.close();
});

test('a TCP socket adopted on the main thread is refused in a worker (and the worker can adopt it once it is closed)', { timeout: 30_000 }, async () => {
  const rx = await tcpReceiver();
  const client = await connectTcp(rx.port);
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const zs = adopt(client);
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    parentPort.once('message', async () => {
      const { adopt } = await import(workerData.lib);
      try {
        const z = adopt(workerData.fd);
        const r = await z.send(Buffer.alloc(100, 1));
        await z.close();
        parentPort.postMessage({ ok: true, bytes: r.bytes });
      } catch (e) {
        parentPort.postMessage({ ok: false, code: e.code });
      }
    });`;
  const lib = new URL('../src/index.js', import.meta.url).href;
  const ask = async (): Promise<{ ok: boolean; code?: string; bytes?: number }> => {
    const w = new Worker(src, { eval: true, workerData: { fd, lib } });
    const exited = once(w, 'exit');
    w.postMessage('go');
    const [m] = await within(once(w, 'message'), 20_000, 'the worker answers');
    await exited;
    return m as { ok: boolean; code?: string; bytes?: number };
  };
  assert.deepEqual(await ask(), { ok: false, code: 'ERR_URING_ZC_INVALID_STATE' }, 'refused while the main thread holds it');
  await zs.close();
  assert.deepEqual(await ask(), { ok: true, bytes: 100 }, 'adopted and sent once the main thread closed its ZeroCopySocket');
  await destroySocket(client);
  await rx.close();
});

test('msg_zerocopy: one reader per socket error queue — a second adopter copies; after close the next one (another thread) goes on from the socket\'s counter', { timeout: 30_000, skip: capabilities().backends.msg_zerocopy.ok ? false : `MSG_ZEROCOPY is not available here: ${capabilities().backends.msg_zerocopy.reason}` }, async () => {
  const dgram = await import('node:dgram');
  const rx = dgram.createSocket('udp4');
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  let received = 0;
  rx.on('message', () => received++);
  const tx = dgram.createSocket('udp4');
  tx.bind(0, '127.0.0.1');
  await once(tx, 'listening');
  const dest = { address: '127.0.0.1', port: rx.address().port, zeroCopy: true };
  // receive: false: Node does not read tx meanwhile (libuv >= 1.52 would drain its error queue).
  const holder = adopt(tx, { receive: false, backend: 'copy' });
  const first = adopt(tx, { backend: 'msg_zerocopy', receive: false });
  const second = adopt(tx, { backend: 'msg_zerocopy', receive: false });
  assert.equal(first.backend, 'msg_zerocopy');
  assert.equal(second.backend, 'copy', 'the error queue already has its reader');
  const burst = (zs: typeof first, n: number) => within(Promise.all(Array.from({ length: n }, () => zs.send(Buffer.alloc(1000, 3), dest))), 10_000, `${n} sends settle`);
  await burst(first, 100);
  await burst(second, 100);
  await first.close();
  await second.close();
  // The socket's counter stands at 100 now: a worker's first zero-copy send is number 100.
  const fd = dgramFd(tx)!;
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { adopt } = await import(workerData.lib);
      const z = adopt(workerData.fd, { backend: 'msg_zerocopy' });
      const t = setTimeout(() => parentPort.postMessage({ backend: z.backend, settled: -1 }), 10000);
      const rs = await Promise.all(Array.from({ length: 100 }, () => z.send(Buffer.alloc(1000, 4), workerData.dest)));
      clearTimeout(t);
      await z.close();
      parentPort.postMessage({ backend: z.backend, settled: rs.length });
    })();`;
  const w = new Worker(src, { eval: true, workerData: { fd, dest, lib: new URL('../src/index.js', import.meta.url).href } });
  const exited = once(w, 'exit');
  const [m] = await within(once(w, 'message'), 20_000, 'the worker answers');
  await exited;
  assert.deepEqual(m, { backend: 'msg_zerocopy', settled: 100 }, 'the worker read its completions (numbered on from 100)');
  await holder.close();
  tx.close();
  rx.close();
  assert.ok(received > 0);
});
