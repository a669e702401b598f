/**
 * The ring: SQ/CQ bookkeeping over the memory the kernel maps for us, submit batching, completion
 * dispatch through a slot table, and the event-loop hook.
 *
 * The io_uring protocol is written here, in TypeScript, over external ArrayBuffers that alias the
 * kernel's rings (architecture.md: SQEs written from JS reach 0.97-0.99x of the same loop in C,
 * one Node-API call per request only 0.92-0.96x). The native shim only sets up, maps, enters,
 * registers and polls.
 */
import { readFileSync } from 'node:fs';
import { native, type PollHandle, type SetupResult } from './native.js';
import { memlockHint, ringClosedError, UringZcArgumentError, UringZcStateError, UringZcSystemError, UringZcUnsupportedError } from './errors.js';
import { validateOptions, validateUint } from './options.js';
import { prepCancel, prepNop } from './sqe.js';
import { BufferPool, BufferTable, type BufferPoolOptions } from './pool.js';
import { adoptOn, type Adoptable, type AdoptOptions, type ZeroCopySocket } from './socket.js';
import { Fifo } from './fifo.js';
import { capabilities, takeSpareRing } from './probe.js';
import {
  IORING_ASYNC_CANCEL_ALL,
  IORING_ASYNC_CANCEL_ANY,
  IORING_ASYNC_CANCEL_FD,
  IORING_ENTER_GETEVENTS,
  IORING_FEAT_EXT_ARG,
  IORING_FEAT_SUBMIT_STABLE,
  IORING_SETUP_COOP_TASKRUN,
  IORING_SETUP_DEFER_TASKRUN,
  IORING_SETUP_SINGLE_ISSUER,
  IORING_SETUP_SUBMIT_ALL,
  IORING_SEND_ZC_REPORT_USAGE,
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

/** Options of `new Ring()`. */
export interface RingOptions {
  /** SQ entries (power of two, 1..4096; default 256). The CQ gets 4x, for two CQEs per send. */
  entries?: number;
  /**
   * Extra io_uring_setup flags, for experiments; default: what measured best here
   * (see DEFAULT_SETUP_FLAGS).
   */
  setupFlags?: number;
}

/**
 * Setup flags. SUBMIT_ALL: a request that fails in prep does not stop the ones after it, so one
 * bad send cannot hold up the others. COOP_TASKRUN: no IPI to interrupt the thread for task work;
 * the event-loop thread enters the kernel often enough (epoll_wait) and it measured no slower.
 * SINGLE_ISSUER: only this thread submits (a ring belongs to one thread; workers make their own).
 * DEFER_TASKRUN was measured too and is not used: see README "Measured".
 */
export const DEFAULT_SETUP_FLAGS = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;

/** user_data of internal requests whose CQEs carry nothing for anyone (cancel-all at close). */
const UD_INTERNAL = 0xffffffff;

/** Size of a ring's msghdr scratch (see Ring#scratch). */
const SCRATCH_BYTES = 64 * 1024;

/** Most reap/submit rounds in one poll callback (see Ring#pump). */
const PUMP_ROUNDS = 8;

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

let defaultRingOfThread: Ring | undefined;

/** This thread's default ring, created on first use (unreferenced while idle). */
export function defaultRing(): Ring {
  if (defaultRingOfThread === undefined || defaultRingOfThread.closed) defaultRingOfThread = new Ring();
  return defaultRingOfThread;
}

/**
 * An io_uring instance driven from this thread's Node event loop.
 *
 * Requests queued during one tick go to the kernel with one io_uring_enter (a microtask flushes
 * them), and at once when the SQ is full. Completions are reaped when libuv reports the ring fd
 * readable: no thread, no busy polling. While requests are in flight the ring keeps the event loop
 * alive; idle, it does not.
 */
export class Ring {
  /** The backend a Ring is. */
  readonly backend = 'io_uring' as const;
  /** @internal IORING_SEND_ZC_REPORT_USAGE where the kernel has it (6.2+), else 0 (sends then report zeroCopy true). */
  readonly usageFlag: number;
  /** @internal IORING_SEND_VECTORIZED is available (6.17+). */
  readonly vectorized: boolean;
  /** @internal */ readonly mem: RingMemory;
  /**
   * Most requests in the kernel at once that complete by themselves (datagrams): two CQEs each
   * always fit in the CQ. Stream sends do not count: one may wait for a peer that never reads,
   * and any number of those must not keep other sockets out of the ring. They take slots beyond
   * this bound (the slot table grows), and their CQEs, should they come all at once, wait in the
   * kernel's overflow list (IORING_FEAT_NODROP) until the pump flushes them.
   */
  readonly maxInFlight: number;
  private readonly slots: (RingOp | undefined)[];
  /** Per slot: 1 when it holds a stream send (not counted against maxInFlight). */
  private slotWaits: Uint8Array;
  /**
   * Per slot: how many requests it has held (mod 2^32), written as the high word of user_data, so
   * that a cancel by user_data (cancelOp) meets only the request it was written for, never a later
   * one that reuses the slot.
   */
  private slotGens: Uint32Array;
  private readonly freeSlots: number[];
  /** Requests in slots that count against maxInFlight, and those that do not. */
  private boundedLive = 0;
  private streamLive = 0;
  /** Requests waiting for a slot (bounded ones) or for an SQE (stream sends, only when the SQ is full). */
  private readonly backlog = new Fifo<RingOp>(64);
  private readonly streamBacklog = new Fifo<RingOp>(16);
  private readonly poll: PollHandle;
  private pollRefd = false;
  private flushQueued = false;
  private inPump = false;
  private readonly deferTaskrun: boolean;
  /** @internal True from close() on: no new request is accepted. */
  closing = false;
  private readonly sockets = new Set<{ destroy(): Promise<void> }>();
  private readonly pools = new Set<BufferPool>();
  private bufferTable: BufferTable | undefined;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  /**
   * Scratch memory for struct msghdr + iovecs of vectored requests, laid out when their SQE is
   * written and reused once the kernel has consumed every SQE: with IORING_FEAT_SUBMIT_STABLE
   * (5.5+, so every kernel with SEND_ZC) the kernel has copied the header and imported the
   * iovecs by then. (Not the payload: that is read until the notification. Not control data
   * either, which the socket layer reads at issue time: GSO headers live in their request.)
   * @internal
   */
  readonly scratch = new Uint32Array(SCRATCH_BYTES >>> 2);
  /** @internal Address of scratch[0]. */
  readonly scratchAddr: number;
  private scratchUsed = 0;
  /** The kernel consumes submitted data with the SQE (IORING_FEAT_SUBMIT_STABLE): scratch is usable. */
  private readonly scratchStable: boolean;
  private readonly flushBound = (): void => this.flushMicrotask();

  /**
   * @throws UringZcUnsupportedError when io_uring is not available (seccomp, sysctl, old kernel).
   * @throws UringZcSystemError for other setup failures (ENOMEM: RLIMIT_MEMLOCK on older kernels).
   */
  constructor(options: RingOptions = {}) {
    validateOptions('Ring options', options, ['entries', 'setupFlags']);
    const entries = options.entries ?? DEFAULT_ENTRIES;
    validateUint('entries', entries, 1, 4096);
    if ((entries & (entries - 1)) !== 0) {
      throw new UringZcArgumentError(`"entries" must be a power of two between 1 and 4096, got ${entries}`);
    }
    const flags = options.setupFlags ?? DEFAULT_SETUP_FLAGS;
    validateUint('setupFlags', flags, 0, 0x7fffffff);
    if ((flags & IORING_SETUP_DEFER_TASKRUN) !== 0) {
      // With DEFER_TASKRUN the kernel never signals a poller of the ring fd: completions that come
      // after the submitting syscall (TCP, at the peer's ACK) would wait for an io_uring_enter
      // that nothing makes, and such sends would never settle. No gain was measured from it.
      throw new UringZcArgumentError('"setupFlags": IORING_SETUP_DEFER_TASKRUN is not supported: its completions are invisible to the event loop\'s poll of the ring fd, so sends completing later (TCP) would never settle');
    }
    // The probe's ring where it fits (see takeSpareRing), else a new one.
    const mem = takeSpareRing(entries, flags, entries * CQ_PER_SQ) ?? RingMemory.create(entries, flags, entries * CQ_PER_SQ);
    if (typeof mem === 'number') {
      if (mem === -1 /* EPERM */ || mem === -38 /* ENOSYS */) {
        throw new UringZcUnsupportedError('io_uring is not available', setupFailureReason(mem));
      }
      const hint = mem === -12 /* ENOMEM */ ? ringMemlockHint() : undefined;
      throw new UringZcSystemError(mem, 'io_uring_setup', hint);
    }
    this.mem = mem;
    const caps = capabilities();
    this.usageFlag = caps.reportUsage ? IORING_SEND_ZC_REPORT_USAGE : 0;
    this.vectorized = caps.sendZcVectorized;
    this.deferTaskrun = (mem.flags & IORING_SETUP_DEFER_TASKRUN) !== 0;
    // Keep a few CQEs spare for internal requests (the cancel at close).
    this.maxInFlight = Math.max(1, Math.min(mem.sqEntries * 2, (mem.cqEntries >>> 1) - 4));
    this.slots = new Array<RingOp | undefined>(this.maxInFlight).fill(undefined);
    this.slotWaits = new Uint8Array(this.maxInFlight);
    this.slotGens = new Uint32Array(this.maxInFlight);
    this.freeSlots = [];
    for (let i = this.maxInFlight - 1; i >= 0; i--) this.freeSlots.push(i);
    this.scratchAddr = native.address(this.scratch);
    this.scratchStable = (mem.features & IORING_FEAT_SUBMIT_STABLE) !== 0;
    this.poll = native.pollStart(mem.fd, () => this.pump());
  }

  /**
   * @internal `bytes` (a multiple of 8) of scratch for a msghdr: its byte offset, or -1 when the
   * scratch is full and the kernel still holds unconsumed SQEs (the caller then uses memory of its
   * own that it keeps until the result CQE).
   */
  allocScratch(bytes: number): number {
    if (!this.scratchStable) return -1;
    if (this.scratchUsed + bytes > SCRATCH_BYTES) {
      this.submit();
      if (this.scratchUsed + bytes > SCRATCH_BYTES) return -1;
    }
    const at = this.scratchUsed;
    this.scratchUsed += bytes;
    return at;
  }

  /**
   * Adopts a socket for zero-copy sends on this ring: a connected net.Socket, a bound
   * dgram.Socket, or a socket fd. The descriptor is duplicated; see adopt().
   */
  adopt(target: Adoptable, options?: AdoptOptions): ZeroCopySocket {
    return adoptOn(this, target, options);
  }

  /**
   * Creates a pool of `count` registered buffers of `bufferSize` bytes (one registered region).
   * Sends of its buffers use IORING_RECVSEND_FIXED_BUF. See BufferPool.
   * @throws ENOMEM (with the RLIMIT_MEMLOCK limit and how to raise it) when the kernel cannot pin it.
   */
  createBufferPool(options: BufferPoolOptions = {}): BufferPool {
    if (this.closing) throw ringClosedError();
    this.bufferTable ??= new BufferTable(this);
    const pool = new BufferPool(this, this.bufferTable, options);
    this.pools.add(pool);
    return pool;
  }

  /** @internal */
  untrackPool(pool: BufferPool): void {
    this.pools.delete(pool);
  }

  /** @internal Sockets adopted on this ring are closed with it. */
  track(sock: { destroy(): Promise<void> }): void {
    this.sockets.add(sock);
  }

  /** @internal */
  untrack(sock: { destroy(): Promise<void> }): void {
    this.sockets.delete(sock);
  }

  /** True once close() has finished. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Requests in the kernel (awaiting a CQE) plus requests waiting for a free slot. */
  get inFlight(): number {
    return this.boundedLive + this.streamLive + this.backlog.length + this.streamBacklog.length;
  }

  /**
   * Queues a request that completes by itself (a datagram): it gets a slot and an SQE now, or
   * waits in the backlog until an earlier request completes. It reaches the kernel at the end of
   * this tick.
   * @internal
   */
  queue(op: RingOp): void {
    if (this.closing) {
      this.abandonLater(op);
      return;
    }
    if (this.backlog.length > 0 || !this.place(op, 0)) this.backlog.push(op);
    this.scheduleFlush();
    if (!this.pollRefd) this.setRef(true);
  }

  /**
   * Queues a stream send: a request that may wait in the kernel for as long as its peer does not
   * read. It takes a slot beyond maxInFlight, so that stalled peers never keep other sockets'
   * requests out of the ring.
   * @internal
   */
  queueStream(op: RingOp): void {
    if (this.closing) {
      this.abandonLater(op);
      return;
    }
    if (this.streamBacklog.length > 0 || !this.place(op, 1)) this.streamBacklog.push(op);
    this.scheduleFlush();
    if (!this.pollRefd) this.setRef(true);
  }

  /**
   * A request queued on a closing ring is abandoned on the next tick, never inside the call that
   * queued it: a callback that resends on error would otherwise recurse until the stack overflows.
   */
  private abandonLater(op: RingOp): void {
    process.nextTick(() => op.abandon(ringClosedError()));
  }

  /**
   * @internal Abandons (with `err`) the requests of `sock` that wait for a slot or an SQE: a
   * destroyed socket settles them at once instead of when other requests make room.
   */
  dropQueued(sock: object, err: () => Error): void {
    const mine = (op: RingOp): boolean => op.sock === sock;
    const dropped = this.backlog.removeIf(mine);
    for (const op of this.streamBacklog.removeIf(mine)) dropped.push(op);
    for (const op of dropped) op.abandon(err());
    if (dropped.length > 0) this.afterCompletions();
  }

  /**
   * @internal Cancels every request on `fd` (IORING_OP_ASYNC_CANCEL, by fd, all). Its own CQE
   * carries nothing; the cancelled requests complete with -ECANCELED (and their notifications).
   */
  cancelFd(fd: number): void {
    if (this.closedFlag) return;
    let o = this.mem.nextSqe();
    if (o < 0) {
      this.submit();
      o = this.mem.nextSqe();
      if (o < 0) return; // the kernel holds a full SQ: nothing to cancel can be waiting on us
    }
    prepCancel(this.mem.sqes, o, fd, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL, UD_INTERNAL);
    this.mem.advance();
    this.scheduleFlush();
  }

  /**
   * @internal Cancels one request (an aborted send): one waiting for a slot or an SQE completes
   * at once with -ECANCELED; one in the kernel gets an IORING_OP_ASYNC_CANCEL matching its
   * user_data, slot and generation, and completes as the kernel says (-ECANCELED, the bytes done
   * so far, or its result if it was done already). A request no longer here is left alone.
   */
  cancelOp(op: RingOp): void {
    const mine = (o: RingOp): boolean => o === op;
    if (this.backlog.removeIf(mine).length + this.streamBacklog.removeIf(mine).length > 0) {
      op.complete(-125 /* ECANCELED */, 0);
      this.afterCompletions();
      return;
    }
    const slot = this.slots.indexOf(op);
    if (slot < 0 || this.closedFlag) return;
    const gen = this.slotGens[slot]!;
    const queued = this.mem.findPending(slot, gen);
    if (queued >= 0) {
      // Written but not submitted: it becomes a NOP (same user_data), whose CQE (res 0, no
      // notification) ends the request with nothing sent.
      prepNop(this.mem.sqes, queued, slot);
      return;
    }
    let o = this.mem.nextSqe();
    if (o < 0) {
      this.submit();
      o = this.mem.nextSqe();
      if (o < 0) return; // the kernel holds a full SQ; the request ends as it ends
    }
    const w = this.mem.sqes;
    prepCancel(w, o, 0, 0, UD_INTERNAL);
    // sqe->addr: the user_data to match (flags 0: by user_data, the first match).
    w[o + 4] = slot;
    w[o + 5] = gen;
    w[o + 9] = 0;
    this.mem.advance();
    this.scheduleFlush();
  }

  /**
   * Gives `op` a slot and its SQE; false when there is no room. `waits` (1: a stream send) takes
   * a slot beyond maxInFlight, growing the table.
   */
  private place(op: RingOp, waits: number): boolean {
    if (waits === 0 && this.boundedLive >= this.maxInFlight) return false;
    let o = this.mem.nextSqe();
    if (o < 0) {
      // SQ full: submit what is there now, then there is room.
      this.submit();
      o = this.mem.nextSqe();
      if (o < 0) return false;
    }
    let slot = this.freeSlots.pop();
    if (slot === undefined) slot = this.growSlots();
    this.slots[slot] = op;
    this.slotWaits[slot] = waits;
    if (waits === 0) this.boundedLive++;
    else this.streamLive++;
    const sqes = this.mem.sqes;
    op.prep(sqes, o, slot);
    // user_data's high word (no encoder writes it): the slot's generation.
    sqes[o + 9] = ++this.slotGens[slot]!;
    this.mem.advance();
    return true;
  }

  /** Doubles the slot table (stream sends beyond maxInFlight); returns a free slot. */
  private growSlots(): number {
    const n = this.slots.length;
    if (n >= UD_INTERNAL) throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'too many requests in flight on one ring');
    for (let i = 2 * n - 1; i > n; i--) this.freeSlots.push(i);
    for (let i = n; i < 2 * n; i++) this.slots.push(undefined);
    const waits = new Uint8Array(2 * n);
    waits.set(this.slotWaits);
    this.slotWaits = waits;
    const gens = new Uint32Array(2 * n);
    gens.set(this.slotGens);
    this.slotGens = gens;
    return n;
  }

  /** Submits at the end of this tick (the pump submits itself when it is running). */
  private scheduleFlush(): void {
    if (!this.inPump && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushBound);
    }
  }

  private flushMicrotask(): void {
    this.flushQueued = false;
    if (!this.closedFlag) this.submit();
  }

  /** Submits pending SQEs. EBUSY/EAGAIN (CQ overflow backpressure) is retried at the next pump. */
  private submit(): void {
    if (this.mem.pendingSqes() === 0) {
      this.scratchUsed = 0;
      return;
    }
    const r = this.mem.enter(0, this.deferTaskrun);
    // Every SQE consumed: the kernel has copied what it needed from the scratch (SUBMIT_STABLE).
    if (this.mem.pendingSqes() === 0) this.scratchUsed = 0;
    if (r < 0 && r !== -16 /* EBUSY */ && r !== -11 /* EAGAIN */ && r !== -4 /* EINTR */) {
      // Only a broken ring fails here (EBADF, EFAULT): nothing can complete any more.
      throw new UringZcSystemError(r, 'io_uring_enter');
    }
  }

  /**
   * The poll callback: reap, refill from the backlog, submit, adjust the loop reference.
   * Completions that callbacks' new sends produce inline (UDP sends usually complete inside
   * io_uring_enter) are reaped in the same callback, a bounded number of rounds, instead of one
   * epoll round trip each; the bound keeps timers and I/O of the rest of the program on time.
   */
  private pump(): void {
    if (this.closedFlag) return;
    this.inPump = true;
    try {
      for (let round = 0; round < PUMP_ROUNDS; round++) {
        if (this.deferTaskrun || this.mem.needsEnter()) this.mem.enter(0, true);
        if (this.mem.reap(this) === 0 && round > 0) break;
        this.drainBacklog();
        this.submit();
      }
    } finally {
      this.inPump = false;
    }
    this.afterCompletions();
  }

  private drainBacklog(): void {
    const s = this.streamBacklog;
    while (s.length > 0 && this.place(s.peek()!, 1)) s.shift();
    const b = this.backlog;
    while (b.length > 0 && this.place(b.peek()!, 0)) b.shift();
  }

  /** @internal One CQE (RingMemory#reap): to the request in slot `ud`. */
  onCqe(ud: number, res: number, flags: number): void {
    if (ud === UD_INTERNAL) return;
    const op = this.slots[ud];
    if (op === undefined) return; // not ours (cannot happen: every SQE we write has a live slot)
    if (op.complete(res, flags)) {
      this.slots[ud] = undefined;
      if (this.slotWaits[ud] === 0) this.boundedLive--;
      else this.streamLive--;
      this.freeSlots.push(ud);
    }
  }

  private afterCompletions(): void {
    const idle = this.inFlight === 0;
    if (idle && this.pollRefd) this.setRef(false);
    if (idle && this.closing) this.finishClose();
  }

  private setRef(on: boolean): void {
    this.pollRefd = on;
    native.pollRef(this.poll, on);
  }

  /**
   * Closes the ring. Requests not yet in the kernel are rejected with ERR_URING_ZC_RING_CLOSED;
   * requests in the kernel are cancelled (IORING_OP_ASYNC_CANCEL, any) and settle with their
   * final CQE, so no Buffer is released before the kernel is done with it. Resolves once every
   * request has settled and the ring is unmapped.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      this.resolveClose = resolve;
    });
    // Sockets first: each marks itself closed and settles what it had queued, so that a callback
    // resending on error meets a closed socket (settled on the next tick), not this ring mid-close.
    for (const sock of [...this.sockets]) void sock.destroy();
    const pending = this.backlog.drain();
    for (const op of this.streamBacklog.drain()) pending.push(op);
    for (const op of pending) op.abandon(ringClosedError());
    for (const pool of [...this.pools]) void pool.close();
    if (this.inFlight > 0) {
      const o = this.mem.nextSqe();
      if (o >= 0) {
        prepCancel(this.mem.sqes, o, 0, IORING_ASYNC_CANCEL_ANY, UD_INTERNAL);
        this.mem.advance();
      }
      this.submit();
      if (!this.pollRefd) this.setRef(true);
    } else {
      this.finishClose();
    }
    return this.closePromise;
  }

  private finishClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    native.pollStop(this.poll);
    this.mem.destroy();
    this.resolveClose?.();
  }
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
