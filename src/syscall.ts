/**
 * The backends that do not use io_uring: `msg_zerocopy` (non-blocking sendmsg with MSG_ZEROCOPY,
 * completions read from the socket's error queue) and `copy` (the same sendmsg without the flag).
 *
 * Where the seam is, and why there: a SyscallRing executes the very requests a Ring does. Each
 * request writes its SQE (RingOp#prep) into a batch here; this module performs what the SQEs say
 * with non-blocking syscalls (one call into C per batch of up to 64; consecutive sends on one
 * datagram socket as one sendmmsg) and reports the CQEs io_uring would have posted — the
 * result, with IORING_CQE_F_MORE when a zero-copy send queued data, then its IORING_CQE_F_NOTIF
 * when an error-queue range covers it (with IORING_NOTIF_USAGE_ZC_COPIED for
 * SO_EE_CODE_ZEROCOPY_COPIED). So the socket layer — order, batching, policy, pools, stats,
 * settlement, and the "F_MORE is followed by exactly one notification" rule in the requests —
 * is one piece of code for every backend, and the io_uring send path gains no indirection.
 *
 * Differences from the kernel's io_uring, handled here:
 * - MSG_WAITALL is not emulated: a partial send is a short result, which the socket already
 *   continues (the rest goes next, before anything else on the socket).
 * - EAGAIN: the request waits (in order, per descriptor) until the socket is writable, watched
 *   through a private epoll set whose own fd the event loop polls (a libuv poll of the socket
 *   itself would stop at the first EPOLLERR, which is how a socket with completions queued polls).
 * - ENOBUFS (net.core.optmem_max used up by completions not yet read): with none outstanding on
 *   the socket no completion can come to free it, so the send goes again by copying at once;
 *   otherwise it waits for the next completion on that socket.
 * Completions are read when the epoll set reports an error-queue entry (a poll callback of the
 * event loop, bounded in rounds, as the Ring's pump), again right after the sends that callback
 * made (see takeEvents()), and on a timer while a socket keeps reporting an error without
 * entries. docs/design.md, "The backends without io_uring", has what each step measured.
 */
import { native, type PollHandle } from './native.js';
import { ringClosedError } from './errors.js';
import type { RingOp } from './ring-memory.js';
import { Fifo } from './fifo.js';
import { IORING_CQE_F_MORE, IORING_CQE_F_NOTIF, IORING_NOTIF_USAGE_ZC_COPIED, IORING_OP_SEND_ZC, IORING_OP_SENDMSG_ZC, IORING_OP_SPLICE } from './uapi.js';

/** The backends a socket can send through. */
export type BackendName = 'io_uring' | 'msg_zerocopy' | 'copy';

const EAGAIN = -11;
const ENOBUFS = -105;
const ECANCELED = -125;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLOUT = 0x004;
const EPOLLERR = 0x008;
const EPOLLHUP = 0x010;
const EPOLLONESHOT = 0x40000000;
const SCRATCH_BYTES = 64 * 1024;
/** Most requests executed in one round; the rest go on the next turn of the event loop. */
const ROUND = 4096;
/** Most requests performed by one call into C (native/syscall.c BATCH_MAX). */
const BATCH = 64;
/** Reads of the error queue after a wake-up's sends, at most (see takeEvents()). */
const AGAIN = 8;
/** Interval of the error-queue timer (see FdState#timer). */
const ERRQUEUE_POLL_MS = 5;

/** Why a request waits on its descriptor. */
const WRITABLE = 1;
const RELEASE = 2;

