/**
 * Addresses of JS memory lent to the kernel. A Buffer's address is its ArrayBuffer's base plus its
 * byteOffset; the base is asked of the addon once per ArrayBuffer and cached (the backing store of
 * a non-resizable, non-detached ArrayBuffer never moves; resizable ones are refused at the
 * boundary). The cache is weak: a collected ArrayBuffer takes its entry with it.
 */
import { native } from './native.js';

const baseOf = new WeakMap<ArrayBufferLike, number>();

/** The address of `view`'s first byte. Reading `.buffer` moves small on-heap arrays off-heap first. */
export function addressOf(view: ArrayBufferView): number {
  return baseAddress(view.buffer) + view.byteOffset;
}

/** The address of an ArrayBuffer's first byte. */
export function baseAddress(ab: ArrayBufferLike): number {
  let base = baseOf.get(ab);
  if (base === undefined) {
    base = native.address(ab as ArrayBuffer);
    baseOf.set(ab, base);
  }
  return base;
}

/** A Number below 2^53 as a little-endian u64 at byte `at` of `b` (registration arguments). */
export function writeU64(b: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / 4294967296);
  b.writeUInt32LE(v - hi * 4294967296, at);
  b.writeUInt32LE(hi, at + 4);
}
