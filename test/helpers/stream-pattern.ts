/**
 * A byte stream that names every byte's offset: the 32-bit little-endian word at stream offset
 * 4w is patternWord(w). A prefix of it cannot be confused with zeros, with the churn workers'
 * fill byte or with another part of the stream, so a receiver can check that every byte it got is
 * the stream's byte at that offset.
 */

/** The word at stream offset 4w. Never 0x5a5a5a5a (the churn fill) for the offsets used here. */
export function patternWord(w: number): number {
  return (Math.imul(w + 1, 0x9e3779b1) ^ 0x3c6ef372) >>> 0;
}

/** Fills `buf` with the stream's bytes from `offset` (a multiple of 4) on. */
export function fillPattern(buf: Uint8Array, offset: number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  const w0 = offset >>> 2;
  for (let i = 0; i < words.length; i++) words[i] = patternWord(w0 + i);
}

/** Checks received bytes against the pattern, in arrival order. */
export class PatternVerifier {
  /** Bytes received (and checked) so far. */
  received = 0;
  /** Stream offset of the first wrong byte, or -1. */
  mismatchAt = -1;
  /** Up to 64 received bytes from the first wrong one on, as hex. */
  sample = '';
  /** Of the wrong region's first 4 KiB as received: zero bytes, churn fill bytes (0x5a), other. */
  wrong = { zero: 0, churn: 0, other: 0 };
  private scratch = Buffer.alloc(1 << 16);

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const off = this.received;
      const n = Math.min(chunk.length - at, this.scratch.length - (off & 3));
      // Expected bytes for [off, off + n), generated from the word boundary below off.
      const base = off & ~3;
      const span = Math.ceil((off - base + n) / 4) * 4;
      fillPattern(this.scratch.subarray(0, span), base);
      const want = this.scratch.subarray(off - base, off - base + n);
      const got = chunk.subarray(at, at + n);
      if (this.mismatchAt < 0 && !want.equals(got)) {
        let i = 0;
        while (want[i] === got[i]) i++;
        this.mismatchAt = off + i;
        this.sample = got.subarray(i, i + 64).toString('hex');
        for (const b of got.subarray(i, i + 4096)) {
          if (b === 0) this.wrong.zero++;
          else if (b === 0x5a) this.wrong.churn++;
          else this.wrong.other++;
        }
      }
      this.received += n;
      at += n;
    }
  }

  describe(): string {
    if (this.mismatchAt < 0) return `${this.received} bytes, all a correct prefix of the stream`;
    return `${this.received} bytes; first wrong byte at stream offset ${this.mismatchAt} ` +
      `(of the 4 KiB from there: ${this.wrong.zero} zero, ${this.wrong.churn} churn-fill 0x5a, ${this.wrong.other} other); ` +
      `received there: ${this.sample}`;
  }
}
