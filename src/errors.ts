/**
 * Every error uring-zc raises. Match on `code`, never on message text.
 *
 * - Our own rules use Node-style `ERR_URING_ZC_*` codes.
 * - Kernel failures keep the errno name as `code` (`EPIPE`, `ENOMEM`, ...), with `errno` (negative,
 *   as in Node) and `syscall` set; a hint is added to the message where a fix is known.
 * docs/errors.md lists every code.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The codes of UringZcStateError. */
export type UringZcStateCode =
  | 'ERR_URING_ZC_RING_CLOSED'
  | 'ERR_URING_ZC_SOCKET_CLOSED'
  | 'ERR_URING_ZC_POOL_CLOSED'
  | 'ERR_URING_ZC_INVALID_STATE'
  | 'ERR_URING_ZC_FILE_TRUNCATED';

/** A kernel failure's errno name (`EPIPE`, `ECONNRESET`, ...; `E<n>` for a number without one). */
export type ErrnoCode = `E${string}`;

/** Every `code` a UringZcError can have (docs/errors.md lists them). */
export type UringZcCode =
  | 'ERR_URING_ZC_INVALID_ARG'
  | UringZcStateCode
  | 'ERR_URING_ZC_UNSUPPORTED'
  | 'ABORT_ERR'
  | ErrnoCode;