/** What the backend keeps per socket descriptor. */
class FdState {
  /** Requests waiting (in order) for writability or for a completion; new ones queue behind. */
  readonly waiting = new Fifo<RingOp>();
  waitingFor = 0;
  /** Zero-copy sends whose completion has not come, by their number of the socket's counter. */
  readonly zc: ZcWindow;
  /** Events the epoll set watches for this fd, or -1 when it is not in the set. */
  events = -1;
  /** It reported an event: one-shot, so the set ignores it until watch() arms it again. */
  fired = false;
  /** EPOLLERR without completions to read (a socket error): the error queue is read on a timer instead. */
  timer: NodeJS.Timeout | null = null;
  /** The socket let go of the descriptor: it closes once the last completion is read. */
  released = false;
  /** Closed and forgotten (closeIfDone): a new FdState may have its fd. */
  gone = false;
  /** cancelFd() calls so far: a sendfile job that was on the threadpool during one does not park. */
  cancels = 0;
  constructor(readonly fd: number, readonly inode: number, firstId: number, readonly dgram: boolean) {
    this.zc = new ZcWindow(firstId);
  }
}

/**
 * Whether the send SQE at word `o` of `w` goes with MSG_ZEROCOPY: a zero-copy opcode with bytes,
 * on the msg_zerocopy backend (`msgZc`). native/syscall.c sqe_zc() decides the same for a batch.
 */
function sendsZeroCopy(w: Uint32Array, o: number, msgZc: boolean): boolean {
  const opcode = w[o]! & 0xff;
  return msgZc && (opcode === IORING_OP_SEND_ZC || opcode === IORING_OP_SENDMSG_ZC) && w[o + 6]! > 0;
}

/**
 * The zero-copy sends of one socket waiting for their completion, by number: the socket's
 * MSG_ZEROCOPY counter gives consecutive numbers to the calls that succeed, so the outstanding
 * ones are a window [low, next) of it, kept in a circular array (a Map's set and delete, and its
 * rehashing as it grows and shrinks, were ~5 % of the backend's CPU per 60 KB datagram, perf).
 * Completions may come in any order; `low` moves past the completed ones. 32-bit arithmetic
 * throughout: the counter wraps.
 */
/** @internal Exported for its tests (test/batch.test.ts). */
export class ZcWindow {
  private ops: (RingOp | undefined)[] = new Array<RingOp | undefined>(64).fill(undefined);
  private mask = 63;
  /** The oldest number not completed (== next when none is outstanding). */
  low: number;
  /** The socket's MSG_ZEROCOPY counter: the number its next zero-copy send will have. */
  next: number;
  /** Sends outstanding. */
  size = 0;

  constructor(first: number) {
    this.low = first;
    this.next = first;
  }

  /** The next zero-copy send (it took number `next`) waits for its completion. */
  add(op: RingOp): void {
    if (((this.next - this.low) >>> 0) > this.mask) this.grow();
    this.ops[this.next & this.mask] = op;
    this.next = (this.next + 1) >>> 0;
    this.size++;
  }

  /** The send numbered `id`, taken out of the window; undefined when no send outstanding has it. */
  take(id: number): RingOp | undefined {
    if (((id - this.low) >>> 0) >= ((this.next - this.low) >>> 0)) return undefined;
    const i = id & this.mask;
    const op = this.ops[i];
    if (op === undefined) return undefined;
    this.ops[i] = undefined;
    this.size--;
    if (id === this.low) {
      let low = (id + 1) >>> 0;
      while (low !== this.next && this.ops[low & this.mask] === undefined) low = (low + 1) >>> 0;
      this.low = low;
    }
    return op;
  }

  /** How many numbers from `id` on, at most `count`, lie in the window (the rest are not ours). */
  clip(id: number, count: number): number {
    const off = (id - this.low) >>> 0;
    const span = (this.next - this.low) >>> 0;
    if (off >= span) return 0;
    return Math.min(count, span - off);
  }

  private grow(): void {
    const old = this.ops;
    const oldMask = this.mask;
    const n = 2 * old.length;
    const ops = new Array<RingOp | undefined>(n).fill(undefined);
    const mask = n - 1;
    for (let id = this.low; id !== this.next; id = (id + 1) >>> 0) ops[id & mask] = old[id & oldMask];
    this.ops = ops;
    this.mask = mask;
  }
}


/**
 * A backend without io_uring, shaped like a Ring for the socket layer: it takes requests
 * (queue, queueStream), cancels a descriptor's, drops a destroyed socket's, and lends its
 * scratch for msghdrs. One per thread and kind (see syscallRing()).
 * @internal
 */
