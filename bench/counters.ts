/**
 * What a bench worker's row counts (bench/worker.ts's send loops, bench/file.ts's file rows), and
 * the start of the clock after the warm-up. A module of its own because both of those use it and
 * worker.ts imports file.ts.
 */

/** What the send loop counts; the modes add to it from their completion callbacks. */
export interface Counters {
  sends: number;
  bytes: number;
  copied: number;
  notifs: number;
  errors: number;
  firstError: string | null;
  /** Notifications so far (uring-zc modes: from the socket's stats), read when the clock starts. */
  notifsNow: (() => number) | null;
  /** notifsNow() when the clock started. */
  notifsBase: number;
}

/** The clock starts: the counters start over (errors are kept: they count whenever they happen). */
export function startOver(c: Counters): void {
  c.sends = 0;
  c.bytes = 0;
  c.copied = 0;
  c.notifsBase = c.notifsNow?.() ?? 0;
}
