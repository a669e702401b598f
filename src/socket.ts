/**
 * ZeroCopySocket: zero-copy sends on an adopted TCP or UDP socket through a Ring.
 *
 * Lifetime: a Buffer passed to send() is held (with its ArrayBuffer) from the call until the
 * kernel's last CQE for it: the IORING_CQE_F_NOTIF notification for a zero-copy send, the only
 * CQE for a copying one. The promise settles only then, also on error, close and ring close, so a
 * Buffer is never handed back while the kernel may still read it.
 *
 * This module is the socket's face and its bookkeeping: the public options and types, send() /
 * sendv() / sendFile() (validation, the copy-or-zero-copy choice), TCP order (one request in the
 * kernel, batching, short-send continuation, the failure latch, aborts), the policy (threshold,
 * auto-downgrade, pin pause, reprobe), settlement, stats, close() / destroy(). What it builds on:
 * the kernel requests (src/stream-send.ts, src/datagram.ts), their msghdr layout (src/msghdr.ts),
 * skb-fragment fit (src/frags.ts), how outcomes are reported (src/outcome.ts). adopt() is in
 * src/adopt.ts.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { EventEmitter } from 'node:events';
import { addressOf, baseAddress } from './buffers.js';
import { encodeSockaddr } from './address.js';
import { DatagramSend, DatagramVector, GOT_NOTIF, GOT_RESULT, WAS_COPIED } from './datagram.js';
import { resumeReceiving, type UdpHandle } from './dgram-handle.js';
import {
  ringClosedError,
  socketClosedError,
  UringZcAbortError,
  UringZcArgumentError,
  UringZcStateError,
  UringZcSystemError,
  UringZcUnsupportedError,
} from './errors.js';
import { ChunkSlab, maxSkbFrags, pagesSpanned } from './frags.js';
import { native } from './native.js';
import { validateBoolean, validateSendBuffer, validateSignal, validateUint } from './options.js';
import { abortedAtOnce, type AcceptCallback, deliver, type SendCallback, sendError, type SendResult } from './outcome.js';
import type { Ring } from './ring.js';
import { capabilities } from './probe.js';
import { giveBackLeases, poolOf, type BufferPool } from './pool.js';
import { Fifo } from './fifo.js';
import { closeFilePipe, type FilePipe, type FileRequest, openFilePipe, openFileSend, parseFileSend, type SendFileOptions } from './file.js';
import { abortedError, accept, batchable, cutError, MAX_BATCH, SendPart, SendRequest, StreamBatch } from './stream-send.js';
import type { BackendName, SyscallRing } from './syscall.js';
import { ZeroCopyWriteStream, type WriteStreamOptions } from './writable.js';
import { AF_INET6, IORING_SEND_VECTORIZED, SOCK_STREAM } from './uapi.js';

/** What adopt() accepts: a connected net.Socket, a bound dgram.Socket, or a socket fd. */
export type Adoptable = net.Socket | dgram.Socket | number;

/** Options of adopt(). */
export interface AdoptOptions {
  /**
   * Sends shorter than this many bytes use a copying IORING_OP_SEND (resolved at its only CQE,
   * `zeroCopy: false`); the rest use IORING_OP_SEND_ZC. Pool buffers are always sent zero copy.
   * 0: every send is zero copy; Infinity: every send copies. Default: DEFAULT_ZERO_COPY_THRESHOLD.
   */
  zeroCopyThreshold?: number;
  /**
   * Switch to copying sends when the kernel keeps reporting that it copied anyway (loopback and
   * other local delivery), and back when a periodic zero-copy probe send is not copied. Default true.
   */
  autoDowngrade?: boolean;
  /**
   * A dgram.Socket only. `false`: Node stops reading the socket (no 'message' events; datagrams
   * wait in the kernel) while it is adopted, and reads again once the ZeroCopySocket has closed.
   * Why: a socket Node reads is watched by its event loop, and the kernel wakes that watcher each
   * time a sent datagram is freed; a send-only socket spares the wake-up, about 7 % more sends per
   * second at 16-60 KiB into the sink. Default true.
   */
  receive?: boolean;
  /**
   * What sends for this socket: 'io_uring' (SEND_ZC through this thread's default ring),
   * 'msg_zerocopy' (sendmsg with MSG_ZEROCOPY, completions from the socket's error queue),
   * 'copy' (plain non-blocking sendmsg), or 'auto' (default): the best that works here (see
   * capabilities().backend). The environment variable URING_ZC_BACKEND sets the default.
   * Forcing 'msg_zerocopy' or 'copy' never calls io_uring_setup.
   */
  backend?: 'auto' | BackendName;
}

/** Options of send() and sendv(). */
export interface SendOptions {
  /** Destination IP literal, for unconnected UDP sockets (sendto semantics). */
  address?: string;
  /** Destination port, with `address`. */
  port?: number;
  /** Force zero copy (true) or a copying send (false) for this send, whatever the threshold. */
  zeroCopy?: boolean;
  /**
   * UDP only: send the buffer as datagrams of this many bytes (the last may be shorter) in one
   * request, through UDP GSO (a UDP_SEGMENT control message on IORING_OP_SENDMSG_ZC).
   */
  segmentSize?: number;
  /**
   * Aborts the send. Not yet in the kernel: it rejects at once with an AbortError (code
   * ABORT_ERR, `cause` the signal's reason) and the rest of a stream goes on intact. In the
   * kernel: the request is cancelled (io_uring: IORING_OP_ASYNC_CANCEL; the other backends cannot
   * call back a sendmsg that returned), and the promise settles once the kernel has released the
   * buffer. A send the kernel had taken whole before the abort resolves as usual. On a TCP socket
   * a send cut after some of its bytes went ends the stream there: the AbortError says how many
   * (`bytes`), and later sends on the socket reject with ECANCELED.
   */
  signal?: AbortSignal;
}

// How a send ends, and its Node-style callback: in src/outcome.ts, beneath the request modules.
export type { SendCallback, SendResult } from './outcome.js';

/** Counters of one socket since adoption. */
export interface SocketStats {
  /** Sends that completed successfully. */
  sends: number;
  /** Bytes of those sends. */
  bytes: number;
  /** Completed sends the kernel did not copy. */
  zeroCopied: number;
  /** Completed sends that were copied (by a copying send, or by the kernel despite zero copy). */
  copied: number;
  /** Completed sends that used a registered (pool) buffer. */
  fixed: number;
  /** Sends that failed. */
  errors: number;
  /** Sends accepted by send() and not yet settled. */
  inFlight: number;
  /** Notification CQEs seen (IORING_CQE_F_NOTIF). */
  notifications: number;
  /** True while the socket sends by copying because the kernel kept copying zero-copy sends. */
  downgraded: boolean;
  /** How many times the socket switched to copying sends that way. */
  downgrades: number;
  /**
   * Zero-copy requests the kernel refused to pin (ENOMEM: RLIMIT_MEMLOCK, which counts every
   * page a zero-copy send pins in a process without CAP_IPC_LOCK) that were sent by copying
   * instead. After each, the next 1024 threshold-chosen sends copy before zero copy is tried again.
   */
  pinFallbacks: number;
}

