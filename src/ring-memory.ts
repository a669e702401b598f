/**
 * The io_uring instance underneath a Ring, and how one is set up: the mapped SQ/CQ rings and
 * the protocol over them (RingMemory), the shape of one request (RingOp, also what the syscall
 * backends execute), the default size and flags, and why setup fails in words a user can act on.
 * Nothing here knows sockets, pools or the event loop: the probe uses it synchronously.
 */
import { readFileSync } from 'node:fs';
import { native, type SetupResult } from './native.js';
import { memlockHint } from './errors.js';
import {
  IORING_ENTER_GETEVENTS,
  IORING_FEAT_EXT_ARG,
  IORING_SETUP_COOP_TASKRUN,
  IORING_SETUP_SINGLE_ISSUER,
  IORING_SETUP_SUBMIT_ALL,
  IORING_SQ_CQ_OVERFLOW,
  IORING_SQ_TASKRUN,
} from './uapi.js';

/**
 * One kernel request, as the ring sees it. The ring gives it a slot (its user_data), asks it to
 * fill its SQE, and hands it every CQE with that user_data until it says it is done.
 */
export interface RingOp {
  /** The socket the request sends on (a destroyed socket's waiting requests are dropped). */
  readonly sock: object;
  /** Fills the SQE at word offset `o` of `w`; `userData` must go into the SQE's user_data. */
  prep(w: Uint32Array, o: number, userData: number): void;
  /**
   * One CQE for this request. Returns true when no further CQE will come for it (its slot, and
   * every reference it holds, can go).
   */
  complete(res: number, flags: number): boolean;
  /** The request never reached the kernel (the ring closed first). */
  abandon(err: Error): void;
}

/**
 * Setup flags. SUBMIT_ALL: a request that fails in prep does not stop the ones after it, so one
 * bad send cannot hold up the others. COOP_TASKRUN: no IPI to interrupt the thread for task work;
 * the event-loop thread enters the kernel often enough (epoll_wait) and it measured no slower.
 * SINGLE_ISSUER: only this thread submits (a ring belongs to one thread; workers make their own).
 * DEFER_TASKRUN was measured too and is not used: see README "Measured".
 */
export const DEFAULT_SETUP_FLAGS = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;

/**
 * CQ entries per SQ entry. Not more: since Linux 6.13 the ring's memory counts against
 * RLIMIT_MEMLOCK (a 256-entry ring with a 1024-entry CQ fits a 64 KiB limit; a 4096-entry CQ
 * did not, measured). Stream sends beyond maxInFlight rely on the kernel's overflow list instead.
 */
export const CQ_PER_SQ = 4;
/** SQ entries of `new Ring()` (and so of the default ring adopt() uses). */
export const DEFAULT_ENTRIES = 256;

/** Bound of any blocking wait (ns): no call into the kernel may hang the thread. */
const WAIT_BOUND_NS = 1_000_000_000;

/**
 * Words of a ring's shared region (native/uzc.h UZC_SH_*), read by the teardown in C when the
 * thread stops with requests in flight (native/teardown.c): our SQ tail, and how many CQEs
 * without IORING_CQE_F_MORE (requests' last) were consumed, up to which CQ position. Plain stores:
 * the C reader runs on this thread after JS has stopped.
 */
const SH_SQ_TAIL = 0;
const SH_FINALS = 1;
const SH_CQ_HEAD = 2;

/**
 * The mapped rings and the SQ/CQ protocol over them. Ring drives it from the event loop; the
 * probe uses it synchronously.
 */
export class RingMemory {
  readonly fd: number;
  readonly features: number;
  readonly flags: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** The mapped SQE array as 32-bit words. */
  readonly sqes: Uint32Array;
  private readonly sq: Uint32Array;
  private readonly cq: Uint32Array;
  private readonly cqRes: Int32Array;
  private readonly sqHeadI: number;
  private readonly sqTailI: number;
  private readonly sqFlagsI: number;
  private readonly sqMask: number;
  private readonly cqHeadI: number;
  private readonly cqTailI: number;
  private readonly cqMask: number;
  private readonly cqesI: number;
  private readonly mappings: ArrayBuffer[];
  /** The SH_* words (C-owned memory; see SH_SQ_TAIL). */
  private readonly shared: Uint32Array;
  /** Our SQ tail: SQEs up to here are written; the kernel sees them once the tail is published. */
  private sqTail: number;
  /** The kernel's SQ head as last read. */
  private sqHeadSeen: number;
  private unmapped = false;

