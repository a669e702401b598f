/**
 * How a send's outcome reaches its caller: SendResult, the Node-style SendCallback, deliver()
 * (the one place a settled send is reported), and the errors a send settles with. Below the
 * socket and its request modules (src/stream-send.ts, src/datagram.ts), which name these types
 * without importing the socket.
 */
import { memlockHint, UringZcAbortError, UringZcSystemError } from './errors.js';

/** How a send ended. */
export interface SendResult {
  /** Bytes sent: the whole buffer on success. */
  bytes: number;
  /** True when the kernel sent from the buffer without copying (IORING_SEND_ZC_REPORT_USAGE). */
  zeroCopy: boolean;
}

/**
 * Node-style completion callback of send(buf, options, callback), called once the kernel no
 * longer needs the buffer: `err` or null, the bytes sent, and whether the kernel did not copy.
 * (Plain arguments rather than a result object: nothing is allocated per send.)
 */
export type SendCallback = (err: Error | null, bytes: number, zeroCopy: boolean) => void;

/**
 * @internal The 'accepted' event of a stream send (see ZeroCopySocket#sendAccepted): null when
 * the kernel has taken every byte (the next send may go; the memory is still read until the
 * release), or the error the send ends with.
 */
export type AcceptCallback = (err: Error | null) => void;

/** @internal The error a failed send rejects with (`res` is -errno). */
export function sendError(res: number, len: number, zc: boolean, vectored: boolean): UringZcSystemError {
  const hint = res === -12 /* ENOMEM */ ? memlockHint(len) : undefined;
  const op = vectored ? (zc ? 'sendmsg_zc' : 'sendmsg') : zc ? 'send_zc' : 'send';
  return new UringZcSystemError(res, op, hint);
}

/** @internal Reports a settled send to its callback or promise. */
export function deliver(
  to: { callback: SendCallback | null; resolve: ((r: SendResult) => void) | null; reject: ((e: Error) => void) | null },
  err: Error | null, bytes: number, zeroCopy: boolean,
): void {
  if (to.callback !== null) {
    try {
      if (err !== null) to.callback(err, 0, false);
      else to.callback(null, bytes, zeroCopy);
    } catch (e) {
      // The ring is mid-dispatch: finish it, then surface the user's exception as uncaught.
      process.nextTick(() => {
        throw e;
      });
    }
  } else if (err !== null) {
    to.reject!(err);
  } else {
    to.resolve!({ bytes, zeroCopy });
  }
}

/** @internal A send whose signal had aborted before the call: nothing is queued; it rejects (or calls back) on the next tick. */
export function abortedAtOnce(signal: AbortSignal, callback: SendCallback | undefined): Promise<SendResult> | void {
  const err = new UringZcAbortError('the send was aborted before it was queued; none of its bytes were sent', signal.reason);
  if (callback === undefined) return Promise.reject(err);
  process.nextTick(() => deliver({ callback, resolve: null, reject: null }, err, 0, false));
}
