/**
 * Stalled peers do not starve the ring: thousands of TCP sends waiting for peers that stopped
 * reading take no slot from other sockets (a healthy TCP peer and UDP sends on the same ring
 * complete), and a socket destroyed while its sends wait in the ring's backlog settles them at
 * once with a code. Once per backend: on msg_zerocopy and copy the same stalled sockets wait in the
 * backend's epoll set, and must not hold up the others there either (copy with fewer of them: each
 * stalled copying send holds up to tcp_wmem's 4 MiB of kernel memory, machine-wide).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { test } from 'node:test';
import { Ring, capabilities, type ZeroCopySocket } from '../src/index.js';
import { Prng, datagram } from './helpers/data.js';
import { turns, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { StreamVerifier, boundUdp, closeDgram, connectTcp, countFds, destroySocket, listFds, tcpReceiver, udpReceiver } from './helpers/net.js';
import { Settles } from './helpers/settle.js';
import { BACKENDS, adopterFor, backendUnavailableReason, warmBackend, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
const opts = (backend: Backend, timeout: number): { timeout: number; skip: string | false } => ({ timeout, skip: backendUnavailableReason(backend, skipReason) ?? false });

/** Stalled connections: several times the default ring's 512 slots. */
const STALLED = 2000;
/**
 * On copy: each stalled send is copied into the kernel (up to tcp_wmem's 4 MiB per socket, and
 * TCP memory is machine-wide: 2000 of them would push every other TCP user into memory pressure).
 */
const STALLED_COPY = 100;
const stalledOn = (backend: Backend): number => (backend === 'copy' ? STALLED_COPY : STALLED);
/** Each stalled connection's send: far more than the socket buffers of a peer that does not read take. */
const STALL_SEND = 8 << 20;

function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft === undefined ? 1024 : soft === 'unlimited' ? Infinity : Number(soft);
}

/** Why the stall test cannot run here, or null. */
function stallUnavailableReason(backend: Backend): string | null {
  const why = backendUnavailableReason(backend, skipReason);
  if (why !== null) return why;
  if (backend === 'copy') return null;
  const need = 3 * STALLED + 256; // client, accepted and duplicated descriptors per connection
  if (openFilesLimit() < need) return `RLIMIT_NOFILE is ${openFilesLimit()}; ${STALLED} connections need ${need} descriptors`;
  // Each stalled zero-copy send pins 8 MiB: without CAP_IPC_LOCK that is refused and copied, and
  // copies of 2000 sends would fill the kernel's memory instead.
  if (process.getuid?.() !== 0 && capabilities().memlockLimit !== Infinity) {
    return `not root and RLIMIT_MEMLOCK is ${capabilities().memlockLimit} bytes: ${STALLED} sends of ${STALL_SEND} bytes cannot stay pinned`;
  }
  return null;
}