  constructor(s: SetupResult) {
    this.fd = s.fd;
    this.features = s.features;
    this.flags = s.flags;
    this.sqEntries = s.sqEntries;
    this.cqEntries = s.cqEntries;
    const cqBuf = s.cqRing ?? s.rings;
    this.mappings = s.cqRing ? [s.rings, s.cqRing, s.sqes] : [s.rings, s.sqes];
    this.sq = new Uint32Array(s.rings);
    this.cq = new Uint32Array(cqBuf);
    this.cqRes = new Int32Array(cqBuf);
    this.sqes = new Uint32Array(s.sqes);
    this.shared = new Uint32Array(s.shared);
    // Offsets are byte offsets of 32-bit fields: word index = offset / 4.
    this.sqHeadI = s.sqOff.head >>> 2;
    this.sqTailI = s.sqOff.tail >>> 2;
    this.sqFlagsI = s.sqOff.flags >>> 2;
    this.sqMask = this.sq[s.sqOff.ringMask >>> 2]!;
    this.cqHeadI = s.cqOff.head >>> 2;
    this.cqTailI = s.cqOff.tail >>> 2;
    this.cqMask = this.cq[s.cqOff.ringMask >>> 2]!;
    this.cqesI = s.cqOff.cqes >>> 2;
    this.sqTail = this.sq[this.sqTailI]!;
    this.sqHeadSeen = this.sq[this.sqHeadI]!;
  }

  /** Creates a ring; returns -errno when io_uring_setup or a mapping fails. */
  static create(entries: number, flags: number, cqEntries: number): RingMemory | number {
    const s = native.setup(entries, flags, cqEntries);
    return typeof s === 'number' ? s : new RingMemory(s);
  }

  /** SQEs written but not yet consumed by the kernel. */
  pendingSqes(): number {
    // The kernel's head is read fresh: when a request fails in prep the kernel may stop consuming
    // early, and a count kept in JS would drift (architecture.md).
    this.sqHeadSeen = Atomics.load(this.sq, this.sqHeadI);
    return (this.sqTail - this.sqHeadSeen) >>> 0;
  }

  /**
   * Word offset of the next free SQE, or -1 when the SQ is full. The caller fills it and then
   * calls advance().
   */
  nextSqe(): number {
    // The kernel's head only moves forward (and only inside io_uring_enter without SQPOLL): a
    // stale value can only under-count free entries, so it is re-read only when it says "full".
    if (((this.sqTail - this.sqHeadSeen) >>> 0) >= this.sqEntries && this.pendingSqes() >= this.sqEntries) return -1;
    return (this.sqTail & this.sqMask) << 4;
  }

  advance(): void {
    this.sqTail = (this.sqTail + 1) >>> 0;
  }

  /**
   * Word offset of the SQE with user_data (`lo`, `hi`) among those the kernel has not consumed,
   * or -1. (Without SQPOLL the kernel reads SQEs only inside io_uring_enter on this thread: one it
   * has not consumed may still be rewritten.)
   */
  findPending(lo: number, hi: number): number {
    const w = this.sqes;
    for (let p = Atomics.load(this.sq, this.sqHeadI); p !== this.sqTail; p = (p + 1) >>> 0) {
      const o = (p & this.sqMask) << 4;
      if (w[o + 8] === lo && w[o + 9] === hi) return o;
    }
    return -1;
  }

  /**
   * Publishes the SQ tail and enters the kernel: submits every pending SQE and, with
   * `getEvents`, runs deferred task work / waits for `minComplete` CQEs (bounded).
   * Returns the kernel's result (SQEs consumed) or -errno.
   */
  enter(minComplete: number, getEvents: boolean): number {
    // Release: the SQE words above were plain stores; Atomics.store is sequentially consistent
    // (at least a release), so the kernel, which reads the tail with acquire, sees complete SQEs.
    Atomics.store(this.sq, this.sqTailI, this.sqTail);
    // For the teardown in C: the tail the kernel may see. (SQEs written after it never reach the
    // kernel should the thread stop now, so nothing reads their memory: they need no waiting.)
    this.shared[SH_SQ_TAIL] = this.sqTail;
    const toSubmit = this.pendingSqes();
    const flags = getEvents || minComplete > 0 ? IORING_ENTER_GETEVENTS : 0;
    if (minComplete > 0 && (this.features & IORING_FEAT_EXT_ARG) !== 0) {
      return native.enter(this.fd, toSubmit, minComplete, flags, WAIT_BOUND_NS);
    }
    return native.enter(this.fd, toSubmit, minComplete, flags);
  }

