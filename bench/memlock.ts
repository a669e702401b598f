/**
 * What RLIMIT_MEMLOCK allows here, computed from the environment (never learnt by failing): the
 * bench skips rows that cannot fit, and the tests skip what needs more locked memory than the
 * process may lock.
 *
 * Facts (Linux 6.18, measured as an unprivileged user, and io_uring's accounting code):
 * - Only a process without CAP_IPC_LOCK is limited; root normally has it, but a container or
 *   `setpriv --bounding-set=-ipc_lock` can run root without it.
 * - The count is per user (all processes of one uid share it), checked against the calling
 *   process's soft limit.
 * - Counted: the ring's own memory (rings and SQE array), registered buffers (their pages), and
 *   each zero-copy send of ordinary memory while in flight ((bytes >> 12) + 2 pages, the
 *   kernel's worst case for a buffer that straddles pages), released at its notification.
 *   Copying sends count nothing.
 */
import { capabilities } from '../src/index.js';
import { hasCapIpcLock } from '../src/errors.js';

const PAGE = 4096;

/** (The library's own check: the probe keeps its ring only where memory is counted.) */
export { hasCapIpcLock };

/**
 * Locked memory a ring of `entries` SQ entries (CQ 4x, as Ring makes it) counts: the rings
 * (a header, 16-byte CQEs, the 4-byte SQ index array) and the 64-byte SQEs, each rounded up to
 * pages. A default Ring (256) counts 9 pages: one fits under 64 KiB, two do not (measured).
 */
export function ringMemlockBytes(entries = 256): number {
  const rings = Math.ceil((1024 + entries * 4 * 16 + entries * 4) / PAGE);
  const sqes = Math.ceil((entries * 64) / PAGE);
  return (rings + sqes) * PAGE;
}

/** Locked memory one zero-copy send of `bytes` from ordinary memory counts while in flight. */
export function zeroCopySendMemlockBytes(bytes: number): number {
  return (Math.floor(bytes / PAGE) + 2) * PAGE;
}

/** Locked memory a registered pool of `count` buffers of `size` bytes counts (whole pages). */
export function poolMemlockBytes(size: number, count: number): number {
  return Math.ceil((size * count) / PAGE) * PAGE + PAGE;
}

/**
 * Why `bytes` of locked memory (see the helpers above) cannot be had here, or null: the process
 * has CAP_IPC_LOCK, or its RLIMIT_MEMLOCK is unlimited or at least `bytes`. Unknown limits
 * count as enough (nothing says otherwise).
 */
export function memlockShortfallReason(bytes: number, what = 'this'): string | null {
  if (hasCapIpcLock()) return null;
  const limit = capabilities().memlockLimit;
  if (!Number.isFinite(limit) || limit >= bytes) return null;
  return `${what} needs ${bytes} bytes of locked memory (rings, registered or in-flight zero-copy buffers) and RLIMIT_MEMLOCK is ${limit} bytes without CAP_IPC_LOCK (raise it: ulimit -l)`;
}
