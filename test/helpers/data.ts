/**
 * Deterministic test data: a seeded PRNG (mulberry32) for sizes and contents, so every run sends
 * the same bytes and a failure can be replayed.
 */

/** mulberry32: small, fast, good enough to make payloads that differ from send to send. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + (this.nextU32() % (max - min + 1));
  }

  /** A size in [min, max], log-uniform: as many tiny sends as huge ones. */
  logSize(min: number, max: number): number {
    const lo = Math.log(min);
    const hi = Math.log(max + 1);
    const v = Math.floor(Math.exp(lo + (hi - lo) * (this.nextU32() / 4294967296)));
    return Math.min(max, Math.max(min, v));
  }

  /** Fills `buf` with pseudo-random bytes. */
  fill(buf: Uint8Array): Uint8Array {
    const n = buf.length;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = this.nextU32();
      buf[i] = v & 0xff;
      buf[i + 1] = (v >>> 8) & 0xff;
      buf[i + 2] = (v >>> 16) & 0xff;
      buf[i + 3] = v >>> 24;
    }
    if (i < n) {
      let v = this.nextU32();
      for (; i < n; i++, v >>>= 8) buf[i] = v & 0xff;
    }
    return buf;
  }

  /** A fresh Buffer of `n` pseudo-random bytes. */
  bytes(n: number): Buffer {
    return this.fill(Buffer.allocUnsafe(n)) as Buffer;
  }
}

/** A datagram that names itself: 4-byte sequence number, then seeded content. */
export function datagram(seq: number, size: number, seed = 0x5eed): Buffer {
  const b = new Prng(seed ^ Math.imul(seq + 1, 0x9e3779b1)).bytes(size);
  if (size >= 4) b.writeUInt32BE(seq >>> 0, 0);
  return b;
}

/** The index of the first byte where `a` and `b` differ (their common length when one is a prefix). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
