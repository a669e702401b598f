/**
 * ZeroCopySocket: zero-copy sends on an adopted TCP or UDP socket through a Ring.
 *
 * Lifetime: a Buffer passed to send() is held (with its ArrayBuffer) from the call until the
 * kernel's last CQE for it: the IORING_CQE_F_NOTIF notification for a zero-copy send, the only
 * CQE for a copying one. The promise settles only then, also on error, close and ring close, so a
 * Buffer is never handed back while the kernel may still read it.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { EventEmitter } from 'node:events';
import { addressOf, baseAddress } from './buffers.js';
import { encodeSockaddr } from './address.js';
import {
  memlockHint,
  ringClosedError,
  socketClosedError,
  UringZcAbortError,
  UringZcArgumentError,
  UringZcStateError,
  UringZcSystemError,
  UringZcUnsupportedError,
} from './errors.js';
import { native } from './native.js';
import { validateBoolean, validateOptions, validateSendBuffer, validateSignal, validateThreshold, validateUint } from './options.js';
import { defaultRing, Ring } from './ring.js';
import type { RingOp } from './ring-memory.js';
import { capabilities, chooseBackend, requestedBackend } from './probe.js';
import { prepSend, prepSendmsg, setU64 } from './sqe.js';
import { poolOf, type BufferPool } from './pool.js';
import { Fifo } from './fifo.js';
import { closeFilePipe, type FilePipe, type FileRequest, type FileSend, openFilePipe, openFileSend, parseFileSend, type SendFileOptions } from './file.js';
import { syscallRing, type BackendName, SyscallRing } from './syscall.js';
import { ZeroCopyWriteStream, type WriteStreamOptions } from './writable.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IORING_CQE_F_MORE,
  IORING_CQE_F_NOTIF,
  IORING_NOTIF_USAGE_ZC_COPIED,
  IORING_OP_SEND,
  IORING_OP_SEND_ZC,
  IORING_OP_SENDMSG,
  IORING_OP_SENDMSG_ZC,
  IORING_RECVSEND_FIXED_BUF,
  IORING_SEND_VECTORIZED,
  MSG_WAITALL,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_UDP,
  UDP_SEGMENT,
} from './uapi.js';

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

/** How a send ended. */
export interface SendResult {
  /** Bytes sent: the whole buffer on success. */
  bytes: number;
  /** True when the kernel sent from the buffer without copying (IORING_SEND_ZC_REPORT_USAGE). */
  zeroCopy: boolean;
}

/**
 * Node-style completion callback of send(buf, options, callback), called once the kernel no
 * longer needs the buffer: `err` or null, the bytes sent, and whether the kernel did not copy.
 * (Plain arguments rather than a result object: nothing is allocated per send.)
 */
export type SendCallback = (err: Error | null, bytes: number, zeroCopy: boolean) => void;

/**
 * @internal The 'accepted' event of a stream send (see ZeroCopySocket#sendAccepted): null when
 * the kernel has taken every byte (the next send may go; the memory is still read until the
 * release), or the error the send ends with.
 */
export type AcceptCallback = (err: Error | null) => void;

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

const ADOPT_OPTION_NAMES = ['zeroCopyThreshold', 'autoDowngrade', 'receive', 'backend'] as const;
const BACKEND_CHOICES: readonly string[] = ['auto', 'io_uring', 'msg_zerocopy', 'copy'];
const SEND_OPTION_NAMES = ['address', 'port', 'zeroCopy', 'segmentSize', 'signal'] as const;
/**
 * Largest request on a stream socket; longer sends go as several requests, one at a time. Not
 * larger: each request's result is where the stream shows progress (Node's idle timer is
 * restarted there), and each is pinned and accounted against RLIMIT_MEMLOCK as a whole.
 */
const MAX_STREAM_CHUNK = 4 << 20;
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
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
/** sendv() of a zero-copy datagram copies chunks this small (see copySmallChunks)... */
const SMALL_CHUNK = 2048;
/** ...when they add up to at most this many bytes. */
const SMALL_TOTAL = 8192;
/** A slab of small-chunk copies: SMALL_TOTAL with page padding fits a fresh one many times over. */
const SLAB_SIZE = 64 * 1024;
const PAGE_SIZE = 4096;
const INV_PAGE = 1 / PAGE_SIZE;

/** CMSG_SPACE(sizeof(uint16_t)): a cmsghdr (16 bytes) and the segment size, padded to 8. */
const GSO_CMSG_SPACE = 24;

/**
 * One send() or sendv() call that is not a plain datagram (TCP, sendv, GSO). Its kernel requests
 * are SendParts: usually one; a stream send cut short by the kernel continues with another part
 * for the rest, one at a time.
 */