/**
 * Default copy threshold in bytes: below it a send copies. Chosen from the benchmark's threshold
 * sweep on Linux 6.18 (README, "Copy threshold"): unregistered SEND_ZC pays per-request page
 * pinning and loses to a copying send below about this size.
 */
export const DEFAULT_ZERO_COPY_THRESHOLD = 16384;

const SEND_OPTION_NAMES = ['address', 'port', 'zeroCopy', 'segmentSize', 'signal'] as const;
/** Largest datagram payload (IPv6 jumbograms aside). */
const MAX_DATAGRAM = 65535;
/** The kernel's limit on iovecs per message (UIO_MAXIOV). */
export const IOV_MAX = 1024;
/** Consecutive copied zero-copy sends after which a socket switches to copying sends. */
const DOWNGRADE_AFTER = 64;
/** While downgraded, one send in this many still goes zero copy, to notice when copies stop. */
const REPROBE_EVERY = 1024;
/** After a zero-copy send was refused for pinning (ENOMEM), this many threshold-chosen sends copy. */
const PIN_PAUSE = 1024;
/** Kernel requests in a row that move no byte of a stream send (0 or EAGAIN) before it fails. */
const MAX_NO_PROGRESS = 64;

/**
 * A socket adopted for zero-copy sends. Create with adopt() or ring.adopt().
 *
 * TCP: sends go out in call order, intact. One request per stream socket is in the kernel at a
 * time (several SEND_ZC in flight on one TCP socket reorder data under send-buffer pressure); the
 * next one is submitted at the previous one's first CQE, not at its notification, which on TCP
 * waits for the peer's ACK. UDP: every send goes to the kernel at once, each datagram on its own.
 */
export class ZeroCopySocket {
  /** The socket's own descriptor (a duplicate of the adopted one). */
  readonly fd: number;
  /** 'tcp' for stream sockets, 'udp' for datagram sockets. */
  readonly type: 'tcp' | 'udp';
  /** @internal */ readonly stream: boolean;
  readonly domain: number;
  /** @internal Length of a destination sockaddr of this socket's family (sockaddr_in/_in6). */
  readonly sockaddrLen: number;
  /** @internal What sends for it: the io_uring Ring, or the syscall backend of its kind. */
  readonly ring: Ring | SyscallRing;
  /** Which backend sends for this socket ('io_uring', 'msg_zerocopy' or 'copy'). */
  readonly backend: BackendName;
  private readonly threshold: number;
  private readonly autoDowngrade: boolean;
  /**
   * @internal IORING_SEND_ZC_REPORT_USAGE where the kernel has it (6.2+); 0 on 6.0/6.1, where a
   * notification cannot say whether the kernel copied and `zeroCopy` is reported true.
   */
  readonly usageFlag: number;
  /** @internal IORING_SEND_VECTORIZED where the kernel has it (6.17+) and this is UDP, else 0. */
  readonly vectorFlag: number;
  private readonly node: EventEmitter | undefined;
  /** The dgram handle adopt({ receive: false }) stopped reading, to restart at close. */
  private paused: UdpHandle | null;
  private readonly onNodeClose: (() => void) | undefined;
  // Stream sockets: sends waiting for the one in the kernel.
  private readonly queue = new Fifo<SendRequest>();
  private active: SendRequest | StreamBatch | null = null;
  private failure: UringZcSystemError | null = null;
  /** Sends accepted by send()/sendv() and not settled yet. */
  private pending = 0;
  /** Kernel requests queued on the ring whose result CQE has not come: they need the fd. */
  private undone = 0;
  private fdClosed = false;
  private closing = false;
  /** destroy() was called: nothing more is submitted, a cut send is an end, not a short send. */
  private destroyed = false;
  /** Bytes the kernel has accepted (result CQEs), see bytesWritten. */
  private accepted = 0;
  /** net.Socket#_unrefTimer of the adopted socket: restarts Node's idle timer, or null. */
  private readonly idleTimer: (() => void) | null;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  // A one-entry cache of the last destination: most UDP senders talk to one peer at a time.
  private lastAddress = '';
  private lastPort = -1;
  private lastDest: Buffer | null = null;
  private lastDestAddr = 0;
  // The ArrayBuffer of the last send, validated, its address and its pool; the last options seen.
  private lastAb: ArrayBufferLike | null = null;
  private lastBase = 0;
  // The last Buffer sent, its length and address.
  private lastBuf: Uint8Array | null = null;
  private lastLen = 0;
  private lastAddr = 0;
  private lastPool: BufferPool | undefined = undefined;
  private lastOptions: SendOptions | null = null;
  // sendv()'s two-entry cache of chunks: object, length, address, pool.
  private vecBuf0: Uint8Array | null = null;
  private vecLen0 = 0;
  private vecAddr0 = 0;
  private vecPool0: BufferPool | undefined = undefined;
  private vecBuf1: Uint8Array | null = null;
  private vecLen1 = 0;
  private vecAddr1 = 0;
  private vecPool1: BufferPool | undefined = undefined;
  /** sendv()'s copies of small chunks (see ChunkSlab#copySmallChunks). */
  private readonly chunkSlab = new ChunkSlab();
  /** Settled DatagramSends (not DatagramVectors), their references dropped, for datagram(). */
  private readonly spareOps: DatagramSend[] = [];
  // Auto-downgrade state.
  private copiedRun = 0;
  private downgraded = false;
  private downgradedSends = 0;
  /** Sends the threshold makes zero copy copy for now: after a pinning refusal (ENOMEM). */
  private pinPause = 0;
  /** downgraded || pinPause > 0: one test on the hot path. */
  private zcOff = false;
  /**
   * The signals of this socket's unsettled sends, each with one listener and its sends in call
   * order: one listener per signal, not per send (a signal shared by many sends, say a
   * connection's AbortSignal.timeout(), would otherwise collect a listener each and warn).
   */
  private readonly aborts = new Map<AbortSignal, { listener: () => void; reqs: Set<SendRequest> }>();
  /** sendAccepted()'s hook for the request start() takes next (null otherwise). */
  private acceptHook: AcceptCallback | null = null;
  /** sendFile()'s pipe on io_uring (src/file.ts), made at the first, closed with the descriptor. */
  private pipe: FilePipe | null = null;
  private readonly counters = { sends: 0, bytes: 0, zeroCopied: 0, copied: 0, fixed: 0, errors: 0, notifications: 0, downgrades: 0, pinFallbacks: 0 };

