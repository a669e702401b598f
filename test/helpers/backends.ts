/**
 * The send suite once per backend: each file loops its tests over BACKENDS, adopting through
 * adopterFor(), gating through gatedOn(), and stating what differs per backend with the small
 * functions here (sinkZeroCopy, notifies). A test that cannot run on a backend skips with
 * ioUringOnly()'s reason, which says why that backend cannot.
 *
 * `URING_ZC_TEST_BACKENDS=copy,msg_zerocopy` (a comma list) runs only those, for a developer's
 * quicker loop; `npm test` (and CI) leave it unset and run all three.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { adopt, capabilities, createBufferPool, type Adoptable, type AdoptOptions, type BufferPool, type BufferPoolOptions, type Ring, type ZeroCopySocket } from '../../src/index.js';
import { gated, zeroCopyUnavailableReason, type LockedNeed } from './env.js';

export type Backend = 'io_uring' | 'msg_zerocopy' | 'copy';
export const ALL_BACKENDS: readonly Backend[] = ['io_uring', 'msg_zerocopy', 'copy'];

function selected(): readonly Backend[] {
  const env = process.env['URING_ZC_TEST_BACKENDS'];
  if (env === undefined || env === '') return ALL_BACKENDS;
  const names = env.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(ALL_BACKENDS as readonly string[]).includes(n)) throw new Error(`URING_ZC_TEST_BACKENDS: unknown backend ${n} (one of ${ALL_BACKENDS.join(', ')})`);
  }
  return ALL_BACKENDS.filter((b) => names.includes(b));
}

/** The backends the send suite runs on (all three unless URING_ZC_TEST_BACKENDS narrows it). */
export const BACKENDS: readonly Backend[] = selected();

/** Why `backend` cannot send here at all, or null. `ioUring` is the file's own io_uring gate (SEND_ZC, SENDMSG_ZC, pools...). */
export function backendUnavailableReason(backend: Backend, ioUring: string | null = zeroCopyUnavailableReason()): string | null {
  if (backend === 'io_uring') return ioUring;
  if (backend === 'msg_zerocopy') {
    const m = capabilities().backends.msg_zerocopy;
    return m.ok ? null : `MSG_ZEROCOPY is not available here: ${m.reason ?? 'SO_ZEROCOPY refused'}`;
  }
  return null;
}

/**
 * What of `need` a backend locks: io_uring all of it; msg_zerocopy pins the pages of its
 * zero-copy sends (the kernel charges them to RLIMIT_MEMLOCK as io_uring does) but has no ring
 * and registers no pool (its pools are plain memory, whose sends pin as any send's do); copy
 * pins nothing.
 */
export function lockedOn(backend: Backend, need: LockedNeed): LockedNeed {
  if (backend === 'io_uring') return need;
  const zeroCopy = backend === 'msg_zerocopy' ? [...(need.zeroCopy ?? []), ...(need.pools ?? []).map((b) => [1, b] as [number, number])] : [];
  // A ring's worth of headroom where msg_zerocopy pins anything: the kernel sums the user's
  // locked memory, and Node's own libuv rings take from it before any test runs (docs/design.md,
  // "Testing"); without it a send's pinning is refused under 64 KiB and it copies (pinFallbacks).
  const rings = zeroCopy.length > 0 ? [256] : [];
  return { pools: [], rings, zeroCopy };
}

/** Node test options for a test of `backend` (see gated()). */
export function gatedOn(backend: Backend, timeout: number, ioUring: string | null, need: LockedNeed = {}): { timeout: number; skip: string | false } {
  return gated(timeout, backendUnavailableReason(backend, ioUring), lockedOn(backend, need));
}

/**
 * A pool for `backend`'s sends: the file's Ring's (registered) on io_uring, plain memory from
 * createBufferPool({ backend }) on the others (no Ring: they run where io_uring is refused).
 */
export function poolOn(backend: Backend, ring: () => Ring, o: BufferPoolOptions): BufferPool {
  return backend === 'io_uring' ? ring().createBufferPool(o) : createBufferPool({ ...o, backend });
}

/** registeredBytes of a pool of `bytes` on `backend` (plain memory registers nothing). */
export function registeredOn(backend: Backend, bytes: number): number {
  return backend === 'io_uring' ? bytes : 0;
}