class SendRequest {
  sock: ZeroCopySocket;
  /** The one buffer of send(), or null for sendv(). */
  buf: Uint8Array | null;
  /** The buffers of sendv() (held until settled), or null. */
  chunks: Uint8Array[] | null;
  /** Address of `buf`. */
  addr: number;
  /** sendv(): address and length of each chunk, [addr, len, addr, len, ...], or null. */
  iov: number[] | null;
  len: number;
  zc: boolean;
  /** True when this send's copy/zero-copy choice came from the threshold (auto-downgrade may act). */
  auto: boolean;
  dest: Buffer | null;
  destAddr: number;
  /** Registered buffer table index (IORING_RECVSEND_FIXED_BUF), or -1. */
  fixedIndex: number;
  /** UDP GSO segment size, or 0. */
  segmentSize: number;
  /** The pool buffer send() lent (pool and index), or null / -1. */
  pool: BufferPool | null;
  slot: number;
  /** Pool buffers sendv() lent: [pool, index, pool, index, ...], or null. */
  leases: (BufferPool | number)[] | null;
  /** Sent as a message (IORING_OP_SENDMSG(_ZC)): sendv(), GSO. */
  vectored: boolean;
  /** The msghdr memory when it is not in the ring's scratch (GSO control data), held to the result CQE. */
  msg: Buffer | null;
  /** Kernel requests submitted for this send whose last CQE has not come yet. */
  open: number;
  sent: number;
  notifs: number;
  copiedNotifs: number;
  /** No further kernel request will be made for this send. */
  done: boolean;
  /** Delivered to its callback or promise (once: see ZeroCopySocket#maybeSettle). */
  settled: boolean;
  /** A zero-copy request of it was refused for pinning (ENOMEM) and sent by copying instead. */
  fellBack: boolean;
  err: Error | null;
  /** Kernel requests in a row that moved no byte (0 or -EAGAIN); bounded. */
  zeroResults: number;
  resolve: ((r: SendResult) => void) | null;
  reject: ((e: Error) => void) | null;
  callback: SendCallback | null;
  /** The send's AbortSignal, or null. Such a send never joins a StreamBatch. */
  signal: AbortSignal | null;
  /** Its signal aborted while it was not done: no further kernel request is made for it. */
  aborted: boolean;
  /** Its latest kernel request (the one an abort cancels). */
  part: SendPart | null;
  /** Memory the send's iovecs point into besides its chunks (sendv's small-chunk slab), or null. */
  hold: Buffer | null;
  /** @internal The 'accepted' hook of sendAccepted() (see there), or null once called. */
  onAccept: AcceptCallback | null;
  /** sendFile(): the file send that moves its bytes (src/file.ts), or null. */
  file: FileSend | null;

  constructor(sock: ZeroCopySocket, buf: Uint8Array | null, addr: number, len: number, zc: boolean, auto: boolean,
    dest: Buffer | null, destAddr: number) {
    this.sock = sock;
    this.file = null;
    this.buf = buf;
    this.chunks = null;
    this.addr = addr;
    this.iov = null;
    this.len = len;
    this.zc = zc;
    this.auto = auto;
    this.dest = dest;
    this.destAddr = destAddr;
    this.fixedIndex = -1;
    this.segmentSize = 0;
    this.pool = null;
    this.slot = -1;
    this.leases = null;
    this.vectored = false;
    this.msg = null;
    this.open = 0;
    this.sent = 0;
    this.notifs = 0;
    this.copiedNotifs = 0;
    this.done = false;
    this.settled = false;
    this.fellBack = false;
    this.err = null;
    this.zeroResults = 0;
    this.resolve = null;
    this.reject = null;
    this.callback = null;
    this.signal = null;
    this.aborted = false;
    this.part = null;
    this.hold = null;
    this.onAccept = null;
  }

  onNotif(res: number): void {
    this.notifs++;
    if ((res & IORING_NOTIF_USAGE_ZC_COPIED) !== 0) this.copiedNotifs++;
  }

  /** One kernel request of this send has had its last CQE. */
  closeOne(): void {
    this.open--;
    this.sock.maybeSettle(this);
  }
}

/**
 * One kernel request of a SendRequest: its bytes from `offset` on (0 for the first; more for the
 * rest of a stream send the kernel cut short).
 */
class SendPart implements RingOp {
  readonly sock: ZeroCopySocket;
  private gotResult = false;
  private gotNotif = false;
  private expectNotif = false;
  constructor(readonly req: SendRequest, readonly offset: number) {
    this.sock = req.sock;
  }

  prep(w: Uint32Array, o: number, userData: number): void {
    this.req.sock.prepChunk(this.req, this.offset, w, o, userData);
  }

  complete(res: number, flags: number): boolean {
    if ((flags & IORING_CQE_F_NOTIF) !== 0) {
      this.gotNotif = true;
      this.req.onNotif(res);
    } else {
      this.gotResult = true;
      this.expectNotif = (flags & IORING_CQE_F_MORE) !== 0;
      this.sock.onPartResult(this.req, this.offset, res);
    }
    // A notification comes if and only if the result CQE had F_MORE (never decided from res).
    const last = this.gotResult && (!this.expectNotif || this.gotNotif);
    if (last) this.req.closeOne();
    return last;
  }

  abandon(err: Error): void {
    this.sock.onPartResult(this.req, this.offset, err);
    this.req.closeOne();
  }
}

/** Most queued stream sends gathered into one request. */
const MAX_BATCH = 64;

/**
 * Queued stream sends submitted together as one IORING_OP_SENDMSG(_ZC) with an iovec each (what
 * writev() does for net.Socket): one request in the kernel per stream socket still, in order,
 * with MSG_WAITALL, but one kernel round trip for many small sends instead of one each.
 */