  /** @internal Use adopt(). */
  constructor(ring: Ring | SyscallRing, fd: number, domain: number, sockType: number, node: EventEmitter | undefined, options: AdoptOptions,
    paused: UdpHandle | null = null) {
    this.backend = ring.backend;
    this.paused = paused;
    this.ring = ring;
    this.fd = fd;
    this.domain = domain;
    this.sockaddrLen = domain === AF_INET6 ? 28 : 16;
    this.stream = sockType === SOCK_STREAM;
    this.type = this.stream ? 'tcp' : 'udp';
    this.threshold = options.zeroCopyThreshold ?? DEFAULT_ZERO_COPY_THRESHOLD;
    // The copy backend sends no zero-copy request the kernel could copy: nothing to downgrade from.
    this.autoDowngrade = (options.autoDowngrade ?? true) && this.backend !== 'copy';
    // (Asked of the Ring: a syscall backend must never probe io_uring.)
    this.usageFlag = ring.usageFlag;
    this.vectorFlag = !this.stream && ring.vectorized ? IORING_SEND_VECTORIZED : 0;
    this.node = node;
    const unref = (node as { _unrefTimer?: unknown } | undefined)?._unrefTimer;
    // Node's idle timer (socket.setTimeout) sees only Node's own writes: the library's stream
    // sends restart it as they make progress, so an active transfer never looks idle.
    this.idleTimer = this.stream && typeof unref === 'function' ? (unref as () => void).bind(node) : null;
    if (node) {
      // Node closed its socket: accept no more sends, cancel ours, close our duplicate.
      this.onNodeClose = () => void this.destroy();
      node.once('close', this.onNodeClose);
    }
    ring.track(this);
  }

  /** True once close() has finished (every send settled, descriptor closed). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Bytes of this socket's sends that the kernel has accepted so far (its result CQEs), like
   * net.Socket#bytesWritten (which does not count the library's sends).
   */
  get bytesWritten(): number {
    return this.accepted;
  }

  /**
   * Sends `buf`: IORING_OP_SEND_ZC with IORING_SEND_ZC_REPORT_USAGE at or above the copy
   * threshold (with IORING_RECVSEND_FIXED_BUF for a pool buffer), IORING_OP_SEND below it,
   * IORING_OP_SENDMSG_ZC with a UDP_SEGMENT control message for `segmentSize`.
   * Resolves when the kernel no longer needs `buf`: at the notification CQE of a zero-copy send,
   * with `bytes` from the result CQE and `zeroCopy` from the notification.
   *
   * Lifetime: do not write into `buf` before the send settles; a pool buffer returns to its pool
   * at that moment by itself.
   *
   * Rejects (only after the kernel released `buf`) with the errno as `code` (EPIPE, ECONNRESET,
   * EOPNOTSUPP, ENOMEM, EMSGSIZE, ...), ERR_URING_ZC_SOCKET_CLOSED or ERR_URING_ZC_RING_CLOSED.
   * Throws synchronously for bad arguments (ERR_URING_ZC_INVALID_ARG) and for a pool buffer that
   * is not acquired (ERR_URING_ZC_INVALID_STATE); nothing is queued then.
   * Since Linux 6.0 (REPORT_USAGE 6.2, SENDMSG_ZC 6.1).
   */
  send(buf: Uint8Array, options?: SendOptions): Promise<SendResult>;
  /**
   * The same, Node-style: `callback(err, bytes, zeroCopy)` is called when the kernel no longer
   * needs `buf`, with nothing allocated for the outcome (the fastest form; dgram.send users know it).
   */
  send(buf: Uint8Array, options: SendOptions | undefined, callback: SendCallback): void;
  send(buf: Uint8Array, options?: SendOptions, callback?: SendCallback): Promise<SendResult> | void {
    // Typed array getters are calls here (`.buffer` even into C++, ~30 ns; byteLength and
    // byteOffset ~4x `.length`): the common re-send of the same Buffer reads only `.length`, which
    // is byteLength for a Uint8Array (trusted only once `buf` is known to be one). A view's memory
    // cannot move, and a detached one shows length 0, so a non-zero length equal to last time
    // means the same, still valid, memory.
    const len = buf?.length;
    let addr: number;
    let base: number;
    let pool: BufferPool | undefined;
    if (buf === this.lastBuf && len === this.lastLen && len !== 0) {
      addr = this.lastAddr;
      base = this.lastBase;
      pool = this.lastPool;
    } else {
      // The ArrayBuffer of the previous send was validated (not shared, not resizable: both
      // fixed for life) and its address is known.
      const ab = buf?.buffer;
      base = this.lastBase;
      pool = this.lastPool;
      if (ab !== this.lastAb || len === 0 || !(buf instanceof Uint8Array)) {
        validateSendBuffer('buf', buf);
        base = baseAddress(ab);
        pool = poolOf(ab);
        this.lastAb = ab;
        this.lastBase = base;
        this.lastPool = pool;
      }
      addr = base + buf.byteOffset;
      // A zero-length view reads no memory, and at the boundary of two pool buffers it does not
      // say which one it belongs to: it takes no pool buffer over (the caller keeps what it holds).
      if (len === 0) pool = undefined;
      this.lastBuf = buf;
      this.lastLen = len;
      this.lastAddr = addr;
    }
    if (callback !== undefined && typeof callback !== 'function') {
      throw new UringZcArgumentError('"callback" must be a function');
    }
    let zc = len >= this.threshold;
    let auto = true;
    let dest: Buffer | null = null;
    let destAddr = 0;
    let segmentSize = 0;
    let signal: AbortSignal | null = null;
    if (options !== undefined) {
      // Option names are checked once per options object (senders reuse one); values every time.
      if (options !== this.lastOptions) {
        validateSendOptions(options);
        this.lastOptions = options;
      }
      if (options.zeroCopy !== undefined) {
        validateBoolean('zeroCopy', options.zeroCopy);
        zc = options.zeroCopy;
        auto = false;
      }
      if (options.address !== undefined || options.port !== undefined) {
        dest = this.destination(options);
        destAddr = this.lastDestAddr;
      }
      if (options.segmentSize !== undefined) segmentSize = this.validateSegmentSize(options.segmentSize, len);
      if (options.signal !== undefined) {
        validateSignal(options.signal);
        signal = options.signal;
      }
    }
    if (!this.stream && len > MAX_DATAGRAM && segmentSize === 0) {
      throw new UringZcArgumentError(`"buf" is ${len} bytes; a UDP datagram carries at most ${MAX_DATAGRAM} (or use segmentSize)`);
    }
    if (signal !== null && signal.aborted) return abortedAtOnce(signal, callback);
    // A send with a signal takes the general path (SendRequest), which knows how to cancel.
    if (!this.stream && segmentSize === 0 && signal === null) {
      let op: DatagramSend;
      if (pool !== undefined) {
        // Pool buffers always go zero copy: their pages are pinned already, zero copy costs no more.
        const slot = pool.slotAt(addr - base, len);
        pool.lend(slot);
        op = this.datagram(buf, addr, len, true, false, dest, destAddr);
        op.pool = pool;
        op.slot = slot;
        if (pool.ring === this.ring) op.fixedIndex = pool.index;
      } else {
        if (auto && zc && this.zcOff) zc = this.zcAgain();
        op = this.datagram(buf, addr, len, zc, auto, dest, destAddr);
      }
      return this.startDatagram(op, callback);
    }
    if (pool !== undefined) {
      // Pool buffers always go zero copy: their pages are pinned already, so zero copy costs no more.
      const slot = pool.slotAt(addr - base, len);
      pool.lend(slot);
      const req = new SendRequest(this, buf, addr, len, true, false, dest, destAddr);
      req.pool = pool;
      req.slot = slot;
      if (pool.ring === this.ring) req.fixedIndex = pool.index;
      req.segmentSize = segmentSize;
      req.vectored = segmentSize > 0;
      req.signal = signal;
      return this.start(req, callback);
    }
    if (auto && zc && this.zcOff) zc = this.zcAgain();
    const req = new SendRequest(this, buf, addr, len, zc, auto, dest, destAddr);
    if (segmentSize > 0) {
      req.segmentSize = segmentSize;
      req.vectored = true;
    }
    req.signal = signal;
    return this.start(req, callback);
  }