for (const backend of BACKENDS) {
  const STALLED = stalledOn(backend);

  test(`${backend}: ${STALLED} TCP sends waiting for peers that stopped reading: a healthy TCP peer and UDP sends on the same ${backend === 'io_uring' ? 'ring' : 'backend'} still complete`, { timeout: 180_000, skip: stallUnavailableReason(backend) ?? false }, async () => {
    await warmBackend(backend);
    const fds = countFds();
    const ring = backend === 'io_uring' ? new Ring() : undefined;
    const adoptOn = adopterFor(backend, ring && (() => ring));
    if (ring !== undefined) assert.ok(ring.maxInFlight < STALLED, `the ring bounds datagram requests at ${ring.maxInFlight}, fewer than the stalled sends`);
    const stalledRx = await tcpReceiver({ paused: true });
    const payload = new Prng(5).bytes(STALL_SEND);
    const clients: net.Socket[] = [];
    const sockets: ZeroCopySocket[] = [];
    const settles: Settles[] = [];
    try {
      for (let i = 0; i < STALLED; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, STALLED - i) }, () => connectTcp(stalledRx.port)));
        for (const c of batch) {
          const zs = adoptOn(c);
          const st = new Settles(zs);
          zs.send(payload, { zeroCopy: true }, st.cb(0));
          clients.push(c);
          sockets.push(zs);
          settles.push(st);
        }
        await turns(2);
      }
      await turns(20);
      const pending = settles.filter((s) => s.settled === 0).length;
      assert.ok(pending >= STALLED * 0.9, `${pending} of ${STALLED} stalled sends are still waiting in the kernel`);

      // A healthy peer on the same ring: 4 MiB in 1 MiB sends, verified.
      const verifier = new StreamVerifier();
      const okRx = await tcpReceiver({ onData: (c) => verifier.push(c) });
      const okClient = await connectTcp(okRx.port);
      const okZs = adoptOn(okClient);
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        const b = new Prng(50 + i).bytes(1 << 20);
        verifier.expect(b);
        sends.push(okZs.send(b));
      }
      await within(Promise.all(sends), 20_000, 'the healthy peer\'s sends');
      await okRx.waitForBytes(4 << 20, 20_000);
      assert.ok(verifier.complete, 'the healthy peer got its 4 MiB intact');

      // UDP sends on the same ring.
      const urx = await udpReceiver('udp4');
      const tx = await boundUdp('udp4');
      const uzs = adoptOn(tx);
      const udp: Promise<unknown>[] = [];
      for (let i = 0; i < 200; i++) udp.push(uzs.send(datagram(i, 1000), { address: '127.0.0.1', port: urx.port }));
      await within(Promise.all(udp), 20_000, 'the UDP sends');
      await urx.waitFor(200, 20_000);

      await okZs.close();
      await destroySocket(okClient);
      await okRx.close();
      await uzs.close();
      await closeDgram(tx);
      await urx.close();
    } finally {
      // Teardown of the stalled ones, the way out of a stalled peer: reset the connections, which
      // drops what the kernel still held, so every send is released.
      for (const c of clients) c.resetAndDestroy();
      await stalledRx.close();
      await within(Promise.all(settles.map((s) => s.waitFor(1, 30_000, 'stalled send'))), 60_000, 'every stalled send settles');
      await within(Promise.all(sockets.map((zs) => zs.close())), 30_000, 'every stalled socket closes');
      await ring?.close();
    }
    for (const [i, st] of settles.entries()) st.assertOnce(`stalled socket ${i}`);
    const codes = new Set(settles.flatMap((s) => s.codes()));
    for (const c of codes) assert.ok(c === null || ['ECANCELED', 'ECONNRESET', 'EPIPE'].includes(c), `stalled sends settle with a success or a code, got ${c}`);
    await turns(5);
    assert.equal(countFds(), fds, `descriptors back to the baseline\n${listFds().slice(0, 40).join('\n')}`);
  });

  test(`${backend}: a socket destroyed while its sends wait ${backend === 'io_uring' ? 'in the ring\'s backlog' : 'for the backend (queued in this tick)'} settles them at once with ERR_URING_ZC_SOCKET_CLOSED`, opts(backend, 30_000), async () => {
    // entries 1: one datagram request in the kernel at a time, the rest wait in the backlog. The
    // other backends run what was queued in a tick at its end: destroy() in the same tick finds
    // them all still waiting.
    const ring = backend === 'io_uring' ? new Ring({ entries: 1 }) : undefined;
    const urx = await udpReceiver('udp4');
    const tx = await boundUdp('udp4');
    const zs = adopterFor(backend, ring && (() => ring))(tx);
    const st = new Settles(zs);
    const n = 50;
    for (let i = 0; i < n; i++) zs.send(datagram(i, 500), { address: '127.0.0.1', port: urx.port }, st.cb(i));
    if (ring !== undefined) assert.equal(ring.maxInFlight, 1);
    const closing = zs.destroy();
    await turns(1);
    const codes = st.codes();
    assert.equal(codes.slice(1).filter((c) => c === 'ERR_URING_ZC_SOCKET_CLOSED').length, n - 1, `the ${n - 1} sends in the backlog: ${codes.join(',')}`);
    await within(closing, 10_000, 'destroy()');
    st.assertOnce('backlog');
    assert.ok(urx.messages.length <= 1, `nothing from the backlog went out after destroy() (${urx.messages.length} arrived)`);
    await closeDgram(tx);
    await urx.close();
    await ring?.close();
  });
}
