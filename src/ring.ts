/**
 * The ring: submit batching and completion dispatch through a slot table over the memory the
 * kernel maps for us (ring-memory.ts), and the event-loop hook.
 *
 * The io_uring protocol is written here, in TypeScript, over external ArrayBuffers that alias the
 * kernel's rings (architecture.md: SQEs written from JS reach 0.97-0.99x of the same loop in C,
 * one Node-API call per request only 0.92-0.96x). The native shim only sets up, maps, enters,
 * registers and polls.
 */
import { native, type PollHandle } from './native.js';
import { ringClosedError, UringZcArgumentError, UringZcStateError, UringZcSystemError, UringZcUnsupportedError } from './errors.js';
import { validateOptions, validateUint } from './options.js';
import { prepCancel, prepNop } from './sqe.js';
import { Fifo } from './fifo.js';
import { capabilities, takeSpareRing } from './probe.js';
import { CQ_PER_SQ, DEFAULT_ENTRIES, DEFAULT_SETUP_FLAGS, RingMemory, ringMemlockHint, setupFailureReason, type RingOp } from './ring-memory.js';
import {
  IORING_ASYNC_CANCEL_ALL,
  IORING_ASYNC_CANCEL_ANY,
  IORING_ASYNC_CANCEL_FD,
  IORING_FEAT_SUBMIT_STABLE,
  IORING_SETUP_DEFER_TASKRUN,
  IORING_SEND_ZC_REPORT_USAGE,
} from './uapi.js';


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


/** user_data of internal requests whose CQEs carry nothing for anyone (cancel-all at close). */
const UD_INTERNAL = 0xffffffff;

/** Size of a ring's msghdr scratch (see Ring#scratch). */
const SCRATCH_BYTES = 64 * 1024;

/** Most reap/submit rounds in one poll callback (see Ring#pump). */
const PUMP_ROUNDS = 8;


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
  /** @internal The ring's buffer pools (pool.ts), closed with it. */
  readonly pools = new Set<{ close(): Promise<void> }>();
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

  // ring.adopt() and ring.createBufferPool() are defined by adopt.ts and pool.ts, which build on
  // this module (it imports neither): see the `declare module` there.

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