  /**
   * Sends several buffers as one message (IORING_OP_SENDMSG_ZC with an iovec per chunk; a
   * copying IORING_OP_SENDMSG when the total is below the copy threshold): one datagram on UDP,
   * consecutive bytes on TCP. Pool buffers among the chunks are lent as in send(); when every
   * chunk is in one pool of this ring and the kernel supports it (6.15+), the request uses the
   * registered buffer. Lifetime and errors as send(); `chunks` must hold 1..IOV_MAX (1024) buffers.
   */
  sendv(chunks: readonly Uint8Array[], options?: SendOptions): Promise<SendResult>;
  sendv(chunks: readonly Uint8Array[], options: SendOptions | undefined, callback: SendCallback): void;
  sendv(chunks: readonly Uint8Array[], options?: SendOptions, callback?: SendCallback): Promise<SendResult> | void {
    if (!Array.isArray(chunks)) throw new UringZcArgumentError('"chunks" must be an array of Buffers');
    if (chunks.length === 0 || chunks.length > IOV_MAX) {
      throw new UringZcArgumentError(`"chunks" must hold 1 to ${IOV_MAX} buffers, got ${chunks.length}`);
    }
    if (callback !== undefined && typeof callback !== 'function') {
      throw new UringZcArgumentError('"callback" must be a function');
    }
    const n = chunks.length;
    const list = new Array<Uint8Array>(n);
    // [addr, len] per chunk: the msghdr is written from numbers, without typed-array getters.
    const iov = new Array<number>(2 * n);
    // Pool chunks and their buffer indexes, allocated only when there are any.
    let pools: BufferPool[] | null = null;
    let slots: number[] | null = null;
    let len = 0;
    for (let i = 0; i < n; i++) {
      const c = chunks[i]!;
      const clen = c?.length; // byteLength of a Uint8Array, cheaper to read (see send())
      let addr: number;
      let pool: BufferPool | undefined;
      // A two-entry cache by chunk object (a header re-sent with changing bodies): as in send(),
      // the same view with the same non-zero length is the same, still valid, memory.
      if (c === this.vecBuf0 && clen === this.vecLen0 && clen !== 0) {
        addr = this.vecAddr0;
        pool = this.vecPool0;
      } else if (c === this.vecBuf1 && clen === this.vecLen1 && clen !== 0) {
        addr = this.vecAddr1;
        pool = this.vecPool1;
      } else {
        validateSendBuffer('chunks', c, i);
        const ab = c.buffer;
        addr = baseAddress(ab) + c.byteOffset;
        pool = poolOf(ab);
        this.vecBuf1 = this.vecBuf0;
        this.vecLen1 = this.vecLen0;
        this.vecAddr1 = this.vecAddr0;
        this.vecPool1 = this.vecPool0;
        this.vecBuf0 = c;
        this.vecLen0 = clen;
        this.vecAddr0 = addr;
        this.vecPool0 = pool;
      }
      if (pool !== undefined && clen !== 0) {
        const slot = pool.slotOf(c);
        pool.checkLendable(slot);
        (pools ??= []).push(pool);
        (slots ??= []).push(slot);
      }
      list[i] = c;
      iov[2 * i] = addr;
      iov[2 * i + 1] = clen;
      len += clen;
    }
    let zc = len >= this.threshold;
    let auto = true;
    let dest: Buffer | null = null;
    let segmentSize = 0;
    let signal: AbortSignal | null = null;
    if (options !== undefined) {
      if (options !== this.lastOptions) {
        validateSendOptions(options);
        this.lastOptions = options;
      }
      if (options.zeroCopy !== undefined) {
        validateBoolean('zeroCopy', options.zeroCopy);
        zc = options.zeroCopy;
        auto = false;
      }
      if (options.address !== undefined || options.port !== undefined) dest = this.destination(options);
      if (options.segmentSize !== undefined) segmentSize = this.validateSegmentSize(options.segmentSize, len);
      if (options.signal !== undefined) {
        validateSignal(options.signal);
        signal = options.signal;
      }
    }
    if (!this.stream && len > MAX_DATAGRAM && segmentSize === 0) {
      throw new UringZcArgumentError(`the chunks add up to ${len} bytes; a UDP datagram carries at most ${MAX_DATAGRAM} (or use segmentSize)`);
    }
    // Before any pool buffer is lent: an aborted send takes nothing over.
    if (signal !== null && signal.aborted) return abortedAtOnce(signal, callback);
    if (pools !== null) {
      zc = true;
      auto = false;
    } else if (auto && zc && this.zcOff) {
      zc = this.zcAgain();
    }
    // The copy of small chunks, held by the request to its notification (see copySmallChunks).
    let slab: Buffer | null = null;
    if (zc && !this.stream && pagesSpanned(iov) > maxSkbFrags()) {
      // A zero-copy datagram references user pages as skb fragments, at most
      // net.core.max_skb_frags of them (17 by default): more is EMSGSIZE. Copy its small chunks
      // (headers) so that it fits, or else copy the whole datagram.
      if (segmentSize === 0 && pools === null) slab = this.chunkSlab.copySmallChunks(list, iov);
      if (slab === null || pagesSpanned(iov) > maxSkbFrags()) {
        zc = false;
        auto = false;
      }
    }
    const destAddr = dest === null ? 0 : this.lastDestAddr;
    let leases: (BufferPool | number)[] | null = null;
    let fixedIndex = -1;
    if (pools !== null) {
      leases = [];
      for (let i = 0; i < pools.length; i++) {
        pools[i]!.lend(slots![i]!);
        leases.push(pools[i]!, slots![i]!);
      }
      const p0 = pools[0]!;
      if (zc && pools.length === list.length && pools.every((p) => p === p0) && p0.ring === this.ring && capabilities().sendmsgZcFixed) {
        fixedIndex = p0.index;
      }
    }
    if (!this.stream && segmentSize === 0 && signal === null) {
      // One datagram: the lean path of send()'s datagrams (a send with a signal takes the general one).
      const op = new DatagramVector(this, list, iov, len, zc, auto, dest, destAddr);
      op.slab = slab;
      if (leases !== null) {
        op.leases = leases;
        op.pool = pools![0]!;
        op.fixedIndex = fixedIndex;
      }
      return this.startDatagram(op, callback);
    }
    const req = new SendRequest(this, null, 0, len, zc, auto, dest, destAddr);
    req.chunks = list;
    req.iov = iov;
    req.segmentSize = segmentSize;
    req.leases = leases;
    req.fixedIndex = fixedIndex;
    req.vectored = true;
    req.signal = signal;
    req.hold = slab;
    return this.start(req, callback);
  }