class StreamBatch implements RingOp {
  readonly reqs: SendRequest[];
  readonly total: number;
  readonly zc: boolean;
  private readonly parts: Uint8Array[];
  /** Address and length of each send, [addr, len, ...]. */
  private readonly iov: number[];
  /** The msghdr when the ring's scratch was full, held until the result CQE. */
  msg: Buffer | null = null;
  private gotResult = false;
  private gotNotif = false;
  private expectNotif = false;

  constructor(readonly sock: ZeroCopySocket, reqs: SendRequest[]) {
    this.reqs = reqs;
    this.zc = reqs[0]!.zc;
    let total = 0;
    this.parts = [];
    this.iov = [];
    for (const r of reqs) {
      total += r.len;
      this.parts.push(r.buf!);
      this.iov.push(r.addr, r.len);
    }
    this.total = total;
  }

  prep(w: Uint32Array, o: number, userData: number): void {
    const at = placeMsg(this.sock.ring, this, this.iov, 0, 0, 0, 0);
    prepSendmsg(w, o, this.zc ? IORING_OP_SENDMSG_ZC : IORING_OP_SENDMSG, 0, this.zc ? this.sock.usageFlag : 0,
      this.sock.fd, at, MSG_WAITALL, 0, userData);
  }

  complete(res: number, flags: number): boolean {
    if ((flags & IORING_CQE_F_NOTIF) !== 0) {
      this.gotNotif = true;
      for (const r of this.reqs) r.onNotif(res);
    } else {
      this.gotResult = true;
      this.expectNotif = (flags & IORING_CQE_F_MORE) !== 0;
      this.sock.onBatchResult(this, res);
    }
    const last = this.gotResult && (!this.expectNotif || this.gotNotif);
    if (last) for (const r of this.reqs) r.closeOne();
    return last;
  }

  abandon(err: Error): void {
    this.sock.onBatchResult(this, err);
    for (const r of this.reqs) r.closeOne();
  }
}

/**
 * The error of a stream send cut by destroy() or ring close after `sent` of its bytes went to the
 * kernel: ECANCELED (the kernel cancelled it), saying how far it got.
 */
function cutError(req: SendRequest, sent: number): UringZcSystemError {
  return new UringZcSystemError(-125 /* ECANCELED */, req.vectored ? 'sendmsg_zc' : 'send_zc',
    `the socket was destroyed after ${sent} of this send's ${req.len} bytes had gone to the kernel; the stream ends there`);
}

/** The error a failed send rejects with (`res` is -errno). */
function sendError(res: number, len: number, zc: boolean, vectored: boolean): UringZcSystemError {
  const hint = res === -12 /* ENOMEM */ ? memlockHint(len) : undefined;
  const op = vectored ? (zc ? 'sendmsg_zc' : 'sendmsg') : zc ? 'send_zc' : 'send';
  return new UringZcSystemError(res, op, hint);
}

/** Calls a stream send's 'accepted' hook (sendAccepted) once, with how it ended if it failed. */
function accept(req: SendRequest): void {
  const f = req.onAccept!;
  req.onAccept = null;
  f(req.err);
}

/** Reports a settled send to its callback or promise. */
function deliver(
  to: { callback: SendCallback | null; resolve: ((r: SendResult) => void) | null; reject: ((e: Error) => void) | null },
  err: Error | null, bytes: number, zeroCopy: boolean,
): void {
  if (to.callback !== null) {
    try {
      if (err !== null) to.callback(err, 0, false);
      else to.callback(null, bytes, zeroCopy);
    } catch (e) {
      // The ring is mid-dispatch: finish it, then surface the user's exception as uncaught.
      process.nextTick(() => {
        throw e;
      });
    }
  } else if (err !== null) {
    to.reject!(err);
  } else {
    to.resolve!({ bytes, zeroCopy });
  }
}

const EMPTY_BUF = new Uint8Array(0);
// DatagramSend state bits.
const GOT_RESULT = 1;
const EXPECT_NOTIF = 2;
const GOT_NOTIF = 4;
const WAS_COPIED = 8;

/**
 * One plain datagram send (no GSO, no vector): the lean common case of UDP servers, one kernel
 * request with one or two CQEs. Kept apart from SendRequest because per-send JS work is the
 * whole difference between a Node sender and a C one here (few fields, no stream logic).
 */
class DatagramSend implements RingOp {
  sock: ZeroCopySocket;
  // Set by init() (also when a settled request is reused).
  buf!: Uint8Array;
  addr!: number;
  len!: number;
  zc!: boolean;
  auto!: boolean;
  /** The destination sockaddr, held until the result CQE (the socket's cache may move on). */
  dest!: Buffer | null;
  destAddr!: number;
  fixedIndex!: number;
  pool!: BufferPool | null;
  slot!: number;
  res!: number;
  state!: number;
  err!: Error | null;
  callback: SendCallback | null;
  resolve: ((r: SendResult) => void) | null;
  reject: ((e: Error) => void) | null;

  constructor(sock: ZeroCopySocket, buf: Uint8Array, addr: number, len: number, zc: boolean, auto: boolean,
    dest: Buffer | null, destAddr: number) {
    this.sock = sock;
    this.init(buf, addr, len, zc, auto, dest, destAddr);
    this.callback = null;
    this.resolve = null;
    this.reject = null;
  }