export class SyscallRing {
  readonly backend: 'msg_zerocopy' | 'copy';
  /** Stream and datagram requests alike run at once: no bound. */
  readonly maxInFlight = Infinity;
  /** Neither REPORT_USAGE nor IORING_SEND_VECTORIZED are io_uring features here (vectors are sent by msghdr). */
  readonly usageFlag = 0;
  readonly vectorized = false;
  closing = false;
  /** msghdr scratch, used by one request at a time (it is consumed by the syscall that follows). */
  readonly scratch = new Uint32Array(SCRATCH_BYTES >>> 2);
  readonly scratchAddr: number;
  private scratchUsed = 0;
  /** One SQE, where a request describes itself. */
  private readonly sqe = new Uint32Array(16);
  /** The SQEs of one batch (runBatch), their requests, and their results. */
  private readonly batchSqes = new Uint32Array(16 * BATCH);
  private readonly batchOps: (RingOp | undefined)[] = new Array<RingOp | undefined>(BATCH).fill(undefined);
  private readonly batchRes = new Int32Array(BATCH);
  private readonly batchSt: (FdState | undefined)[] = new Array<FdState | undefined>(BATCH).fill(undefined);
  /** The FdState runBatch() looked up last. */
  private lastSt: FdState | undefined = undefined;
  private readonly pending = new Fifo<RingOp>(64);
  private readonly fds = new Map<number, FdState>();
  private readonly sockets = new Set<{ destroy(): Promise<void> }>();
  private readonly epfd: number;
  private readonly poll: PollHandle;
  private readonly events = new Int32Array(128);
  /** Sockets that reported an event in this onEvents() call: armed again at its end. */
  private readonly fired: FdState[] = [];
  private readonly ranges = new Uint32Array(3 * 64);
  private flushQueued = false;
  private roundQueued = false;
  /** A round is running: sends its callbacks queue join it (or the next turn), not a microtask of their own. */
  private inRound = false;
  /** onEvents() is running, before it arms the sockets that reported (see watch()). */
  private inEvents = false;
  private pollRefd = false;
  /** Zero-copy sends not completed, requests waiting, and requests pending: the loop stays alive while > 0. */
  private outstanding = 0;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  private readonly flushBound = (): void => this.flush();

