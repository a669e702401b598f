/**
 * Pure SQE encoders: each fills one 64-byte SQE in the mapped SQE array, seen as 16 Uint32 words
 * starting at word `o`. No syscalls, no allocation. The kernel rejects requests whose unused
 * fields are not zero (e.g. SEND_ZC checks addr3 and __pad2): the words no encoder uses are never
 * written at all, so they keep the zeros of the fresh mapping; every other word is written each time.
 *
 * Layout (struct io_uring_sqe): w0 = opcode | flags << 8 | ioprio << 16; w1 = fd; w2,w3 = off/addr2;
 * w4,w5 = addr; w6 = len; w7 = op flags (msg_flags, cancel_flags); w8,w9 = user_data;
 * w10 = buf_index | personality << 16; w11 = splice_fd_in / addr_len; w12..w15 = addr3, __pad2.
 * 64-bit values are Numbers below 2^53 split into lo/hi words (no BigInt on the hot path).
 */
import { IORING_OP_ASYNC_CANCEL, IORING_OP_NOP, IORING_OP_POLL_ADD, IORING_OP_SPLICE } from './uapi.js';

const TWO_32 = 4294967296;
/** 2^-32: multiplying by it is exact (a power of two) and much cheaper than dividing by 2^32. */
const INV_TWO_32 = 1 / TWO_32;

/**
 * SEND / SEND_ZC (`opcode`), with sendto semantics when `dest` is not 0 (addr2 + addr_len).
 * `ioprio` carries IORING_RECVSEND_* / IORING_SEND_ZC_* flags; `bufIndex` is used with FIXED_BUF.
 */
export function prepSend(
  w: Uint32Array, o: number, opcode: number, sqeFlags: number, ioprio: number, fd: number,
  addr: number, len: number, msgFlags: number, dest: number, destLen: number, bufIndex: number,
  userData: number,
): void {
  w[o] = opcode | (sqeFlags << 8) | (ioprio << 16);
  w[o + 1] = fd;
  setU64(w, o + 2, dest);
  setU64(w, o + 4, addr);
  w[o + 6] = len;
  w[o + 7] = msgFlags;
  w[o + 8] = userData;
  // w9 (user_data high), w12..w15 (addr3, __pad2): zero since the kernel mapped the SQE array, and
  // no encoder here ever writes them, so they are not stored again on the hot path.
  w[o + 10] = bufIndex;
  w[o + 11] = destLen;
}

/**
 * Stores a Number below 2^53 as two little-endian 32-bit words at word `o` (SQE fields, msghdrs,
 * iovecs). lo = v - hi * 2^32 rather than v % 2^32: a double modulo is a call to fmod; and hi by
 * multiplying with 2^-32, exact (a power of two) and cheaper than a division.
 */
export function setU64(w: Uint32Array, o: number, v: number): void {
  const hi = Math.floor(v * INV_TWO_32);
  w[o] = v - hi * TWO_32;
  w[o + 1] = hi;
}

/**
 * SENDMSG / SENDMSG_ZC (`opcode`): `msghdr` is the address of a struct msghdr that must stay alive
 * (with its iovecs, name and control data) until the request's result CQE.
 */
export function prepSendmsg(
  w: Uint32Array, o: number, opcode: number, sqeFlags: number, ioprio: number, fd: number,
  msghdr: number, msgFlags: number, bufIndex: number, userData: number,
): void {
  prepSend(w, o, opcode, sqeFlags, ioprio, fd, msghdr, 1, msgFlags, 0, 0, bufIndex, userData);
}

/** ASYNC_CANCEL: `cancelFlags` (IORING_ASYNC_CANCEL_*) select by fd, any, or all. */
export function prepCancel(w: Uint32Array, o: number, fd: number, cancelFlags: number, userData: number): void {
  prepSend(w, o, IORING_OP_ASYNC_CANCEL, 0, 0, fd, 0, 0, cancelFlags, 0, 0, 0, userData);
}

/** NOP, used by tests and the probe. */
export function prepNop(w: Uint32Array, o: number, userData: number): void {
  prepSend(w, o, IORING_OP_NOP, 0, 0, -1 >>> 0, 0, 0, 0, 0, 0, 0, userData);
}

/**
 * SPLICE: `len` bytes from `fdIn` to `fdOut` (splice(2)); one of them must be a pipe. `offIn` is
 * the offset to read `fdIn` at (a file), or -1 to use and move its position (a pipe: it has none).
 * The output side never has an offset here (a pipe or a socket): off = -1. Same words as
 * prepSend(): fd = fdOut, off = off_out, addr = splice_off_in, len, op flags = splice_flags,
 * w11 = splice_fd_in. Since Linux 5.7.
 */
export function prepSplice(w: Uint32Array, o: number, fdOut: number, fdIn: number, offIn: number, len: number,
  spliceFlags: number, userData: number): void {
  w[o] = IORING_OP_SPLICE;
  w[o + 1] = fdOut;
  w[o + 2] = 0xffffffff; // off_out = (u64)-1: no offset (a pipe or socket)
  w[o + 3] = 0xffffffff;
  if (offIn < 0) {
    w[o + 4] = 0xffffffff;
    w[o + 5] = 0xffffffff;
  } else {
    setU64(w, o + 4, offIn);
  }
  w[o + 6] = len;
  w[o + 7] = spliceFlags;
  w[o + 8] = userData;
  w[o + 10] = 0;
  w[o + 11] = fdIn;
}

/** POLL_ADD, one shot: completes with the ready events of `fd` among `events` (poll32_events). Since Linux 5.1. */
export function prepPollAdd(w: Uint32Array, o: number, fd: number, events: number, userData: number): void {
  prepSend(w, o, IORING_OP_POLL_ADD, 0, 0, fd, 0, 0, events, 0, 0, 0, userData);
}