  /** Sets the fields of a new request, or of a settled one made new (callback and promise come after). */
  init(buf: Uint8Array, addr: number, len: number, zc: boolean, auto: boolean, dest: Buffer | null, destAddr: number): void {
    this.buf = buf;
    this.addr = addr;
    this.len = len;
    this.zc = zc;
    this.auto = auto;
    this.dest = dest;
    this.destAddr = destAddr;
    this.fixedIndex = -1;
    this.pool = null;
    this.slot = -1;
    this.res = 0;
    this.state = 0;
    this.err = null;
  }

  /** Settled: drops every reference the request held (see ZeroCopySocket#datagram). */
  release(): void {
    this.buf = EMPTY_BUF;
    this.dest = null;
    this.callback = null;
    this.resolve = null;
    this.reject = null;
    this.pool = null;
  }

  prep(w: Uint32Array, o: number, userData: number): void {
    const fixed = this.fixedIndex >= 0;
    prepSend(w, o, this.zc ? IORING_OP_SEND_ZC : IORING_OP_SEND, 0,
      this.zc ? this.sock.usageFlag | (fixed ? IORING_RECVSEND_FIXED_BUF : 0) : 0,
      this.sock.fd, this.addr, this.len, 0, this.destAddr, this.dest === null ? 0 : this.sock.sockaddrLen,
      fixed ? this.fixedIndex : 0, userData);
  }

  complete(res: number, flags: number): boolean {
    let s = this.state;
    if ((flags & IORING_CQE_F_NOTIF) !== 0) {
      s |= (res & IORING_NOTIF_USAGE_ZC_COPIED) !== 0 ? GOT_NOTIF | WAS_COPIED : GOT_NOTIF;
    } else {
      this.res = res;
      s |= (flags & IORING_CQE_F_MORE) !== 0 ? GOT_RESULT | EXPECT_NOTIF : GOT_RESULT;
      this.sock.onDatagramResult(res);
    }
    this.state = s;
    // A notification comes if and only if the result CQE had F_MORE (never decided from res).
    if ((s & GOT_RESULT) === 0 || ((s & EXPECT_NOTIF) !== 0 && (s & GOT_NOTIF) === 0)) return false;
    this.sock.settleDatagram(this);
    return true;
  }

  abandon(err: Error): void {
    this.err = err;
    this.state = GOT_RESULT;
    this.sock.onDatagramResult(0);
    this.sock.settleDatagram(this);
  }

  /** Sent as a message (DatagramVector). */
  get vectored(): boolean {
    return false;
  }

  /** Returns the pool buffer (`pool` is not null) at the last CQE. */
  giveBack(): void {
    this.pool!.giveBack(this.slot);
  }
}

/**
 * sendv() of one datagram (no GSO): a DatagramSend whose bytes are a list of chunks, sent as
 * IORING_OP_SENDMSG(_ZC) with an iovec each. One kernel request, as a datagram cannot be split;
 * measured (bench/vector.ts): the kernel sends [1 KiB header, body] as fast as the body alone,
 * so the header rides along as one more zero-copy fragment instead of a separate copying send.
 */
class DatagramVector extends DatagramSend {
  readonly chunks: Uint8Array[];
  /** Address and length of each chunk, [addr, len, addr, len, ...]. */
  readonly iov: number[];
  /** Pool buffers lent: [pool, index, pool, index, ...], or null. `pool` is the first of them. */
  leases: (BufferPool | number)[] | null;
  /** The msghdr when the ring's scratch was full, held until the result CQE. */
  msg: Buffer | null;
  /** The socket's small-chunk slab when chunks were copied into it, held to the notification. */
  slab: Buffer | null;

  constructor(sock: ZeroCopySocket, chunks: Uint8Array[], iov: number[], len: number, zc: boolean, auto: boolean,
    dest: Buffer | null, destAddr: number) {
    super(sock, chunks[0]!, 0, len, zc, auto, dest, destAddr);
    this.chunks = chunks;
    this.iov = iov;
    this.leases = null;
    this.msg = null;
    this.slab = null;
  }

  override prep(w: Uint32Array, o: number, userData: number): void {
    const sock = this.sock;
    const fixed = this.fixedIndex >= 0;
    const destLen = this.dest === null ? 0 : sock.sockaddrLen;
    if (this.zc && !fixed && sock.vectorFlag !== 0) {
      // IORING_SEND_VECTORIZED (6.17): SEND_ZC straight from the iovec array, the destination as
      // for send(); no msghdr for us to write or for the kernel to copy in.
      const at = placeIovecs(sock.ring, this, this.iov);
      prepSend(w, o, IORING_OP_SEND_ZC, 0, sock.usageFlag | sock.vectorFlag, sock.fd, at, this.iov.length >>> 1, 0,
        this.destAddr, destLen, 0, userData);
      return;
    }
    const at = placeMsg(sock.ring, this, this.iov, 0, this.destAddr, destLen, 0);
    prepSendmsg(w, o, this.zc ? IORING_OP_SENDMSG_ZC : IORING_OP_SENDMSG, 0,
      this.zc ? sock.usageFlag | (fixed ? IORING_RECVSEND_FIXED_BUF : 0) : 0, sock.fd, at, 0, fixed ? this.fixedIndex : 0, userData);
  }

  override get vectored(): boolean {
    return true;
  }

