/**
 * The kernel requests of datagram sends (UDP): DatagramSend, one plain datagram, the lean hot
 * path; DatagramVector, sendv() of one datagram. Each fills its own SQE and reports its CQEs to
 * the socket (ZeroCopySocket, src/socket.ts), which settles and reuses them; the socket is seen
 * here only through the DatagramSender interface (no import of the socket).
 */
import { placeIovecs, placeMsg } from './msghdr.js';
import type { SendCallback, SendResult } from './outcome.js';
import { giveBackLeases, type BufferPool } from './pool.js';
import type { Ring } from './ring.js';
import type { RingOp } from './ring-memory.js';
import { prepSend, prepSendmsg } from './sqe.js';
import type { SyscallRing } from './syscall.js';
import { IORING_CQE_F_MORE, IORING_CQE_F_NOTIF, IORING_NOTIF_USAGE_ZC_COPIED, IORING_OP_SEND, IORING_OP_SEND_ZC, IORING_OP_SENDMSG, IORING_OP_SENDMSG_ZC, IORING_RECVSEND_FIXED_BUF } from './uapi.js';

/** @internal What the datagram requests need of their socket (a ZeroCopySocket). */
export interface DatagramSender {
  readonly fd: number;
  readonly ring: Ring | SyscallRing;
  readonly usageFlag: number;
  readonly vectorFlag: number;
  readonly sockaddrLen: number;
  onDatagramResult(res: number): void;
  settleDatagram(op: DatagramSend): void;
}

const EMPTY_BUF = new Uint8Array(0);
// DatagramSend state bits (the socket reads them as it settles a datagram).
/** @internal */ export const GOT_RESULT = 1;
const EXPECT_NOTIF = 2;
/** @internal */ export const GOT_NOTIF = 4;
/** @internal */ export const WAS_COPIED = 8;

/**
 * @internal One plain datagram send (no GSO, no vector): the lean common case of UDP servers, one kernel
 * request with one or two CQEs. Kept apart from SendRequest because per-send JS work is the
 * whole difference between a Node sender and a C one here (few fields, no stream logic).
 */
export class DatagramSend implements RingOp {
  sock: DatagramSender;
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

  constructor(sock: DatagramSender, buf: Uint8Array, addr: number, len: number, zc: boolean, auto: boolean,
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
 * @internal sendv() of one datagram (no GSO): a DatagramSend whose bytes are a list of chunks, sent as
 * IORING_OP_SENDMSG(_ZC) with an iovec each. One kernel request, as a datagram cannot be split;
 * measured (bench/vector.ts): the kernel sends [1 KiB header, body] as fast as the body alone,
 * so the header rides along as one more zero-copy fragment instead of a separate copying send.
 */
export class DatagramVector extends DatagramSend {
  readonly chunks: Uint8Array[];
  /** Address and length of each chunk, [addr, len, addr, len, ...]. */
  readonly iov: number[];
  /** Pool buffers lent: [pool, index, pool, index, ...], or null. `pool` is the first of them. */
  leases: (BufferPool | number)[] | null;
  /** The msghdr when the ring's scratch was full, held until the result CQE. */
  msg: Buffer | null;
  /** The socket's small-chunk slab when chunks were copied into it, held to the notification. */
  slab: Buffer | null;

  constructor(sock: DatagramSender, chunks: Uint8Array[], iov: number[], len: number, zc: boolean, auto: boolean,
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