  /**
   * Sends `length` bytes of a file from `offset` on (default: to its end), in order with the
   * socket's other sends, without passing them through JS memory: io_uring IORING_OP_SPLICE file
   * -> pipe -> socket (a pipe per socket), or sendfile(2) on the libuv threadpool for the
   * msg_zerocopy and copy backends. Stream (TCP) sockets only. `file` is a path (opened now,
   * closed when the send settles) or a descriptor of a regular file (never closed here; its file
   * position is not used or moved).
   *
   * Resolves `{ bytes, zeroCopy: true }` once the kernel has taken every byte (the kernel sends
   * page-cache pages: no notification to wait for, no memory of the caller is lent). A file
   * changed or truncated while it is sent goes out changed or short: a short file rejects with
   * ERR_URING_ZC_FILE_TRUNCATED, and `err.bytes` says how many bytes went.
   *
   * Throws synchronously (nothing queued) for bad arguments (ERR_URING_ZC_INVALID_ARG: a UDP
   * socket, bad options, not a regular file) and when the file cannot be opened (`ENOENT`,
   * `EACCES`: the errno as code). Rejects as send() does (EPIPE, ECONNRESET, ECANCELED at
   * destroy(), ERR_URING_ZC_SOCKET_CLOSED) and with an AbortError (code ABORT_ERR) when
   * `signal` aborts. Since Linux 5.7 (IORING_OP_SPLICE); any Linux for sendfile(2).
   */
  sendFile(file: string | number, options?: SendFileOptions): Promise<SendResult>;
  sendFile(file: string | number, options: SendFileOptions | undefined, callback: SendCallback): void;
  sendFile(file: string | number, options?: SendFileOptions, callback?: SendCallback): Promise<SendResult> | void {
    if (callback !== undefined && typeof callback !== 'function') {
      throw new UringZcArgumentError('"callback" must be a function');
    }
    const args = parseFileSend(this, file, options);
    // Aborted before the call: nothing is opened or queued, the stream is untouched.
    if (args.signal?.aborted === true) return abortedAtOnce(args.signal, callback);
    const fs = openFileSend(this, args);
    const req = new SendRequest(this, null, 0, fs.length, false, false, null, 0);
    req.file = fs;
    fs.req = req;
    // The signal as for send(): abortSend() takes it out of the queue, or has the FileSend cancel.
    req.signal = args.signal ?? null;
    return this.start(req, callback);
  }

  /** @internal Bytes of a sendFile the kernel took. */
  fileProgress(req: FileRequest, bytes: number): void {
    req.sent += bytes;
    this.accepted += bytes;
    this.idleTimer?.();
  }

  /** @internal A sendFile's kernel requests in flight went up or down by one (they need the fd). */
  fileOps(delta: number): void {
    this.undone += delta;
  }

  /**
   * @internal A sendFile ended (nothing of it in the kernel): as a send's last result. Short
   * (aborted, truncated) after some bytes, it cuts the stream (nextInStream).
   */
  fileEnd(of: FileRequest, err: Error | null): void {
    this.finish(of as SendRequest, err);
    if (this.closing) this.maybeFinishClose();
  }

  /** @internal destroy() was called. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** @internal sendFile()'s pipe (made on first use), or -errno. */
  filePipe(): FilePipe | number {
    if (this.pipe !== null) return this.pipe;
    const p = openFilePipe();
    if (typeof p !== 'number') this.pipe = p;
    return p;
  }

  /** @internal The pipe holds bytes no send will take (an aborted or failed sendFile): a new one next time. */
  dropFilePipe(): void {
    if (this.pipe !== null) closeFilePipe(this.pipe);
    this.pipe = null;
  }

  /**
   * @internal The stream's send (src/writable.ts): send(), or sendv() for an array, of a stream
   * socket, with `callback` at the release as always and `onAccept` once before it, when the
   * kernel accepted every byte (the result CQE; sendmsg returned) or the send ended without (its
   * error). Every backend, send and sendv alike: both events come from the requests' shared path
   * (finish, maybeSettle). `onAccept` may run while the socket is mid-way through a completion
   * (between the sends of one batch): it must not send synchronously. Throws as send()/sendv() do.
   */
  sendAccepted(data: Uint8Array | readonly Uint8Array[], onAccept: AcceptCallback, callback: SendCallback): void {
    if (!this.stream) throw new UringZcUnsupportedError('sendAccepted()', 'a stream socket only');
    this.acceptHook = onAccept;
    try {
      if (Array.isArray(data)) this.sendv(data as readonly Uint8Array[], undefined, callback);
      else this.send(data as Uint8Array, undefined, callback);
    } finally {
      this.acceptHook = null;
    }
  }

  /**
   * A stream.Writable over this socket (TCP only) whose write callbacks fire when the kernel
   * accepted the bytes and whose backpressure counts the bytes not yet released: see
   * ZeroCopyWriteStream (src/writable.ts) and docs/api.md.
   * @throws ERR_URING_ZC_UNSUPPORTED on a UDP socket, ERR_URING_ZC_INVALID_ARG for bad options.
   */
  createWriteStream(options?: WriteStreamOptions): ZeroCopyWriteStream {
    return new ZeroCopyWriteStream(this, options);
  }

  /** Counters since adoption. */
  stats(): SocketStats {
    return { ...this.counters, inFlight: this.pending, downgraded: this.downgraded };
  }

  /** The error of a send that closing stopped: the ring's, when it is the ring that closes. */
  private closedError(): Error {
    return this.ring.closing ? ringClosedError() : socketClosedError();
  }

  /** While zcOff: whether this threshold-chosen zero-copy send still goes zero copy. */
  private zcAgain(): boolean {
    if (this.pinPause > 0) {
      if (--this.pinPause === 0) this.zcOff = this.downgraded;
      return false;
    }
    return ++this.downgradedSends % REPROBE_EVERY === 0;
  }

  /**
   * A zero-copy request was refused for pinning (ENOMEM: RLIMIT_MEMLOCK counts every page a
   * SEND_ZC pins, for a process without CAP_IPC_LOCK); it is resent by copying, and the next
   * PIN_PAUSE threshold-chosen sends copy too, as Folly and gRPC do, before zero copy is tried again.
   */
  private pinRefused(): void {
    this.counters.pinFallbacks++;
    this.pinPause = PIN_PAUSE;
    this.zcOff = true;
  }

