/**
 * struct msghdr / struct iovec (and the UDP_SEGMENT control message) written for the kernel in
 * 32-bit words: into the ring's scratch, which the kernel consumes at submission, or into a Buffer
 * the request holds. Used by the request objects (src/stream-send.ts, src/datagram.ts).
 */
import { addressOf } from './buffers.js';
import type { Ring } from './ring.js';
import { setU64 } from './sqe.js';
import type { SyscallRing } from './syscall.js';
import { SOL_UDP, UDP_SEGMENT } from './uapi.js';

const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;

/** CMSG_SPACE(sizeof(uint16_t)): a cmsghdr (16 bytes) and the segment size, padded to 8. */
const GSO_CMSG_SPACE = 24;

/**
 * @internal Where a request's struct msghdr goes: the ring's scratch (consumed by the kernel at submission)
 * or, for control data (read by the socket layer at issue time) and when the scratch is full, a
 * Buffer of its own that the request holds until its result CQE (`holder.msg`). Returns the
 * msghdr's address.
 */
export function placeMsg(ring: Ring | SyscallRing, holder: { msg: Buffer | null }, iov: readonly number[], skip: number, destAddr: number,
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
 * @internal An iovec array for IORING_SEND_VECTORIZED (`iov` = [addr, len] per chunk), in the ring's
 * scratch or a Buffer `holder` keeps to the result CQE, as placeMsg(). Returns its address.
 */
export function placeIovecs(ring: Ring | SyscallRing, holder: { msg: Buffer | null }, iov: readonly number[]): number {
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