  override giveBack(): void {
    giveBackLeases(this.leases!);
  }
}

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
  // sendv()'s copies of small chunks (copySmallChunks): the current slab, its address, bytes used.
  private slab: Buffer | null = null;
  private slabAddr = 0;
  private slabUsed = 0;
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
      if (segmentSize === 0 && pools === null) slab = this.copySmallChunks(list, iov);
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
    this.slab = null;
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

  /**
   * Copies the small chunks (at most SMALL_CHUNK bytes, together at most SMALL_TOTAL) of a
   * zero-copy datagram into the socket's slab and points their iovecs there; returns the slab,
   * which the request holds to its notification, or null when nothing was copied.
   *
   * Why: the kernel copies nothing of a zero-copy datagram, it pins every page the iovecs touch
   * and attaches each as an skb fragment, at most net.core.max_skb_frags (17) of them. A 1 KiB
   * header costs a fragment of its own, two when it straddles a page, so [header, 60 KiB body]
   * needs 17 or 18 depending on addresses, and 18 cannot go zero copy. Copied into the slab a
   * header lies within one page: one fragment. Only then, not always: where the fragments fit,
   * pinning the header's page measured cheaper than copying it (bench/vector.ts).
   * Slab bytes are written once and never reused: a full slab is replaced, and the old one lives
   * as long as a request holds it.
   */
  private copySmallChunks(list: readonly Uint8Array[], iov: number[]): Buffer | null {
    let small = 0;
    for (let i = 1; i < iov.length; i += 2) if (iov[i]! <= SMALL_CHUNK) small += iov[i]!;
    if (small === 0 || small > SMALL_TOTAL) return null;
    for (;;) {
      const slab = this.slab;
      let off = this.slabUsed;
      let fits = slab !== null;
      for (let i = 0; fits && i < list.length; i++) {
        const len = iov[2 * i + 1]!;
        if (len === 0 || len > SMALL_CHUNK) continue;
        // Within one page: start on the next page when it would straddle. (`&` of the address
        // is exact: ToInt32 keeps its low 32 bits.)
        const inPage = (this.slabAddr + off) & (PAGE_SIZE - 1);
        if (inPage + len > PAGE_SIZE) off += PAGE_SIZE - inPage;
        if (off + len > SLAB_SIZE) {
          fits = false;
          break;
        }
        slab!.set(list[i]!, off);
        iov[2 * i] = this.slabAddr + off;
        off += len;
      }
      if (fits) {
        this.slabUsed = off;
        return slab;
      }
      // A fresh slab (SMALL_TOTAL and the page padding always fit one); copy again from the start.
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.slabAddr = addressOf(this.slab);
      this.slabUsed = 0;
    }
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

  /** @internal Fills the SQE for the bytes of `req` from `offset` on. */
  prepChunk(req: SendRequest, offset: number, w: Uint32Array, o: number, userData: number): void {
    // The kernel retries a short stream send itself and reports the total (MSG_WAITALL).
    const msgFlags = this.stream ? MSG_WAITALL : 0;
    const fixed = req.fixedIndex >= 0;
    const ioprio = req.zc ? this.usageFlag | (fixed ? IORING_RECVSEND_FIXED_BUF : 0) : 0;
    if (!req.vectored) {
      let len = req.len - offset;
      if (len > MAX_STREAM_CHUNK) len = MAX_STREAM_CHUNK;
      prepSend(w, o, req.zc ? IORING_OP_SEND_ZC : IORING_OP_SEND, 0, ioprio, this.fd, req.addr + offset, len, msgFlags,
        req.destAddr, req.dest === null ? 0 : this.sockaddrLen, fixed ? req.fixedIndex : 0, userData);
      return;
    }
    // Laid out now, for the bytes from `offset` on (a stream tail after a short result).
    const at = placeMsg(this.ring, req, req.iov ?? [req.addr, req.len], offset,
      req.destAddr, req.dest === null ? 0 : this.sockaddrLen, req.segmentSize);
    prepSendmsg(w, o, req.zc ? IORING_OP_SENDMSG_ZC : IORING_OP_SENDMSG, 0, ioprio, this.fd, at, msgFlags,
      fixed ? req.fixedIndex : 0, userData);
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

/**
 * Where a request's struct msghdr goes: the ring's scratch (consumed by the kernel at submission)
 * or, for control data (read by the socket layer at issue time) and when the scratch is full, a
 * Buffer of its own that the request holds until its result CQE (`holder.msg`). Returns the
 * msghdr's address.
 */
function placeMsg(ring: Ring | SyscallRing, holder: { msg: Buffer | null }, iov: readonly number[], skip: number, destAddr: number,
  destLen: number, segmentSize: number): number {
  // Skip the chunks (empty ones included) that are wholly before byte `skip`; `iov` holds
  // [addr, len] per chunk.
  const chunks = iov.length >>> 1;
  let first = 0;
  let firstOffset = skip;
  while (first < chunks - 1 && firstOffset >= iov[2 * first + 1]!) {
    firstOffset -= iov[2 * first + 1]!;
    first++;
  }
  const n = chunks - first;
  const control = segmentSize > 0 ? GSO_CMSG_SPACE : 0;
  const size = MSGHDR_SIZE + n * IOVEC_SIZE + control;
  const off = control === 0 ? ring.allocScratch(size) : -1;
  let w: Uint32Array;
  let o: number;
  let at: number;
  if (off >= 0) {
    w = ring.scratch;
    o = off >>> 2;
    at = ring.scratchAddr + off;
  } else {
    // From Node's Buffer pool (8-byte aligned).
    const held = Buffer.allocUnsafe(size);
    holder.msg = held;
    w = new Uint32Array(held.buffer, held.byteOffset, size >>> 2);
    o = 0;
    at = addressOf(held);
  }
  // 32-bit word stores: Buffer#writeUInt32LE and fill() cost more per call than the request.
  // Every word is written.
  setU64(w, o, destAddr); // msg_name
  w[o + 2] = destLen; // msg_namelen
  w[o + 3] = 0;
  setU64(w, o + 4, at + MSGHDR_SIZE); // msg_iov
  setU64(w, o + 6, n); // msg_iovlen
  setU64(w, o + 8, control === 0 ? 0 : at + MSGHDR_SIZE + n * IOVEC_SIZE); // msg_control
  setU64(w, o + 10, control); // msg_controllen
  w[o + 12] = 0; // msg_flags
  w[o + 13] = 0;
  writeIovecs(w, o + (MSGHDR_SIZE >>> 2), iov, first, firstOffset);
  if (control > 0) {
    const c = o + ((MSGHDR_SIZE + n * IOVEC_SIZE) >>> 2);
    setU64(w, c, 16 + 2); // cmsg_len = CMSG_LEN(sizeof(uint16_t))
    w[c + 2] = SOL_UDP; // cmsg_level
    w[c + 3] = UDP_SEGMENT; // cmsg_type
    w[c + 4] = segmentSize; // the uint16_t, little-endian, and padding
    w[c + 5] = 0;
  }
  return at;
}

/**
 * An iovec array for IORING_SEND_VECTORIZED (`iov` = [addr, len] per chunk), in the ring's
 * scratch or a Buffer `holder` keeps to the result CQE, as placeMsg(). Returns its address.
 */
function placeIovecs(ring: Ring | SyscallRing, holder: { msg: Buffer | null }, iov: readonly number[]): number {
  const size = (iov.length >>> 1) * IOVEC_SIZE;
  const off = ring.allocScratch(size);
  if (off >= 0) {
    writeIovecs(ring.scratch, off >>> 2, iov, 0, 0);
    return ring.scratchAddr + off;
  }
  const held = Buffer.allocUnsafe(size);
  holder.msg = held;
  writeIovecs(new Uint32Array(held.buffer, held.byteOffset, size >>> 2), 0, iov, 0, 0);
  return addressOf(held);
}

/** struct iovec entries at word `v` for the chunks of `iov` from `first` on, skipping `firstOffset` bytes of it. */
function writeIovecs(w: Uint32Array, v: number, iov: readonly number[], first: number, firstOffset: number): void {
  for (let i = 2 * first; i < iov.length; i += 2, v += IOVEC_SIZE >>> 2) {
    const skipHere = i === 2 * first ? firstOffset : 0;
    setU64(w, v, iov[i]! + skipHere); // iov_base
    setU64(w, v + 2, iov[i + 1]! - skipHere); // iov_len
  }
}


/** A stream send that can join a StreamBatch: one plain buffer, not from a pool, no signal (it is cancelled alone). */
function batchable(r: SendRequest): boolean {
  return !r.vectored && r.pool === null && r.signal === null && r.file === null;
}

/** Returns the pool buffers a sendv() lent ([pool, index, pool, index, ...]) at its last CQE. */
function giveBackLeases(leases: readonly (BufferPool | number)[]): void {
  for (let i = 0; i < leases.length; i += 2) (leases[i] as BufferPool).giveBack(leases[i + 1] as number);
}

/** Pages touched by the chunks (each chunk's first to last page). */
function pagesSpanned(iov: readonly number[]): number {
  let pages = 0;
  for (let i = 0; i < iov.length; i += 2) {
    const addr = iov[i]!;
    const len = iov[i + 1]!;
    // Multiplying by 2^-12 is exact (a power of two) and far cheaper than a division.
    const inPage = addr - Math.floor(addr * INV_PAGE) * PAGE_SIZE;
    if (len > 0) pages += Math.floor((inPage + len + PAGE_SIZE - 1) * INV_PAGE);
  }
  return pages;
}

let maxFrags: number | undefined;
/** net.core.max_skb_frags of this network namespace (read once; 17 when unreadable). */
function maxSkbFrags(): number {
  if (maxFrags === undefined) {
    try {
      maxFrags = Number(readFileSync('/proc/sys/net/core/max_skb_frags', 'utf8').trim()) || 17;
    } catch {
      maxFrags = 17;
    }
  }
  return maxFrags;
}

/** A send whose signal had aborted before the call: nothing is queued; it rejects (or calls back) on the next tick. */
function abortedAtOnce(signal: AbortSignal, callback: SendCallback | undefined): Promise<SendResult> | void {
  const err = new UringZcAbortError('the send was aborted before it was queued; none of its bytes were sent', signal.reason);
  if (callback === undefined) return Promise.reject(err);
  process.nextTick(() => deliver({ callback, resolve: null, reject: null }, err, 0, false));
}

/** The AbortError of an aborted send, `sent` of whose bytes had gone to the kernel. */
function abortedError(req: SendRequest, sent: number): UringZcAbortError {
  const what = sent === 0
    ? 'none of its bytes were sent'
    : `${sent} of its ${req.len} bytes had gone to the kernel: the stream is cut there, and nothing more is sent on this socket`;
  return new UringZcAbortError(`the send was aborted; ${what}`, req.signal!.reason, sent);
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

/**
 * Adopts a socket for zero-copy sends on this thread's default ring (see Ring#adopt).
 * @throws ERR_URING_ZC_UNSUPPORTED when io_uring is unavailable (with the reason).
 */
export function adopt(target: Adoptable, options?: AdoptOptions): ZeroCopySocket {
  return adoptOn(undefined, target, options);
}

declare module './ring.js' {
  interface Ring {
    /**
     * Adopts a socket for zero-copy sends on this ring: a connected net.Socket, a bound
     * dgram.Socket, or a socket fd. The descriptor is duplicated; see adopt().
     */
    adopt(target: Adoptable, options?: AdoptOptions): ZeroCopySocket;
  }
}

// A method of Ring defined here, where sockets are: ring.ts builds on nothing above it.
Ring.prototype.adopt = function adopt(this: Ring, target: Adoptable, options?: AdoptOptions): ZeroCopySocket {
  return adoptOn(this, target, options);
};

/** @internal Shared by adopt() and Ring#adopt(). */
export function adoptOn(ring: Ring | undefined, target: Adoptable, options: AdoptOptions = {}): ZeroCopySocket {
  validateOptions('adopt options', options, ADOPT_OPTION_NAMES);
  if (options.zeroCopyThreshold !== undefined) validateThreshold('zeroCopyThreshold', options.zeroCopyThreshold);
  if (options.autoDowngrade !== undefined) validateBoolean('autoDowngrade', options.autoDowngrade);
  if (options.receive !== undefined) {
    validateBoolean('receive', options.receive);
    if (options.receive === false && !(target instanceof dgram.Socket)) {
      throw new UringZcArgumentError('"receive: false" applies to a dgram.Socket (Node reads it); a descriptor or a net.Socket is not read by uring-zc');
    }
  }
  if (options.backend !== undefined && !BACKEND_CHOICES.includes(options.backend)) {
    throw new UringZcArgumentError(`"backend" must be one of ${BACKEND_CHOICES.join(', ')}, got ${JSON.stringify(options.backend)}`);
  }
  if (ring !== undefined && options.backend !== undefined && options.backend !== 'io_uring' && options.backend !== 'auto') {
    throw new UringZcArgumentError(`ring.adopt() sends through that io_uring ring; for the ${options.backend} backend use adopt(socket, { backend: '${options.backend}' })`);
  }
  const { fd, node } = nodeFd(target);
  // The backend: an io_uring Ring given, or the option, URING_ZC_BACKEND, or what auto picks
  // here. Choosing a syscall backend never probes io_uring (some sandboxes kill the process for
  // io_uring_setup).
  const kind: BackendName = ring !== undefined ? 'io_uring' : chooseBackend(options.backend ?? requestedBackend() ?? 'auto');
  let r: Ring | SyscallRing;
  if (kind === 'io_uring') {
    const caps = capabilities();
    if (!caps.ioUring || !caps.sendZc) {
      throw new UringZcUnsupportedError('zero-copy send is not available', caps.reason ?? 'unknown reason');
    }
    r = ring ?? defaultRing();
  } else {
    r = syscallRing(kind);
  }
  if (r.closing) throw new UringZcStateError('ERR_URING_ZC_RING_CLOSED', 'the ring is closed');
  const dup = native.dup(fd);
  if (dup < 0) throw new UringZcSystemError(dup, 'dup');
  const info = native.sockInfo(dup);
  if (typeof info === 'number') {
    native.close(dup);
    throw new UringZcSystemError(info, 'getsockopt');
  }
  const [domain, type, , connected, inode] = info;
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
    native.close(dup);
    throw new UringZcUnsupportedError('cannot adopt this socket', `socket type ${type} is neither SOCK_STREAM nor SOCK_DGRAM`);
  }
  if (type === SOCK_STREAM && connected === 0) {
    native.close(dup);
    throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'a stream socket must be connected before adopt()');
  }
  if (domain !== AF_INET && domain !== AF_INET6 && domain !== AF_UNIX) {
    native.close(dup);
    throw new UringZcUnsupportedError('cannot adopt this socket', `address family ${domain} is not supported`);
  }
  // Thread teardown (native/teardown.c) resets and closes it if JS cannot; close() forgets it.
  const tracked = native.trackSocket(dup, type === SOCK_STREAM, inode);
  if (tracked === -16 /* EBUSY */) {
    native.close(dup);
    throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE',
      'this stream socket is adopted already (by this thread or another): a byte stream has one writer, and two sets of sends would interleave in it; close() the first ZeroCopySocket first');
  }
  if (tracked < 0) {
    native.close(dup);
    throw new UringZcSystemError(tracked, 'trackSocket');
  }
  if (domain === AF_UNIX && r.backend !== 'copy') {
    // No zero-copy path for local sockets (EOPNOTSUPP from SEND_ZC): they get a copying send.
    r = syscallRing('copy');
  }
  if (r.backend === 'msg_zerocopy' && target instanceof dgram.Socket && options.receive !== false && LIBUV_DRAINS_UDP_ERRQUEUE) {
    // libuv >= 1.52 (Node 24) reads a UDP socket's error queue when it polls it for reading,
    // where MSG_ZEROCOPY completions arrive: they would be lost and the sends never settle.
    // So a dgram socket that Node reads copies; { receive: false } keeps MSG_ZEROCOPY.
    r = syscallRing('copy');
  }
  if (r.backend !== 'io_uring') {
    let a = (r as SyscallRing).attach(dup, inode);
    if (a < 0 && r.backend === 'msg_zerocopy') {
      // SO_ZEROCOPY refused for this socket: it copies.
      r = syscallRing('copy');
      a = r.attach(dup, inode);
    }
    if (a < 0) {
      native.close(dup);
      throw new UringZcSystemError(a, 'setsockopt');
    }
  }
  let paused: UdpHandle | null = null;
  if (options.receive === false) {
    const sock = target as dgram.Socket;
    paused = dgramHandle(sock) ?? null;
    // Several ZeroCopySockets may stop one dgram socket's reading: it starts again with the last.
    const n = pausers.get(sock) ?? 0;
    const e = n > 0 ? 0 : paused?.recvStop() ?? -9; /* EBADF */
    if (e !== 0) {
      if (r.backend === 'io_uring') native.close(dup);
      else (r as SyscallRing).release(dup);
      throw new UringZcSystemError(e, 'recvStop');
    }
    pausers.set(sock, n + 1);
  }
  return new ZeroCopySocket(r, dup, domain, type, node, options, paused);
}