  /**
   * Stops accepting sends (they reject with ERR_URING_ZC_SOCKET_CLOSED), lets the accepted ones
   * finish, and closes the descriptor once every Buffer has been released. Called automatically
   * when the adopted Node socket emits 'close'.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      this.resolveClose = resolve;
    });
    if (this.node && this.onNodeClose) this.node.removeListener('close', this.onNodeClose);
    this.lastAb = null; // do not keep the caller's memory alive through a closed socket
    this.lastBuf = null;
    this.vecBuf0 = null;
    this.vecBuf1 = null;
    this.chunkSlab.drop();
    this.lastPool = undefined;
    this.maybeFinishClose();
    return this.closePromise;
  }

  /**
   * Closes at once: sends not yet in the kernel reject (ERR_URING_ZC_SOCKET_CLOSED), sends in the
   * kernel are cancelled (IORING_OP_ASYNC_CANCEL on this fd: they reject ECANCELED unless already
   * done), and the descriptor is closed as soon as no request uses it. Resolves, like close(),
   * once every Buffer has been released: for data the kernel had already queued on a TCP socket
   * that is when it is acknowledged, or dropped when the connection is reset or closed.
   * Called automatically when the adopted Node socket emits 'close'.
   */
  destroy(): Promise<void> {
    const p = this.close();
    if (this.destroyed) return p;
    this.destroyed = true;
    const err = (): Error => this.closedError();
    this.failQueued(err);
    // Requests waiting in the ring for a slot never reach the kernel: they settle now.
    this.ring.dropQueued(this, err);
    if (this.undone > 0 && !this.fdClosed) this.ring.cancelFd(this.fd);
    this.maybeFinishClose();
    return p;
  }

  private destination(options: SendOptions): Buffer {
    if (this.stream) throw new UringZcArgumentError('"address"/"port" are for UDP sockets; a TCP socket sends to its peer');
    if (typeof options.address !== 'string') throw new UringZcArgumentError('"address" must be a string with "port"');
    if (options.address !== this.lastAddress || options.port !== this.lastPort) {
      validateUint('port', options.port, 1, 65535);
      this.lastDest = encodeSockaddr(options.address, options.port, this.domain);
      this.lastDestAddr = addressOf(this.lastDest);
      this.lastAddress = options.address;
      this.lastPort = options.port;
    }
    return this.lastDest!;
  }

  private validateSegmentSize(value: unknown, len: number): number {
    if (this.stream) throw new UringZcArgumentError('"segmentSize" (UDP GSO) is for UDP sockets only');
    validateUint('segmentSize', value, 1, MAX_DATAGRAM);
    if (len > MAX_DATAGRAM) {
      throw new UringZcArgumentError(`a GSO send carries at most ${MAX_DATAGRAM} bytes in all, got ${len}`);
    }
    return value;
  }

  /** Queues a datagram; it settles through `callback`, or the promise returned. */
  private startDatagram(op: DatagramSend, callback: SendCallback | undefined): Promise<SendResult> | void {
    if (callback !== undefined) {
      op.callback = callback;
      this.queueDatagram(op);
      return;
    }
    const promise = new Promise<SendResult>((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
    });
    this.queueDatagram(op);
    return promise;
  }

  private queueDatagram(op: DatagramSend): void {
    this.pending++;
    if (this.closing) {
      op.err = this.closedError();
      op.state = GOT_RESULT;
      // Settle asynchronously, as every other outcome: a callback never runs inside send().
      process.nextTick(() => this.settleDatagram(op));
      return;
    }
    this.undone++;
    this.ring.queue(op);
  }

  /** @internal A datagram's result CQE came (or it never reached the kernel): no more fd use. */
  onDatagramResult(res: number): void {
    this.undone--;
    if (res > 0) this.accepted += res;
    if (this.closing) this.maybeFinishClose();
  }

  /** @internal Every CQE of `op` has come: the kernel is done with its Buffer. */
  settleDatagram(op: DatagramSend): void {
    if (op.res === -12 /* ENOMEM */ && op.zc && op.pool === null && op.err === null && !this.closing) {
      // Pinning refused (RLIMIT_MEMLOCK): the same datagram again, copied. Its zero-copy
      // attempt has had every CQE, so the request can go to the ring again as it is.
      this.pinRefused();
      op.zc = false;
      op.auto = false;
      op.res = 0;
      op.state = 0;
      this.undone++;
      this.ring.queue(op);
      return;
    }
    const c = this.counters;
    const s = op.state;
    if ((s & GOT_NOTIF) !== 0) c.notifications++;
    if (op.pool !== null) op.giveBack();
    let err = op.err;
    if (err === null && op.res < 0) err = sendError(op.res, op.len, op.zc, op.vectored);
    const zeroCopy = (s & (GOT_NOTIF | WAS_COPIED)) === GOT_NOTIF;
    this.countOutcome(err, op.res, zeroCopy, op.fixedIndex >= 0, op.auto && op.zc);
    if (--this.pending === 0) this.forgetLastSend();
    deliver(op, err, op.res, zeroCopy);
    if (op.constructor === DatagramSend && this.spareOps.length < 128) {
      op.release();
      this.spareOps.push(op);
    }
    if (this.closing) this.maybeFinishClose();
  }

  /**
   * Idle (nothing in flight): the caches of the last send's memory let go of it, so that an idle
   * socket does not keep the caller's ArrayBuffer alive (a 4 KiB view of a 128 MiB one, say).
   */
  private forgetLastSend(): void {
    this.lastAb = null;
    this.lastBuf = null;
    this.lastLen = 0;
    this.lastPool = undefined;
    this.vecBuf0 = null;
    this.vecBuf1 = null;
    this.vecLen0 = 0;
    this.vecLen1 = 0;
    this.vecPool0 = undefined;
    this.vecPool1 = undefined;
  }

  /**
   * Counts a settled send in stats() and, for a zero-copy send whose mode the threshold chose
   * (`autoZc`), feeds auto-downgrade with whether the kernel copied.
   */
  private countOutcome(err: Error | null, bytes: number, zeroCopy: boolean, fixed: boolean, autoZc: boolean): void {
    const c = this.counters;
    if (err !== null) {
      c.errors++;
      return;
    }
    c.sends++;
    c.bytes += bytes;
    if (zeroCopy) c.zeroCopied++;
    else c.copied++;
    if (fixed) c.fixed++;
    if (autoZc && this.autoDowngrade) this.noteUsage(zeroCopy);
  }

  /**
   * A DatagramSend, one a settled send left behind where there is one. Reuse spares an allocation
   * and its garbage per send: measured in one process (two builds in alternating windows, both
   * orders) 40-150 ns less user CPU per send and +0.4-1.3 % sends/s for 60 KB datagrams; ±0 for
   * pool sends. A settled request is referenced by nothing else (its slot is freed as it settles).
   */
  private datagram(buf: Uint8Array, addr: number, len: number, zc: boolean, auto: boolean, dest: Buffer | null, destAddr: number): DatagramSend {
    const op = this.spareOps.pop();
    if (op === undefined) return new DatagramSend(this, buf, addr, len, zc, auto, dest, destAddr);
    op.init(buf, addr, len, zc, auto, dest, destAddr);
    return op;
  }

