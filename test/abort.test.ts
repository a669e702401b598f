/**
 * AbortSignal per send, on every backend: a signal aborted before the call queues nothing; a send
 * aborted while it waits behind others leaves the stream intact; one aborted in the same tick
 * (its SQE written, not submitted) sends nothing; one aborted in the kernel cuts a TCP stream at
 * the byte count its AbortError reports, and the socket sends nothing more. Every send settles
 * once, with bytes at the peer checked against what was sent.
 */
import assert from 'node:assert/strict';
import { getEventListeners, once } from 'node:events';
import { test } from 'node:test';
import { adopt, capabilities, type ZeroCopySocket } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { codeOf, throwsCode, turns, within } from './helpers/env.js';
import { StreamVerifier, boundUdp, closeDgram, connectTcp, destroySocket, tcpReceiver, udpReceiver } from './helpers/net.js';
import { Settles } from './helpers/settle.js';

type Kind = 'io_uring' | 'msg_zerocopy' | 'copy';
const KINDS: Kind[] = ['io_uring', 'msg_zerocopy', 'copy'];

function skipFor(kind: Kind): string | false {
  const b = capabilities().backends[kind];
  return b.ok ? false : `backend ${kind} is not available here: ${b.reason}`;
}

function assertAbort(e: unknown, reason: unknown, bytes: number, what: string): void {
  assert.equal(codeOf(e), 'ABORT_ERR', `${what}: code`);
  assert.equal((e as Error).name, 'AbortError', `${what}: name`);
  assert.equal((e as Error).cause, reason, `${what}: cause is the signal's reason`);
  assert.equal((e as { bytes: number }).bytes, bytes, `${what}: bytes`);
}

async function rejection(p: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  return within(p.then(() => assert.fail(`${what}: resolved`), (e: unknown) => e), ms, what);
}

async function tcpPair(kind: Kind, verifier: StreamVerifier, paused = false) {
  const rx = await tcpReceiver({ paused, onData: (c) => verifier.push(c) });
  const client = await connectTcp(rx.port);
  const zs = adopt(client, { backend: kind });
  assert.equal(zs.backend, kind);
  return { rx, client, zs };
}

/** Ends the connection and waits for the peer to have read everything it will get. */
async function finish(client: import('node:net').Socket, zs: ZeroCopySocket, rx: Awaited<ReturnType<typeof tcpReceiver>>): Promise<void> {
  await zs.close();
  const peer = await rx.peer;
  const ended = once(peer, 'end');
  client.end();
  await within(ended, 20_000, 'the peer reads to EOF');
  await destroySocket(client);
  await rx.close();
}