/** Does this Node's libuv drain the error queue of a UDP socket it reads (1.52 does, 1.51 does not)? */
const LIBUV_DRAINS_UDP_ERRQUEUE = ((): boolean => {
  const [major = 0, minor = 0] = (process.versions.uv ?? '0.0').split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 52);
})();

/** How many open ZeroCopySockets adopted each dgram.Socket with `receive: false`. */
const pausers = new WeakMap<dgram.Socket, number>();

/** A ZeroCopySocket that stopped `sock`'s reading has closed: the last one starts it again. */
function resumeReceiving(sock: dgram.Socket, handle: UdpHandle): void {
  const n = (pausers.get(sock) ?? 1) - 1;
  if (n > 0) {
    pausers.set(sock, n);
    return;
  }
  pausers.delete(sock);
  // Unless the dgram socket was closed meanwhile (its handle is gone).
  if (dgramHandle(sock) === handle) handle.recvStart();
}

/** The descriptor behind what adopt() was given, and the Node socket to watch for 'close'. */
function nodeFd(target: Adoptable): { fd: number; node: EventEmitter | undefined } {
  if (typeof target === 'number') {
    validateUint('fd', target, 0, 0x7fffffff);
    return { fd: target, node: undefined };
  }
  if (target instanceof net.Socket) {
    if (target instanceof tls.TLSSocket) {
      throw new UringZcArgumentError('a tls.TLSSocket cannot be adopted: uring-zc writes to the TCP descriptor beneath TLS, which would put plaintext on an encrypted connection');
    }
    const kind = (target as unknown as { _handle?: object | null })._handle?.constructor?.name;
    if (kind !== undefined && kind !== 'TCP' && kind !== 'Pipe') {
      throw new UringZcArgumentError(`this net.Socket is not a plain TCP or IPC socket (its handle is a ${kind}): bytes written to a descriptor beneath it would bypass its protocol`);
    }
    if (target.destroyed) throw socketClosedError();
    if (target.connecting) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the net.Socket is still connecting: adopt it after its \'connect\' event');
    }
    // net.Socket#_handle.fd is the libuv stream's descriptor (no deprecation warning, unlike dgram).
    const fd = (target as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the net.Socket has no descriptor (not connected, or not a TCP/IPC socket)');
    }
    return { fd, node: target };
  }
  if (target instanceof dgram.Socket) {
    const fd = dgramFd(target);
    if (fd === undefined) throw socketClosedError();
    if (fd < 0) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the dgram.Socket is not bound yet: adopt it after its \'listening\' event (call bind() first)');
    }
    return { fd, node: target };
  }
  throw new UringZcArgumentError('adopt() expects a net.Socket, a dgram.Socket or a socket file descriptor');
}