  /** Queues a prepared request (or settles it on the next tick when the socket cannot send). */
  private start(req: SendRequest, callback: SendCallback | undefined): Promise<SendResult> | void {
    let promise: Promise<SendResult> | undefined;
    if (this.acceptHook !== null) {
      req.onAccept = this.acceptHook;
      this.acceptHook = null;
    }
    if (callback !== undefined) {
      req.callback = callback;
    } else {
      promise = new Promise<SendResult>((resolve, reject) => {
        req.resolve = resolve;
        req.reject = reject;
      });
    }
    this.pending++;
    if (this.closing || this.failure !== null) {
      req.err = this.ring.closing || this.closing ? this.closedError() : this.failure!.again();
      req.done = true;
      // Settle asynchronously, as every other outcome: a callback never runs inside send().
      process.nextTick(() => this.maybeSettle(req));
      return promise;
    }
    if (req.signal !== null) this.watchAbort(req);
    if (!this.stream) {
      this.submitPart(req, 0);
    } else if (this.active === null) {
      this.startStream(req);
    } else {
      this.queue.push(req);
    }
    return promise;
  }

  /** Queues a kernel request for the bytes of `req` from `offset` on. */
  private submitPart(req: SendRequest, offset: number): void {
    req.open++;
    this.undone++;
    const part = new SendPart(req, offset);
    req.part = part;
    if (this.stream) this.ring.queueStream(part);
    else this.ring.queue(part);
  }

  private startStream(req: SendRequest): void {
    this.active = req;
    if (req.file !== null) {
      req.file.start();
      return;
    }
    this.submitPart(req, 0);
  }

  /**
   * @internal The result of the kernel request for the bytes of `req` from `offset` on: its CQE's
   * res (bytes or -errno), or the error it never reached the kernel with.
   */
  onPartResult(req: SendRequest, offset: number, res: number | Error): void {
    this.undone--;
    if (typeof res !== 'number') {
      this.finish(req, res);
    } else if (req.aborted) {
      this.onAbortedResult(req, offset, res);
    } else if (res === -12 /* ENOMEM */ && req.zc && req.fixedIndex < 0 && !this.destroyed) {
      // Pinning refused (RLIMIT_MEMLOCK): the same bytes again, copied; the stream stays in order.
      this.pinRefused();
      req.zc = false;
      req.fellBack = true;
      this.submitPart(req, offset);
    } else if (res < 0 && !(res === -11 /* EAGAIN */ && this.stream)) {
      this.finish(req, sendError(res, req.len, req.zc, req.vectored));
    } else {
      const sent = res > 0 ? offset + res : offset;
      req.sent = sent;
      if (res > 0) {
        this.accepted += res;
        this.idleTimer?.();
      }
      if (sent === req.len || !this.stream) {
        this.finish(req, null);
      } else if (this.destroyed) {
        // Cancelled mid-send (destroy, ring close): the kernel reports the bytes done so far.
        // That is where this send ends, not a short send to continue.
        this.finish(req, cutError(req, sent));
      } else if (res <= 0 && ++req.zeroResults > MAX_NO_PROGRESS) {
        this.finish(req, new UringZcSystemError(res < 0 ? res : -32 /* EPIPE */, req.vectored ? 'sendmsg_zc' : 'send_zc'));
      } else {
        // A short stream send, or EAGAIN (the kernel gave up waiting for buffer space on a
        // non-blocking socket, e.g. after a peer's half-close woke it): the rest goes next,
        // before anything else on this socket.
        if (res > 0) req.zeroResults = 0;
        this.submitPart(req, sent);
      }
    }
    if (this.closing) this.maybeFinishClose();
  }

  /**
   * No further kernel request will be made for `req` (it ends with `err`, or succeeds): the
   * stream may move on, and the send settles once its last kernel request has had its last CQE.
   */
  private finish(req: SendRequest, err: Error | null): void {
    if (req.done) return;
    req.done = true;
    if (err !== null && req.err === null) req.err = err;
    if (this.active === req) this.nextInStream(req);
    if (req.onAccept !== null) accept(req);
    this.maybeSettle(req);
  }

  /**
   * @internal The one place that decides a send is settled: no further kernel request will be
   * made for it and each one made has had its last CQE. Runs at most once per send.
   */
  maybeSettle(req: SendRequest): void {
    if (!req.done || req.open !== 0 || req.settled) return;
    req.settled = true;
    // A send that ended before finish() (closed or failed socket): 'accepted' still comes first.
    if (req.onAccept !== null) accept(req);
    this.settle(req);
  }

  /** The stream's request in the kernel is done: start the next, or stop after a failure. */
  private nextInStream(req: SendRequest): void {
    this.active = null;
    // A sendFile of a file that ended early is short like an aborted send.
    const truncated = req.file !== null && req.err instanceof UringZcStateError && req.err.code === 'ERR_URING_ZC_FILE_TRUNCATED';
    if ((req.err instanceof UringZcAbortError || truncated) && !this.destroyed) {
      if (req.sent === 0) {
        // Aborted before any of its bytes went: the stream goes on without it, intact.
        this.startNext();
        return;
      }
      // Cut after some bytes: what follows would land in the middle of this send at the peer.
      this.failure = new UringZcSystemError(-125 /* ECANCELED */, req.file !== null ? (this.ring.backend === 'io_uring' ? 'splice' : 'sendfile') : req.vectored ? 'sendmsg_zc' : 'send_zc',
        `${truncated ? 'a truncated file' : req.file !== null ? 'an aborted sendFile' : 'an aborted send'} cut this stream after ${req.sent} of its ${req.len} bytes; nothing more is sent on this socket`);
      this.failQueued();
      return;
    }
    if (req.err !== null && req.err instanceof UringZcSystemError && !this.destroyed) {
      // The stream is broken at an unknown byte: nothing after it may be sent.
      this.failure = req.err;
      this.failQueued();
      return;
    }
    if (req.err !== null) {
      const e = req.err;
      this.failQueued(() => e);
      return;
    }
    this.startNext();
  }

  /**
   * Starts what waits in the stream queue: a run of plain sends of the same kind goes as one
   * StreamBatch, anything else alone.
   */
  private startNext(): void {
    const q = this.queue;
    if (q.length === 0 || this.destroyed) return;
    const first = q.peek()!;
    let n = 0;
    if (batchable(first)) {
      while (n < MAX_BATCH && n < q.length && batchable(q.at(n)!) && q.at(n)!.zc === first.zc) n++;
    }
    if (n < 2) {
      q.shift();
      this.startStream(first);
      return;
    }
    const taken = new Array<SendRequest>(n);
    for (let i = 0; i < n; i++) taken[i] = q.shift()!;
    this.startBatch(taken);
  }

  private startBatch(reqs: SendRequest[]): void {
    const batch = new StreamBatch(this, reqs);
    for (const r of reqs) r.open++;
    this.active = batch;
    this.undone++;
    this.ring.queueStream(batch);
  }