  constructor(backend: 'msg_zerocopy' | 'copy') {
    this.backend = backend;
    this.scratchAddr = native.address(this.scratch);
    const epfd = native.epollCreate();
    if (epfd < 0) throw new Error(`epoll_create1 failed: ${epfd}`);
    this.epfd = epfd;
    // Closed at thread teardown with the adopted sockets if JS cannot (native/teardown.c).
    native.trackSocket(epfd, false);
    this.poll = native.pollStart(epfd, () => this.onEvents());
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get inFlight(): number {
    return this.outstanding;
  }

  /** @internal The socket layer's zero-copy sends need this (not for io_uring's memory rules). */
  allocScratch(bytes: number): number {
    if (this.scratchUsed + bytes > SCRATCH_BYTES) return -1;
    const at = this.scratchUsed;
    this.scratchUsed += bytes;
    return at;
  }

  track(sock: { destroy(): Promise<void> }): void {
    this.sockets.add(sock);
  }

  untrack(sock: { destroy(): Promise<void> }): void {
    this.sockets.delete(sock);
  }

  /**
   * Sets up what the backend keeps for a socket it will send on: SO_ZEROCOPY for msg_zerocopy,
   * and where its MSG_ZEROCOPY counter stands (it counts per socket, across adoptions).
   * `dgram`: a datagram socket (adopt() read its type). Returns 0 or -errno (SO_ZEROCOPY refused:
   * the socket has no zero-copy path).
   */
  attach(fd: number, inode: number, dgram: boolean): number {
    let firstId = 0;
    if (this.backend === 'msg_zerocopy') {
      const r = native.setSockOpt(fd, 1 /* SOL_SOCKET */, 60 /* SO_ZEROCOPY */, 1);
      if (r < 0) return r;
      // One reader of the socket's completions in the process (they are numbered per socket,
      // and whoever reads the error queue takes them): -EBUSY while another descriptor is it,
      // e.g. a UDP socket adopted on several threads — the later ones then copy.
      firstId = native.claimErrqueue(fd);
      if (firstId < 0) return firstId;
    }
    // A datagram socket: many sends per wake-up, so it leaves the epoll set while sent on and has
    // its error queue read right after its sends (takeEvents()). A stream socket has one request
    // in the kernel and few completions per wake-up: that would cost two syscalls per wake-up
    // for nothing (measured, tcp-loopback msg-zc: +45 % CPU per GB).
    this.fds.set(fd, new FdState(fd, inode, firstId, dgram));
    return 0;
  }

  /**
   * The socket is done with its descriptor; the backend closes it — at once, or, while
   * MSG_ZEROCOPY completions are still due, once the last is read (they come on that
   * descriptor's error queue, and the sends they complete settle only then). A socket whose
   * owner asked for a reset (net.Socket#resetAndDestroy) is reset now, so that the data the kernel
   * still holds is dropped and those completions come.
   */
  release(fd: number): void {
    const st = this.fds.get(fd);
    if (st === undefined) {
      native.close(fd);
      return;
    }
    st.released = true;
    if (st.zc.size > 0) {
      native.resetIfLingering(fd);
      this.readCompletions(st);
    }
    this.closeIfDone(st);
  }

  private closeIfDone(st: FdState): void {
    if (!st.released || st.zc.size > 0 || st.waiting.length > 0) {
      this.watch(st);
      return;
    }
    if (this.backend === 'msg_zerocopy') native.setErrqueueNext(st.fd, st.zc.next);
    if (st.timer !== null) clearInterval(st.timer);
    st.timer = null;
    if (st.events >= 0) native.epollCtl(this.epfd, EPOLL_CTL_DEL, st.fd, 0);
    this.fds.delete(st.fd);
    st.gone = true;
    if (this.lastSt === st) this.lastSt = undefined;
    native.close(st.fd);
  }

  queue(op: RingOp): void {
    if (this.closing) {
      process.nextTick(() => op.abandon(ringClosedError()));
      return;
    }
    this.pending.push(op);
    this.outstanding++;
    this.scheduleFlush();
  }

  queueStream(op: RingOp): void {
    this.queue(op);
  }

  /** Requests of `fd` waiting for writability or a completion end with -ECANCELED. */
  cancelFd(fd: number): void {
    const st = this.fds.get(fd);
    if (st === undefined) return;
    st.cancels++;
    for (const op of st.waiting.drain()) {
      this.outstanding--;
      op.complete(ECANCELED, 0);
    }
    st.waitingFor = 0;
    this.watch(st);
    this.afterWork();
  }

  /**
   * One request (an aborted send) that has not been executed, or waits on its socket, completes
   * at once with -ECANCELED. One the kernel took is left alone: a sendmsg that returned cannot be
   * called back (its bytes are in the socket), and its completion comes as it comes.
   */
  cancelOp(op: RingOp): void {
    const mine = (o: RingOp): boolean => o === op;
    let found = this.pending.removeIf(mine).length > 0;
    if (!found) {
      for (const st of this.fds.values()) {
        if (st.waiting.removeIf(mine).length === 0) continue;
        found = true;
        if (st.waiting.length === 0) st.waitingFor = 0;
        this.watch(st);
        break;
      }
    }
    if (!found) return;
    this.outstanding--;
    op.complete(ECANCELED, 0);
    this.afterWork();
  }

  /** Requests of `sock` not executed yet are abandoned with `err` (a destroyed socket). */
  dropQueued(sock: object, err: () => Error): void {
    for (const op of this.pending.removeIf((o) => o.sock === sock)) {
      this.outstanding--;
      op.abandon(err());
    }
    this.afterWork();
  }

  private scheduleFlush(): void {
    if (!this.flushQueued && !this.inRound) {
      this.flushQueued = true;
      queueMicrotask(this.flushBound);
    }
    if (!this.pollRefd) this.setRef(true);
  }

  /** Executes what was queued this tick (outside any send() call: a microtask), then reads completions. */
  private flush(): void {
    this.flushQueued = false;
    this.round();
  }

  private round(): void {
    let n = 0;
    // (Within takeEvents() it stays set: that callback sends what is queued before it returns.)
    const was = this.inRound;
    this.inRound = true;
    try {
      while (n < ROUND && this.pending.length > 0) n += this.runBatch(ROUND - n);
    } finally {
      this.inRound = was;
    }
    if (this.pending.length > 0 && !this.roundQueued) {
      // A long queue goes on at the next turn: timers and other I/O keep their turn.
      this.roundQueued = true;
      setImmediate(() => {
        this.roundQueued = false;
        this.round();
      });
    }
    // Completions are read only when the epoll set says so (onEvents), never here: a callback
    // that sends again at its completion would otherwise chain microtasks without end and starve
    // the event loop (the sink frees a datagram at once, so there always is one).
    this.afterWork();
  }

  /**
   * Executes up to BATCH pending requests (at most `max`) with one call into C
   * (native/syscall.c sqeSendBatch: consecutive sends on one datagram socket go as one
   * sendmmsg(2)) and reports their result CQEs; returns how many requests it took. Each request
   * writes its SQE into the batch; one that waits on its socket parks (in order, behind it), and a
   * SPLICE runs alone, after the sends before it. Measured (bench/ab.ts --backend msg_zerocopy,
   * both orders): see docs/design.md, "The backends without io_uring".
   */
  private runBatch(max: number): number {
    const B = this.batchSqes;
    const ops = this.batchOps;
    let k = 0;
    let taken = 0;
    let op: RingOp | undefined;
    this.scratchUsed = 0;
    while (k < BATCH && taken < max && (op = this.pending.shift()) !== undefined) {
      this.outstanding--;
      taken++;
      const o = k << 4;
      op.prep(B, o, 0);
      const fd = B[o + 1]!;
      // (Most batches are one socket's: the last lookup is kept.)
      let st = this.lastSt;
      if (st === undefined || st.fd !== fd || st.gone) this.lastSt = st = this.fds.get(fd);
      if (st !== undefined && st.waiting.length > 0) {
        // Behind a request that waits on this socket: in order, after it.
        this.park(st, op, st.waitingFor);
        continue;
      }
      if ((B[o]! & 0xff) === IORING_OP_SPLICE) {
        if (k > 0) {
          // The sends before it go first, as a batch (their msghdrs are in the scratch that it
          // reuses), and it begins the next: what that batch puts back goes before it, in order.
          this.pending.unshift(op);
          this.outstanding++;
          taken--;
          break;
        }
        this.execute(op);
        this.scratchUsed = 0;
        continue;
      }
      this.batchSt[k] = st;
      ops[k++] = op;
    }
    if (k > 0) this.sendBatch(k);
    return taken;
  }

  /** Performs the `k` requests of the batch and reports each one's result. */
  private sendBatch(k: number): void {
    const B = this.batchSqes;
    const ops = this.batchOps;
    const res = this.batchRes;
    const msgZc = this.backend === 'msg_zerocopy';
    const done = native.sqeSendBatch(B, k, msgZc, res);
    // It stopped at a failed send: the requests after it go back to the front of the queue, in
    // order, before anything is reported (a report may run a callback that destroys their socket,
    // which must find them queued), and run again (behind it, if it parks on their socket).
    for (let i = k - 1; i >= done; i--) {
      this.pending.unshift(ops[i]!);
      this.outstanding++;
    }
    const sts = this.batchSt;
    for (let i = 0; i < k; i++) {
      const op = ops[i]!;
      const st = sts[i];
      ops[i] = undefined;
      sts[i] = undefined;
      if (i >= done) continue;
      this.afterSend(op, st, res[i]!, sendsZeroCopy(B, i << 4, msgZc));
    }
  }

  /**
   * Performs the request's SQE as a non-blocking syscall (native/syscall.c sqeSend: without
   * MSG_WAITALL, with MSG_ZEROCOPY for a zero-copy send) and reports its result CQE.
   */
  private execute(op: RingOp): void {
    const w = this.sqe;
    this.scratchUsed = 0;
    op.prep(w, 0, 0);
    const fd = w[1]!;
    const st = this.fds.get(fd);
    if (st !== undefined && st.waiting.length > 0) {
      // Behind a request that waits on this socket: in order, after it.
      this.park(st, op, st.waitingFor);
      return;
    }
    const opcode = w[0]! & 0xff;
    if (opcode === IORING_OP_SPLICE) {
      this.executeFile(op, st);
      return;
    }
    const zc = sendsZeroCopy(w, 0, this.backend === 'msg_zerocopy');
    this.afterSend(op, st, native.sqeSend(w, zc), zc);
  }

  /** What follows a send's syscall (`res`): it parks, goes again by copying, or reports its result CQE. */
  private afterSend(op: RingOp, st: FdState | undefined, res: number, zc: boolean): void {
    if (res === EAGAIN && st !== undefined) {
      this.park(st, op, WRITABLE);
      return;
    }
    if (res === ENOBUFS && zc && st !== undefined) {
      if (st.zc.size > 0) {
        // Completions are outstanding: one will free the socket's option memory.
        this.park(st, op, RELEASE);
        return;
      }
      // None will come: this one goes by copying (it settles as a copy, without a notification).
      const w = this.sqe;
      this.scratchUsed = 0;
      op.prep(w, 0, 0);
      res = native.sqeSend(w, false);
      if (res === EAGAIN) {
        this.park(st, op, WRITABLE);
        return;
      }
      op.complete(res, 0);
      return;
    }
    if (zc && res > 0 && st !== undefined) {
      st.zc.add(op);
      this.outstanding++;
      if (st.events < 0 && st.timer === null && !(st.fired && this.inEvents)) this.watch(st);
      op.complete(res, IORING_CQE_F_MORE);
      return;
    }
    op.complete(res, 0);
  }

  /**
   * A SPLICE from a regular file to the socket (src/file.ts): sendfile(2) on the libuv
   * threadpool (a page-cache miss blocks the read; see native/file.c), its result reported as
   * the CQE. EAGAIN (the socket buffer is full, nothing went) parks it like a send.
   */
  private executeFile(op: RingOp, st: FdState | undefined): void {
    const w = this.sqe;
    const cancels = st?.cancels ?? 0;
    this.outstanding++;
    const r = native.sendfileAsync(w[1]!, w[11]!, w[4]! + w[5]! * 4294967296, w[6]!, (res) => {
      this.outstanding--;
      if (res === EAGAIN && st !== undefined && st.cancels === cancels && !this.closedFlag) this.park(st, op, WRITABLE);
      else op.complete(res === EAGAIN && st !== undefined && st.cancels !== cancels ? ECANCELED : res, 0);
      this.afterWork();
    });
    if (r < 0) {
      this.outstanding--;
      op.complete(r, 0);
    }
  }

  private park(st: FdState, op: RingOp, why: number): void {
    st.waiting.push(op);
    if (why > st.waitingFor) st.waitingFor = why;
    this.outstanding++;
    this.watch(st);
  }

  /** Keeps the epoll set's interest in `st` right: writability while a request waits for it, errors (always reported) while completions are due. */
  private watch(st: FdState): void {
    const want = st.waiting.length > 0 && st.waitingFor === WRITABLE ? EPOLLOUT : 0;
    // In the set from the first zero-copy send or wait on until released: EPOLLERR only fires when
    // completions are queued (or the socket has an error), so staying costs nothing, and adding
    // and removing it at every round would be two syscalls each.
    const needed = st.waiting.length > 0 || (st.timer === null && (st.zc.size > 0 || (st.events >= 0 && !st.released)));
    if (!needed) {
      if (st.events >= 0) {
        native.epollCtl(this.epfd, EPOLL_CTL_DEL, st.fd, 0);
        st.events = -1;
      }
      return;
    }
    if (st.events === want && !st.fired) return;
    // A socket that reported in this onEvents() call is armed at its end.
    if (st.fired && this.inEvents) return;
    // One-shot: after it reports once, the socket's further wake-ups (one per completion, in the
    // middle of our sendmsg calls) stop at the epoll set instead of waking it and, through it, the
    // event loop's epoll; armed again here after each round, which reads every completion queued.
    // Measured (bench/ab.ts --backend msg_zerocopy, both orders): +5-10 % sends/s for 60 KB
    // datagrams into the sink, +-1 % for 1200 B.
    const r = native.epollCtl(this.epfd, st.events < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, st.fd, want | EPOLLONESHOT);
    st.events = r === 0 ? want : -1;
    st.fired = false;
  }

  /** The epoll set's fd is readable: some socket is writable, or has completions or an error. */
  private onEvents(): void {
    if (this.closedFlag) return;
    this.inEvents = true;
    try {
      this.takeEvents();
    } finally {
      this.inEvents = false;
      this.inRound = false;
    }
    // Armed again only now, after the sends their completions made room for: what completes
    // during those sendmsg calls does not wake anyone (see watch()), and arming reports it at once.
    const fired = this.fired;
    for (let i = 0; i < fired.length; i++) if (this.fds.get(fired[i]!.fd) === fired[i]) this.watch(fired[i]!);
    fired.length = 0;
  }

  /** onEvents(): what the set reports, handled, and the sends that made possible. */
  private takeEvents(): void {
    const ev = this.events;
    // The sends that the completions' callbacks queue go in a round() here, not in a microtask of
    // their own (inRound: see scheduleFlush(); onEvents() clears it).
    this.inRound = true;
    for (let rounds = 0; rounds < 8; rounds++) {
      const n = native.epollWait(this.epfd, ev);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const st = this.fds.get(ev[2 * i]!);
        if (st === undefined) continue;
        const events = ev[2 * i + 1]!;
        st.fired = true;
        if (st.events >= 0 && st.dgram) {
          // Out of the set while this call sends (armed again at its end): a socket in an epoll
          // set has a waiter, and then every send's completion and freed buffer space wakes it
          // (a lock and an interrupt-restoring unlock in the kernel, twice per send, although the
          // one-shot entry ignores them); without one, those are skipped. Removing and adding
          // costs one syscall more per wake-up than re-arming. Measured (bench/ab.ts --backend
          // msg_zerocopy, both orders): see docs/design.md, "The backends without io_uring".
          native.epollCtl(this.epfd, EPOLL_CTL_DEL, st.fd, 0);
          st.events = -1;
        }
        let got = 0;
        if ((events & EPOLLERR) !== 0 && this.backend === 'msg_zerocopy') got = this.readCompletions(st);
        if ((events & (EPOLLOUT | EPOLLHUP)) !== 0 || ((events & EPOLLERR) !== 0 && got === 0)) this.retry(st);
        if ((events & EPOLLERR) !== 0 && got === 0 && st.zc.size > 0 && st.timer === null) {
          // An error without completions keeps the socket in EPOLLERR: watching it would spin.
          // Read its error queue on a timer instead until its completions are in.
          st.timer = setInterval(() => this.onTimer(st), ERRQUEUE_POLL_MS);
        }
        this.fired.push(st);
      }
      if (n < ev.length >>> 1) break;
    }
    this.round();
    if (this.backend !== 'msg_zerocopy') return;
    // The completions of the sends just made are often queued already (a device that frees a
    // buffer as it sends it, as loopback and the sink do: within the sendmsg call itself): read
    // them now, and send what their callbacks queue, as the C sender reads its error queue once
    // per batch of sends; a few times at most, so that other I/O and timers keep their turn. This
    // spares a wake-up of the event loop per batch (its epoll_wait, ours, and the socket leaving
    // and joining our set). A read that finds nothing (-EAGAIN: the completions come later, from
    // the device) ends it. Measured (bench/ab.ts --backend msg_zerocopy, both orders): see
    // docs/design.md, "The backends without io_uring".
    const fired = this.fired;
    for (let again = 0; again < AGAIN && this.pending.length === 0; again++) {
      let got = 0;
      for (let i = 0; i < fired.length; i++) {
        const st = fired[i]!;
        if (st.dgram && st.zc.size > 0 && st.timer === null && !st.gone) got += this.readCompletions(st);
      }
      if (got === 0) break;
      this.round();
    }
  }

