/**
 * Fitting a zero-copy datagram into the kernel's skb fragments (net.core.max_skb_frags): how many
 * pages a datagram's chunks touch, the limit, and the slab sendv() copies small chunks (headers)
 * into so that a datagram fits. Used by ZeroCopySocket#sendv (src/socket.ts).
 */
import { readFileSync } from 'node:fs';
import { addressOf } from './buffers.js';

/** sendv() of a zero-copy datagram copies chunks this small (see copySmallChunks)... */
const SMALL_CHUNK = 2048;
/** ...when they add up to at most this many bytes. */
const SMALL_TOTAL = 8192;
/** A slab of small-chunk copies: SMALL_TOTAL with page padding fits a fresh one many times over. */
const SLAB_SIZE = 64 * 1024;
const PAGE_SIZE = 4096;
const INV_PAGE = 1 / PAGE_SIZE;

/**
 * @internal sendv()'s copies of small chunks, one per socket: the current slab, its address,
 * bytes used.
 */
export class ChunkSlab {
  private slab: Buffer | null = null;
  private slabAddr = 0;
  private slabUsed = 0;

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
  copySmallChunks(list: readonly Uint8Array[], iov: number[]): Buffer | null {
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

  /** Lets go of the slab (the socket closed: it keeps no memory alive). */
  drop(): void {
    this.slab = null;
  }
}

/** @internal Pages touched by the chunks (each chunk's first to last page). */
export function pagesSpanned(iov: readonly number[]): number {
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
/** @internal net.core.max_skb_frags of this network namespace (read once; 17 when unreadable). */
export function maxSkbFrags(): number {
  if (maxFrags === undefined) {
    try {
      maxFrags = Number(readFileSync('/proc/sys/net/core/max_skb_frags', 'utf8').trim()) || 17;
    } catch {
      maxFrags = 17;
    }
  }
  return maxFrags;
}