  /** @internal The result of a StreamBatch (or the error it never reached the kernel with). */
  onBatchResult(batch: StreamBatch, res: number | Error): void {
    this.undone--;
    this.active = null;
    const reqs = batch.reqs;
    if (res === -12 /* ENOMEM */ && batch.zc && !this.destroyed) {
      // Pinning refused: the same sends again, copied.
      this.pinRefused();
      for (const r of reqs) {
        r.zc = false;
        r.fellBack = true;
      }
      this.startBatch(reqs);
    } else if (res === -11 /* EAGAIN */ && !this.destroyed && ++reqs[0]!.zeroResults <= MAX_NO_PROGRESS) {
      this.startBatch(reqs); // nothing was sent (see onPartResult): the same sends again
    } else if (typeof res !== 'number' || res < 0) {
      const e = typeof res === 'number' ? sendError(res, batch.total, batch.zc, true) : res;
      for (const r of reqs) this.finish(r, e instanceof UringZcSystemError ? e.again() : e);
      if (this.destroyed) {
        // The queue was failed by destroy().
      } else if (e instanceof UringZcSystemError) {
        // The stream is broken at an unknown byte: nothing after it may be sent.
        this.failure = e;
        this.failQueued();
      } else {
        this.failQueued(() => e);
      }
    } else {
      if (res > 0) {
        this.accepted += res;
        this.idleTimer?.();
      }
      let left = res;
      let i = 0;
      for (; i < reqs.length && left >= reqs[i]!.len; i++) {
        const r = reqs[i]!;
        r.sent = r.len;
        left -= r.len;
        this.finish(r, null);
      }
      if (i < reqs.length) {
        const p = reqs[i]!;
        p.sent = left;
        if (this.destroyed) {
          // Cancelled mid-batch: reqs[i] is cut at `left`, the ones after it never went out.
          this.finish(p, cutError(p, left));
          for (let j = i + 1; j < reqs.length; j++) this.finish(reqs[j]!, this.closedError());
        } else {
          // Cut short: reqs[i] got `left` bytes, the ones after it none. Its rest goes next, then
          // they do, in order.
          for (let j = reqs.length - 1; j > i; j--) this.queue.unshift(reqs[j]!);
          this.active = p;
          this.submitPart(p, left);
        }
      } else {
        this.startNext();
      }
    }
    if (this.closing) this.maybeFinishClose();
  }

  private watchAbort(req: SendRequest): void {
    const signal = req.signal!;
    let w = this.aborts.get(signal);
    if (w === undefined) {
      const reqs = new Set<SendRequest>();
      // In call order; a copy, as each one may settle (and leave the set) on the way.
      const listener = (): void => {
        for (const r of [...reqs]) this.abortSend(r);
      };
      w = { listener, reqs };
      this.aborts.set(signal, w);
      signal.addEventListener('abort', listener, { once: true });
    }
    w.reqs.add(req);
  }

  private unwatchAbort(req: SendRequest): void {
    const signal = req.signal!;
    const w = this.aborts.get(signal);
    if (w === undefined || !w.reqs.delete(req) || w.reqs.size > 0) return;
    this.aborts.delete(signal);
    signal.removeEventListener('abort', w.listener);
  }

  /**
   * The signal of `req` aborted. Waiting in the stream queue, it ends now (nothing of it was
   * sent; the stream goes on). Otherwise its kernel request is cancelled, and the result says what
   * happened (onAbortedResult). A send with no further kernel request to make is left to end as it
   * ends: the kernel has all of its bytes.
   */
  private abortSend(req: SendRequest): void {
    if (req.done || req.settled) return;
    req.aborted = true;
    if (this.stream && this.active !== req) {
      this.queue.removeIf((r) => r === req);
      this.finish(req, abortedError(req, 0));
      if (this.closing) this.maybeFinishClose();
      return;
    }
    if (req.file !== null) req.file.abort(req.signal!.reason); // its requests are cancelled; it ends when they are back
    else if (req.part !== null) this.ring.cancelOp(req.part);
  }

  /** The result of an aborted send's kernel request (-ECANCELED, the bytes it moved, or its own result). */
  private onAbortedResult(req: SendRequest, offset: number, res: number): void {
    const sent = res > 0 ? offset + res : offset;
    req.sent = sent;
    if (res > 0) {
      this.accepted += res;
      this.idleTimer?.();
    }
    if (sent === req.len) this.finish(req, null); // the kernel had it all before the cancel
    else if (res < 0 && res !== -125 /* ECANCELED */ && res !== -11 /* EAGAIN */) this.finish(req, sendError(res, req.len, req.zc, req.vectored));
    else this.finish(req, abortedError(req, this.stream ? sent : 0));
  }

  /** Ends the sends that never reached the kernel (after a stream error, destroy or ring close). */
  private failQueued(err?: () => Error): void {
    for (const r of this.queue.drain()) this.finish(r, err !== undefined ? err() : this.failure!.again());
  }

  /** Every CQE of `req` has come: the kernel is done with its Buffers (see maybeSettle). */
  private settle(req: SendRequest): void {
    if (req.signal !== null) this.unwatchAbort(req);
    req.part = null;
    this.counters.notifications += req.notifs;
    if (req.pool !== null) req.pool.giveBack(req.slot);
    if (req.leases !== null) giveBackLeases(req.leases);
    req.file?.release();
    const err = req.err;
    // A file's pages go from the page cache to the socket: never copied through user memory.
    const zeroCopy = req.file !== null || (req.notifs > 0 && req.copiedNotifs === 0 && !req.fellBack);
    this.countOutcome(err, req.sent, zeroCopy, req.fixedIndex >= 0, req.auto && req.zc);
    if (--this.pending === 0) this.forgetLastSend();
    deliver(req, err, req.sent, zeroCopy);
    this.maybeFinishClose();
  }

  /** Auto-downgrade: the kernel copied (or not) a zero-copy send chosen by the threshold. */
  private noteUsage(zeroCopy: boolean): void {
    if (zeroCopy) {
      this.copiedRun = 0;
      this.downgraded = false;
      this.zcOff = this.pinPause > 0;
    } else if (++this.copiedRun >= DOWNGRADE_AFTER && !this.downgraded) {
      this.downgraded = true;
      this.zcOff = true;
      this.downgradedSends = 0;
      this.counters.downgrades++;
    }
  }

  private maybeFinishClose(): void {
    if (!this.closing || this.closedFlag) return;
    // The descriptor goes as soon as no request will use it: in-flight notifications need the
    // Buffers (held in their requests), not the fd, and a socket whose last descriptor closes can
    // finally drop (or flush) the data the kernel still holds.
    if (!this.fdClosed && this.undone === 0 && this.active === null && this.queue.length === 0) {
      this.fdClosed = true;
      this.dropFilePipe();
      if (this.ring.backend === 'io_uring') native.close(this.fd);
      else (this.ring as SyscallRing).release(this.fd);
    }
    if (this.fdClosed && this.pending === 0) {
      this.closedFlag = true;
      this.ring.untrack(this);
      const h = this.paused;
      this.paused = null;
      if (h !== null) resumeReceiving(this.node as dgram.Socket, h);
      this.resolveClose?.();
    }
  }
}

/** Checks send() option names without allocating (send() is the hot path). */
function validateSendOptions(options: SendOptions): void {
  if (typeof options !== 'object' || options === null) throw new UringZcArgumentError('send options must be an object');
  for (const key in options) {
    if (key !== 'address' && key !== 'port' && key !== 'zeroCopy' && key !== 'segmentSize' && key !== 'signal') {
      throw new UringZcArgumentError(`send options: unknown option "${key}" (known: ${SEND_OPTION_NAMES.join(', ')})`);
    }
  }
}