  private onTimer(st: FdState): void {
    this.readCompletions(st);
    this.retry(st);
    if (st.zc.size === 0 && st.timer !== null) {
      clearInterval(st.timer);
      st.timer = null;
    }
    this.watch(st);
    this.afterWork();
  }

  /** Runs the requests waiting on `st` again, in order, until one has to wait again. */
  private retry(st: FdState): void {
    const waiting = st.waiting.drain();
    st.waitingFor = 0;
    this.outstanding -= waiting.length;
    for (const op of waiting) this.execute(op);
  }

  /** Reads the socket's completions and reports each send's notification; returns how many ranges. */
  private readCompletions(st: FdState): number {
    const r = this.ranges;
    let total = 0;
    for (;;) {
      // (Stops once they cover every send outstanding: spares the read that would say EAGAIN.)
      const n = native.zcCompletions(st.fd, r, st.zc.size);
      if (n <= 0) break;
      total += n;
      for (let i = 0; i < n; i++) {
        const lo = r[3 * i]!;
        const hi = r[3 * i + 1]!;
        const res = r[3 * i + 2] !== 0 ? IORING_NOTIF_USAGE_ZC_COPIED | 0 : 0;
        // lo..hi in the socket's 32-bit counter, hi possibly wrapped below lo; numbers outside
        // the window of outstanding sends are not ours.
        // (A range may also begin before the window: the kernel merges adjacent ranges, and
        // the numbers before this adoption's first were another descriptor's.)
        let from = lo;
        let count = ((hi - lo) >>> 0) + 1;
        const before = (st.zc.low - lo) >>> 0;
        if (before > 0 && before < count) {
          from = st.zc.low;
          count -= before;
        }
        count = st.zc.clip(from, count);
        for (let id = from, k = 0; k < count; id = (id + 1) >>> 0, k++) {
          const op = st.zc.take(id);
          if (op === undefined) continue;
          this.outstanding--;
          op.complete(res, IORING_CQE_F_NOTIF);
        }
      }
      if (n < r.length / 3) break;
    }
    if (total > 0 && st.waitingFor === RELEASE) this.retry(st);
    if (total > 0 && st.released) this.closeIfDone(st);
    return total;
  }