  /** True when the kernel asks to be entered: overflowed CQEs or pending task work to flush. */
  needsEnter(): boolean {
    return (Atomics.load(this.sq, this.sqFlagsI) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) !== 0;
  }

  /**
   * Calls `sink.onCqe(userData, res, flags)` for every CQE ready now, then frees their entries.
   * (A method on an object, not a closure: one shape, so the call inlines in the hot loop.)
   * Returns how many were read.
   */
  reap(sink: CqeSink): number {
    let head = this.cq[this.cqHeadI]!;
    // Acquire: the CQE fields are read only after this load of the tail the kernel published.
    const tail = Atomics.load(this.cq, this.cqTailI);
    const mask = this.cqMask;
    const base = this.cqesI;
    const cq = this.cq;
    const res = this.cqRes;
    const sh = this.shared;
    const start = head;
    // For the teardown in C: CQEs consumed that ended their request (no F_MORE), up to `head`.
    let finals = sh[SH_FINALS]!;
    try {
      while (head !== tail) {
        const o = base + ((head & mask) << 2);
        const ud = cq[o]!;
        const r = res[o + 2]!;
        const f = cq[o + 3]!;
        head = (head + 1) >>> 0;
        finals += 1 - ((f >>> 1) & 1); // IORING_CQE_F_MORE = 1 << 1
        sink.onCqe(ud, r, f);
      }
    } finally {
      // The count and its CQ position as one pair, with no call between the two stores, and
      // before the kernel's head: a thread stopped in a dispatch (termination comes at calls and
      // back-edges, e.g. process.exit() in a send callback) skips this block and leaves the pair
      // of the last reap, which the kernel's head also still has; C then counts those CQEs itself
      // (they stay in the CQ until the head moves). Once per reap, not per CQE.
      sh[SH_FINALS] = finals;
      sh[SH_CQ_HEAD] = head;
      // Release: free the entries once, after their fields were read. In `finally`, so that a
      // dispatch that throws never makes us read the same CQE twice.
      Atomics.store(cq, this.cqHeadI, head);
    }
    return (head - start) >>> 0;
  }

  /** Unmaps the rings (the ArrayBuffers are detached first) and closes the ring fd. */
  destroy(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    for (const m of this.mappings) native.unmap(m);
    // Closes the fd in the call that makes C forget the ring (no teardown may close it again).
    native.release(this.shared.buffer as ArrayBuffer);
  }
}

/** Receives CQEs from RingMemory#reap. */
export interface CqeSink {
  onCqe(userData: number, res: number, flags: number): void;
}

/** Why a ring could not be set up with ENOMEM: the ring memory counts against RLIMIT_MEMLOCK on some kernels. */
export function ringMemlockHint(): string {
  return `the ring's memory could not be allocated or locked. ${memlockHint()}; or use a smaller ring (new Ring({ entries }))`;
}

/** Why io_uring_setup failed with EPERM/ENOSYS, in words a user can act on. */
export function setupFailureReason(errno: number): string {
  let sysctl = '';
  try {
    // Read lazily: only on the failure path.
    const v = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
    if (v === '2') sysctl = 'kernel.io_uring_disabled=2 disables io_uring for every process';
    else if (v === '1') sysctl = 'kernel.io_uring_disabled=1 allows io_uring only to the io_uring_group';
  } catch {
    // No such sysctl (kernels before 6.6): nothing to add.
  }
  if (sysctl) return `${sysctl} (io_uring_setup: ${errno === -1 ? 'EPERM' : 'ENOSYS'})`;
  if (errno === -38) return 'io_uring_setup returned ENOSYS: the kernel has no io_uring, or seccomp blocks it';
  return 'io_uring_setup returned EPERM: blocked by seccomp (e.g. Docker\'s default profile) or a security policy';
}