/** Base class of every error thrown or rejected by uring-zc. */
export class UringZcError extends Error {
  readonly code: UringZcCode;
  constructor(code: UringZcCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad argument or option: thrown synchronously, nothing was queued. */
export class UringZcArgumentError extends UringZcError {
  declare readonly code: 'ERR_URING_ZC_INVALID_ARG';
  constructor(message: string) {
    super('ERR_URING_ZC_INVALID_ARG', message);
  }
}

/** The ring or socket is not in a state that allows the call (closed, not connected, ...). */
export class UringZcStateError extends UringZcError {
  declare readonly code: UringZcStateCode;
  constructor(code: UringZcStateCode, message: string) {
    super(code, message);
  }
}

/**
 * An AbortSignal ended the operation: `name` 'AbortError' and `code` 'ABORT_ERR' as Node's own,
 * `cause` the signal's reason. For a send, `bytes` says how many of its bytes had gone to the
 * kernel (0: none; on a stream socket more than 0 means the stream was cut there).
 */
export class UringZcAbortError extends UringZcError {
  declare readonly code: 'ABORT_ERR';
  readonly bytes: number;
  constructor(message: string, reason: unknown, bytes = 0) {
    super('ABORT_ERR', message, { cause: reason });
    this.name = 'AbortError';
    this.bytes = bytes;
  }
}

/** io_uring or a feature of it is not available here; `reason` says why. */
export class UringZcUnsupportedError extends UringZcError {
  declare readonly code: 'ERR_URING_ZC_UNSUPPORTED';
  readonly reason: string;
  constructor(message: string, reason: string) {
    super('ERR_URING_ZC_UNSUPPORTED', `${message}: ${reason}`);
    this.reason = reason;
  }
}

/** A kernel failure: `code` is the errno name, `errno` the negative number, `syscall` where. */
export class UringZcSystemError extends UringZcError {
  declare readonly code: ErrnoCode;
  readonly errno: number;
  readonly syscall: string;
  private readonly hint: string | undefined;
  constructor(errno: number, syscall: string, hint?: string) {
    const name = errnoName(errno);
    const text = ERRNO_TEXT[name] ?? `errno ${errno}`;
    super(name, `${syscall} failed: ${name} (${text})${hint ? `. ${hint}` : ''}`);
    this.errno = errno < 0 ? errno : -errno;
    this.syscall = syscall;
    this.hint = hint;
  }

  /** A fresh error for the same failure (each rejected promise gets its own object). */
  again(): UringZcSystemError {
    return new UringZcSystemError(this.errno, this.syscall, this.hint);
  }
}

/**
 * Where Linux gives one number two names, the one the kernel's own messages and man pages use
 * (os.constants.errno lists ENOTSUP before EOPNOTSUPP).
 */
const PREFERRED_NAME: Record<number, ErrnoCode> = {
  [os.constants.errno.EOPNOTSUPP]: 'EOPNOTSUPP',
  [os.constants.errno.EAGAIN]: 'EAGAIN',
  [os.constants.errno.EDEADLK]: 'EDEADLK',
};

/** The errno name of a (negative or positive) errno number, e.g. -32 -> 'EPIPE'. */
export function errnoName(errno: number): ErrnoCode {
  const n = Math.abs(errno);
  const preferred = PREFERRED_NAME[n];
  if (preferred !== undefined) return preferred;
  for (const [name, value] of Object.entries(os.constants.errno)) {
    if (value === n) return name as ErrnoCode;
  }
  return `E${n}`;
}

/**
 * The errnos we explain, with the kernel's reason in our words. One entry per errno; an errno not
 * listed keeps its name and number and gets a generic message.
 */
const ERRNO_TEXT: Record<string, string> = {
  // The socket type has no zero-copy send path (AF_UNIX, some protocols).
  EOPNOTSUPP: 'zero-copy send is not supported on this socket type; use a TCP or UDP socket, or a copying send',
  // Unknown opcode or flag: the kernel is older than the feature (SEND_ZC 6.0, SENDMSG_ZC 6.1, REPORT_USAGE 6.2).
  EINVAL: 'invalid argument, or the kernel is too old for this request',
  // Pinning pages or registering buffers counts against RLIMIT_MEMLOCK.
  ENOMEM: 'out of memory, or the locked-memory limit (RLIMIT_MEMLOCK) is too low',
  // io_uring_setup refused: seccomp (Docker's default profile) or kernel.io_uring_disabled.
  EPERM: 'operation not permitted (io_uring may be blocked by seccomp or kernel.io_uring_disabled)',
  ENOSYS: 'the kernel has no io_uring (too old, or blocked by seccomp)',
  // The peer is gone or the connection was reset.
  EPIPE: 'broken pipe: the connection is closed for writing',
  ECONNRESET: 'connection reset by peer',
  ECONNREFUSED: 'connection refused (a previous datagram got an ICMP port unreachable)',
  ENOTCONN: 'the socket is not connected and no destination was given',
  EDESTADDRREQ: 'the socket is not connected and no destination was given',
  EMSGSIZE: 'message too long for a single datagram',
  EBADF: 'bad file descriptor',
  ENOTSOCK: 'the file descriptor is not a socket',
  ECANCELED: 'the request was cancelled',
  EAGAIN: 'resource temporarily unavailable',
  ENOBUFS: 'no buffer space available in the kernel',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  EFAULT: 'bad address: the buffer is not mapped',
  EAFNOSUPPORT: 'address family not supported by this socket',
};

/** A readable hint for ENOMEM from pinning or registration. */
export function memlockHint(requestedBytes?: number): string {
  const limit = readMemlockLimit();
  const want = requestedBytes === undefined ? '' : `requested ${requestedBytes} bytes; `;
  return (
    `${want}RLIMIT_MEMLOCK is ${limit === Infinity ? 'unlimited' : `${limit} bytes`}. ` +
    'Raise it: `ulimit -l unlimited` (shell), LimitMEMLOCK=infinity (systemd), ' +
    '`--ulimit memlock=-1` (Docker)'
  );
}

/** The soft RLIMIT_MEMLOCK of this process in bytes (Infinity when unlimited), from /proc. */
export function readMemlockLimit(): number {
  try {
    const text = readFileSync('/proc/self/limits', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === undefined) return NaN;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return NaN;
  }
}

/** Bit 14 of the capability sets (linux/capability.h). */
const CAP_IPC_LOCK = 14;

/**
 * Is CAP_IPC_LOCK in this process's effective set? Then its locked memory (pinned pages, rings,
 * registered buffers) is not counted against RLIMIT_MEMLOCK at all.
 */
export function hasCapIpcLock(): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    if (line === undefined) return false;
    return (BigInt(`0x${line.slice('CapEff:'.length).trim()}`) & (1n << BigInt(CAP_IPC_LOCK))) !== 0n;
  } catch {
    return false;
  }
}

export function ringClosedError(): UringZcStateError {
  return new UringZcStateError('ERR_URING_ZC_RING_CLOSED', 'the ring is closed');
}

export function socketClosedError(): UringZcStateError {
  return new UringZcStateError('ERR_URING_ZC_SOCKET_CLOSED', 'the socket is closed');
}