  private afterWork(): void {
    if (this.outstanding === 0 && this.pending.length === 0) {
      if (this.pollRefd) this.setRef(false);
      if (this.closing) this.finishClose();
    } else if (!this.pollRefd) {
      this.setRef(true);
    }
  }

  private setRef(on: boolean): void {
    this.pollRefd = on;
    native.pollRef(this.poll, on);
  }

  /** Closes the backend's sockets (as Ring#close does) and resolves once every send has completed. */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      this.resolveClose = resolve;
    });
    for (const sock of [...this.sockets]) void sock.destroy();
    for (const op of this.pending.drain()) {
      this.outstanding--;
      op.abandon(ringClosedError());
    }
    for (const st of this.fds.values()) this.cancelFd(st.fd);
    this.afterWork();
    return this.closePromise;
  }

  private finishClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    native.pollStop(this.poll);
    native.close(this.epfd);
    this.resolveClose?.();
  }
}

const perThread: Partial<Record<'msg_zerocopy' | 'copy', SyscallRing>> = {};

/** @internal This thread's backend of that kind, made on first use. */
export function syscallRing(kind: 'msg_zerocopy' | 'copy'): SyscallRing {
  let r = perThread[kind];
  if (r === undefined || r.closing) perThread[kind] = r = new SyscallRing(kind);
  return r;
}