for (const kind of KINDS) {
  test(`[${kind}] a signal aborted before send()/sendv() queues nothing: AbortError, callback on a later tick, stream intact`, { skip: skipFor(kind), timeout: 30_000 }, async () => {
    const verifier = new StreamVerifier();
    const { rx, client, zs } = await tcpPair(kind, verifier);
    const reason = new Error('gave up');
    const signal = AbortSignal.abort(reason);
    assertAbort(await rejection(zs.send(new Prng(1).bytes(100_000), { signal }), 5000, 'send'), reason, 0, 'send');
    assertAbort(await rejection(zs.sendv([new Prng(2).bytes(10), new Prng(3).bytes(70_000)], { signal }), 5000, 'sendv'), reason, 0, 'sendv');
    let calls = 0;
    let cbErr: unknown;
    zs.send(new Prng(4).bytes(1000), { signal }, (err) => {
      calls++;
      cbErr = err;
    });
    assert.equal(calls, 0, 'the callback never runs inside send()');
    await turns(3);
    assert.equal(calls, 1, 'the callback ran once');
    assertAbort(cbErr, reason, 0, 'callback');
    assert.equal(zs.stats().inFlight, 0);
    assert.equal(zs.stats().sends, 0);
    // The next send is the first thing the peer gets.
    const after = new Prng(5).bytes(200_000);
    verifier.expect(after);
    await zs.send(after);
    await finish(client, zs, rx);
    assert.ok(verifier.complete, `only the later send arrived (verified ${verifier.verified} of ${verifier.expected}, mismatch at ${verifier.mismatchAt}, extra ${verifier.extra})`);
  });

  test(`[${kind}] bad "signal" values are refused synchronously`, { skip: skipFor(kind), timeout: 30_000 }, async () => {
    const verifier = new StreamVerifier();
    const { rx, client, zs } = await tcpPair(kind, verifier);
    for (const bad of [{}, 'abort', 1, null]) {
      throwsCode(() => zs.send(Buffer.alloc(10), { signal: bad as unknown as AbortSignal }), 'ERR_URING_ZC_INVALID_ARG', `signal ${String(bad)}`);
    }
    assert.equal(zs.stats().inFlight, 0);
    await finish(client, zs, rx);
    assert.equal(verifier.verified + verifier.extra, 0, 'nothing was sent');
  });

  test(`[${kind}] a TCP send aborted while queued behind a stalled one: rejects at once, the stream goes on without it`, { skip: skipFor(kind), timeout: 60_000 }, async () => {
    const verifier = new StreamVerifier();
    const { rx, client, zs } = await tcpPair(kind, verifier, true);
    const settles = new Settles(zs);
    const big = new Prng(10).bytes(16 << 20);
    verifier.expect(big);
    zs.send(big, undefined, settles.cb(0));
    const ac = new AbortController();
    zs.send(new Prng(11).bytes(64 << 10), { signal: ac.signal }, settles.cb(1));
    const tail = new Prng(12).bytes(64 << 10);
    verifier.expect(tail);
    zs.send(tail, undefined, settles.cb(2));
    await turns(20);
    assert.equal(settles.settled, 0, 'nothing settles while the peer does not read');
    ac.abort('stop');
    await turns(2);
    assert.equal(settles.settled, 1, 'the aborted send settled at once, before the stalled one');
    assertAbort(settles.outcomes[1]!.err, 'stop', 0, 'queued send');
    rx.resume();
    await settles.waitFor(3, 30_000, 'the stream drains');
    assert.equal(settles.outcomes[0]!.err, null);
    assert.equal(settles.outcomes[2]!.err, null);
    settles.assertOnce(kind);
    await finish(client, zs, rx);
    assert.ok(verifier.complete, `the peer got the first and the third send, intact (verified ${verifier.verified} of ${verifier.expected}, mismatch at ${verifier.mismatchAt}, extra ${verifier.extra})`);
  });

  test(`[${kind}] one signal for many sends: one listener (no MaxListenersExceededWarning), removed when they settle; aborting it ends every queued one`, { skip: skipFor(kind), timeout: 60_000 }, async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const verifier = new StreamVerifier();
      const { rx, client, zs } = await tcpPair(kind, verifier, true);
      const settles = new Settles(zs);
      const big = new Prng(40).bytes(16 << 20);
      verifier.expect(big);
      zs.send(big, undefined, settles.cb(0));
      const shared = new AbortController();
      for (let i = 1; i <= 30; i++) zs.send(new Prng(40 + i).bytes(32 << 10), { signal: shared.signal }, settles.cb(i));
      await turns(5);
      assert.equal(getEventListeners(shared.signal, 'abort').length, 1, 'one listener for the 30 sends');
      shared.abort();
      await turns(2);
      assert.equal(settles.settled, 30, 'the 30 queued sends settled at once');
      for (let i = 1; i <= 30; i++) assertAbort(settles.outcomes[i]!.err, shared.signal.reason, 0, `send ${i}`);
      assert.equal(getEventListeners(shared.signal, 'abort').length, 0, 'the listener is gone');
      // A signal that never aborts: its listener goes when its sends have settled.
      const idle = new AbortController();
      const tail = new Prng(99).bytes(1000);
      verifier.expect(tail);
      zs.send(tail, { signal: idle.signal }, settles.cb(31));
      rx.resume();
      await settles.waitFor(32, 30_000, 'the stream drains');
      assert.equal(getEventListeners(idle.signal, 'abort').length, 0, 'no listener left on a signal whose sends settled');
      settles.assertOnce(kind);
      await finish(client, zs, rx);
      assert.ok(verifier.complete, `the first and the last send arrived, intact (verified ${verifier.verified} of ${verifier.expected})`);
      await turns(2);
      assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test(`[${kind}] a send aborted in the tick it was made sends nothing; the next one goes intact`, { skip: skipFor(kind), timeout: 30_000 }, async () => {
    const verifier = new StreamVerifier();
    const { rx, client, zs } = await tcpPair(kind, verifier);
    const ac = new AbortController();
    const p = zs.send(new Prng(20).bytes(8 << 20), { signal: ac.signal });
    ac.abort();
    assertAbort(await rejection(p, 10_000, 'same-tick abort'), ac.signal.reason, 0, 'same-tick abort');
    const next = new Prng(21).bytes(1 << 20);
    verifier.expect(next);
    assert.equal((await zs.send(next)).bytes, next.length);
    await finish(client, zs, rx);
    assert.ok(verifier.complete, `only the next send arrived (verified ${verifier.verified} of ${verifier.expected}, mismatch at ${verifier.mismatchAt}, extra ${verifier.extra})`);
  });

  test(`[${kind}] a TCP send aborted in the kernel cuts the stream where its AbortError says; later sends reject ECANCELED`, { skip: skipFor(kind), timeout: 60_000 }, async () => {
    const verifier = new StreamVerifier();
    const { rx, client, zs } = await tcpPair(kind, verifier, true);
    const big = new Prng(30).bytes(32 << 20);
    verifier.expect(big);
    const ac = new AbortController();
    const p = zs.send(big, { signal: ac.signal });
    await turns(20);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    // The bytes the kernel took are released when the peer has them (TCP's ACK): it must read.
    rx.resume();
    const e = await rejection(p, 20_000, 'in-kernel abort');
    const bytes = (e as { bytes: number }).bytes;
    assertAbort(e, ac.signal.reason, bytes, 'in-kernel abort');
    assert.ok(bytes > 0 && bytes < big.length, `the send was cut inside (bytes ${bytes})`);
    assert.match((e as Error).message, new RegExp(`${bytes} of its ${big.length} bytes`));
    const later = await rejection(zs.send(Buffer.alloc(1000, 1)), 5000, 'a send after the cut');
    assert.equal(codeOf(later), 'ECANCELED');
    await finish(client, zs, rx);
    assert.equal(verifier.mismatchAt, -1, 'the peer got an intact prefix');
    assert.equal(verifier.verified, bytes, 'the peer got exactly the bytes the AbortError reports');
  });

  test(`[${kind}] UDP: a datagram aborted in its tick is not sent; one aborted after it settled is unaffected`, { skip: skipFor(kind), timeout: 30_000 }, async () => {
    const rx = await udpReceiver();
    const tx = await boundUdp();
    const zs = adopt(tx, { backend: kind });
    const ac = new AbortController();
    const p = zs.send(Buffer.alloc(1200, 0xaa), { address: '127.0.0.1', port: rx.port, signal: ac.signal });
    ac.abort();
    assertAbort(await rejection(p, 5000, 'datagram'), ac.signal.reason, 0, 'datagram');
    const ac2 = new AbortController();
    const r = await zs.send(Buffer.alloc(800, 0xbb), { address: '127.0.0.1', port: rx.port, signal: ac2.signal });
    assert.equal(r.bytes, 800);
    ac2.abort(); // after settling: nothing to do
    assert.equal((await zs.send(Buffer.alloc(600, 0xcc), { address: '127.0.0.1', port: rx.port })).bytes, 600);
    await rx.waitFor(2, 5000);
    await turns(5);
    assert.deepEqual(rx.messages.map((d) => [d.data.length, d.data[0]]), [[800, 0xbb], [600, 0xcc]], 'the aborted datagram never arrived');
    assert.equal(zs.stats().inFlight, 0);
    await zs.close();
    await closeDgram(tx);
    await rx.close();
  });
}