/**
 * The descriptor of a dgram.Socket. `socket._handle` warns (DEP0112), so read the handle from
 * the socket's internal state object, found by its shape; undefined when the socket is closed.
 */
/** @internal Exported for the tests (Node 26 has no dgram `_handle` any more). */
export function dgramFd(sock: dgram.Socket): number | undefined {
  const h = dgramHandle(sock);
  return h === undefined ? undefined : typeof h.fd === 'number' ? h.fd : -1;
}

/** What uring-zc uses of a dgram.Socket's libuv handle (UDPWrap). */
interface UdpHandle {
  fd?: number;
  recvStart(): number;
  recvStop(): number;
}

/**
 * The libuv handle of a dgram.Socket (in its internal state object, reached by symbol: the public
 * `_handle` getter is deprecated, DEP0112), or undefined once the socket is closed.
 */
function dgramHandle(sock: dgram.Socket): UdpHandle | undefined {
  const s = sock as unknown as Record<symbol, unknown>;
  for (const sym of Object.getOwnPropertySymbols(sock)) {
    const state = s[sym] as { handle?: UdpHandle | null } | undefined;
    if (state !== null && typeof state === 'object' && 'handle' in state) return state.handle ?? undefined;
  }
  throw new UringZcUnsupportedError('cannot adopt this dgram.Socket', 'its descriptor is not reachable in this Node version; pass the fd instead');
}