/** `skip` for a test that only io_uring can run, with why `backend` cannot. */
function ringOnly(backend: Backend, why: string): string | false {
  return backend === 'io_uring' ? false : `${backend}: ${why}`;
}

/** Whether a zero-copy send into the IFB sink reports `zeroCopy: true` on `backend`. */
export function sinkZeroCopy(backend: Backend): boolean {
  return backend !== 'copy';
}

/**
 * Whether a zero-copy send gets a notification (stats().notifications) on `backend`: io_uring's
 * F_NOTIF CQE, msg_zerocopy's error-queue range; copy has none (it settles when sendmsg returns).
 */
export function notifies(backend: Backend): boolean {
  return backend !== 'copy';
}

/**
 * Asserts the notifications of zero-copy TCP sends that made `requests` requests: exactly that on
 * io_uring (MSG_WAITALL: one result and one notification per request); on msg_zerocopy at least
 * that — one per sendmsg that took bytes, and a full socket buffer splits a request into several;
 * none on copy.
 */
export function assertStreamNotifications(backend: Backend, got: number, requests: number, what: string): void {
  if (backend === 'io_uring') assert.equal(got, requests, what);
  else if (backend === 'msg_zerocopy') assert.ok(got >= requests, `${what}: ${got} >= ${requests} (msg_zerocopy: one per sendmsg that took bytes)`);
  else assert.equal(got, 0, `${what} (none on copy)`);
}

/**
 * adopt() for `backend`: io_uring on `ring` when given (the file's ring; else the default ring),
 * the others forced with `{ backend }`. Asserts the socket got that backend (no silent fallback).
 * A dgram socket on msg_zerocopy is adopted with `receive: false` unless told otherwise: Node's
 * libuv >= 1.52 (Node 24+) would drain its error queue and adopt() gives it copy instead.
 */
export function adopterFor(backend: Backend, ring?: () => Ring): (sock: Adoptable, options?: AdoptOptions) => ZeroCopySocket {
  return (sock, options = {}) => {
    let zs: ZeroCopySocket;
    if (backend === 'io_uring') {
      zs = ring !== undefined ? ring().adopt(sock, options) : adopt(sock, { ...options, backend });
    } else {
      const o: AdoptOptions = { ...options, backend };
      if (backend === 'msg_zerocopy' && sock instanceof dgram.Socket && o.receive === undefined) o.receive = false;
      zs = adopt(sock, o);
    }
    assert.equal(zs.backend, backend, `adopted on ${backend}`);
    return zs;
  };
}

/**
 * For a child process of a test (a helper under test/helpers/): the backend its parent runs,
 * from URING_ZC_TEST_BACKEND (io_uring when unset), and adopt() on it — `ring.adopt()` for
 * io_uring (the child's own Ring, which also makes its pools), `adopt({ backend })` otherwise.
 */
export function childBackend(): Backend {
  const b = process.env['URING_ZC_TEST_BACKEND'] ?? 'io_uring';
  if (!(ALL_BACKENDS as readonly string[]).includes(b)) throw new Error(`URING_ZC_TEST_BACKEND: unknown backend ${b}`);
  return b as Backend;
}

export function childAdopt(ring: Ring | undefined, sock: Adoptable, options: AdoptOptions = {}): ZeroCopySocket {
  const backend = childBackend();
  return adopterFor(backend, backend === 'io_uring' && ring !== undefined ? () => ring : undefined)(sock, options);
}

/** The environment of a child that runs `backend` (childBackend() reads it). */
export function childEnv(backend: Backend): NodeJS.ProcessEnv {
  return { ...process.env, URING_ZC_TEST_BACKEND: backend };
}

/** Test options `o` of a test only io_uring can run: skipped on the other backends with `why`. */
export function ioUringOnly<T extends { skip: string | false }>(backend: Backend, why: string, o: T): T {
  return { ...o, skip: ringOnly(backend, why) || o.skip };
}

/**
 * Makes this thread's instance of `backend` before a descriptor baseline is taken: a syscall
 * backend keeps its epoll set for the thread (as the default ring is kept), made at its first
 * adopt(). Nothing for io_uring (the tests that count descriptors there use Rings of their own).
 */
export async function warmBackend(backend: Backend): Promise<void> {
  if (backend === 'io_uring') return;
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  await adopt(s, { backend, receive: false }).close();
  await new Promise<void>((r) => s.close(() => r()));
}
