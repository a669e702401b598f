/**
 * The kernel requests of a stream send (TCP), and of a sendv() or GSO send that is not a plain
 * datagram: SendRequest (one send() / sendv() / sendFile() call), SendPart (one kernel request of
 * it), StreamBatch (queued sends gathered into one SENDMSG), and the errors they end with. Each
 * fills its own SQE; the socket (ZeroCopySocket, src/socket.ts) orders them and settles them,
 * and is seen here only through the StreamSender interface (no import of the socket).
 */
import { UringZcAbortError, UringZcSystemError } from './errors.js';
import { placeMsg } from './msghdr.js';
import type { AcceptCallback, SendCallback, SendResult } from './outcome.js';
import type { BufferPool } from './pool.js';
import type { Ring } from './ring.js';
import type { RingOp } from './ring-memory.js';
import { prepSend, prepSendmsg } from './sqe.js';
import type { SyscallRing } from './syscall.js';
import { IORING_CQE_F_MORE, IORING_CQE_F_NOTIF, IORING_NOTIF_USAGE_ZC_COPIED, IORING_OP_SEND, IORING_OP_SEND_ZC, IORING_OP_SENDMSG, IORING_OP_SENDMSG_ZC, IORING_RECVSEND_FIXED_BUF, MSG_WAITALL } from './uapi.js';

/**
 * Largest request on a stream socket; longer sends go as several requests, one at a time. Not
 * larger: each request's result is where the stream shows progress (Node's idle timer is
 * restarted there), and each is pinned and accounted against RLIMIT_MEMLOCK as a whole.
 */
const MAX_STREAM_CHUNK = 4 << 20;

/** @internal What a stream send uses of the file send behind a sendFile() (FileSend, src/file.ts). */
export interface FileSender {
  start(): void;
  abort(reason: unknown): void;
  release(): void;
}

/** @internal What the stream requests need of their socket (a ZeroCopySocket). */
export interface StreamSender {
  readonly fd: number;
  readonly stream: boolean;
  readonly ring: Ring | SyscallRing;
  readonly usageFlag: number;
  readonly sockaddrLen: number;
  onPartResult(req: SendRequest, offset: number, res: number | Error): void;
  maybeSettle(req: SendRequest): void;
  onBatchResult(batch: StreamBatch, res: number | Error): void;
}

/**
 * @internal One send() or sendv() call that is not a plain datagram (TCP, sendv, GSO). Its kernel requests
 * are SendParts: usually one; a stream send cut short by the kernel continues with another part
 * for the rest, one at a time.
 */
export class SendRequest {
  sock: StreamSender;
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
  file: FileSender | null;

  constructor(sock: StreamSender, buf: Uint8Array | null, addr: number, len: number, zc: boolean, auto: boolean,
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
 * @internal One kernel request of a SendRequest: its bytes from `offset` on (0 for the first; more for the
 * rest of a stream send the kernel cut short).
 */
export class SendPart implements RingOp {
  readonly sock: StreamSender;
  private gotResult = false;
  private gotNotif = false;
  private expectNotif = false;
  constructor(readonly req: SendRequest, readonly offset: number) {
    this.sock = req.sock;
  }

  prep(w: Uint32Array, o: number, userData: number): void {
    const req = this.req;
    const offset = this.offset;
    const sock = this.sock;
    // The kernel retries a short stream send itself and reports the total (MSG_WAITALL).
    const msgFlags = sock.stream ? MSG_WAITALL : 0;
    const fixed = req.fixedIndex >= 0;
    const ioprio = req.zc ? sock.usageFlag | (fixed ? IORING_RECVSEND_FIXED_BUF : 0) : 0;
    if (!req.vectored) {
      let len = req.len - offset;
      if (len > MAX_STREAM_CHUNK) len = MAX_STREAM_CHUNK;
      prepSend(w, o, req.zc ? IORING_OP_SEND_ZC : IORING_OP_SEND, 0, ioprio, sock.fd, req.addr + offset, len, msgFlags,
        req.destAddr, req.dest === null ? 0 : sock.sockaddrLen, fixed ? req.fixedIndex : 0, userData);
      return;
    }
    // Laid out now, for the bytes from `offset` on (a stream tail after a short result).
    const at = placeMsg(sock.ring, req, req.iov ?? [req.addr, req.len], offset,
      req.destAddr, req.dest === null ? 0 : sock.sockaddrLen, req.segmentSize);
    prepSendmsg(w, o, req.zc ? IORING_OP_SENDMSG_ZC : IORING_OP_SENDMSG, 0, ioprio, sock.fd, at, msgFlags,
      fixed ? req.fixedIndex : 0, userData);
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

/** @internal Most queued stream sends gathered into one request. */
export const MAX_BATCH = 64;

/**
 * @internal Queued stream sends submitted together as one IORING_OP_SENDMSG(_ZC) with an iovec each (what
 * writev() does for net.Socket): one request in the kernel per stream socket still, in order,
 * with MSG_WAITALL, but one kernel round trip for many small sends instead of one each.
 */
export class StreamBatch implements RingOp {
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

  constructor(readonly sock: StreamSender, reqs: SendRequest[]) {
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
 * @internal The error of a stream send cut by destroy() or ring close after `sent` of its bytes went to the
 * kernel: ECANCELED (the kernel cancelled it), saying how far it got.
 */
export function cutError(req: SendRequest, sent: number): UringZcSystemError {
  return new UringZcSystemError(-125 /* ECANCELED */, req.vectored ? 'sendmsg_zc' : 'send_zc',
    `the socket was destroyed after ${sent} of this send's ${req.len} bytes had gone to the kernel; the stream ends there`);
}

/** @internal Calls a stream send's 'accepted' hook (sendAccepted) once, with how it ended if it failed. */
export function accept(req: SendRequest): void {
  const f = req.onAccept!;
  req.onAccept = null;
  f(req.err);
}

/** @internal A stream send that can join a StreamBatch: one plain buffer, not from a pool, no signal (it is cancelled alone). */
export function batchable(r: SendRequest): boolean {
  return !r.vectored && r.pool === null && r.signal === null && r.file === null;
}

/** @internal The AbortError of an aborted send, `sent` of whose bytes had gone to the kernel. */
export function abortedError(req: SendRequest, sent: number): UringZcAbortError {
  const what = sent === 0
    ? 'none of its bytes were sent'
    : `${sent} of its ${req.len} bytes had gone to the kernel: the stream is cut there, and nothing more is sent on this socket`;
  return new UringZcAbortError(`the send was aborted; ${what}`, req.signal!.reason, sent);
}
