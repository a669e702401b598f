/**
 * File to socket: the request behind zs.sendFile(). The socket's stream queue orders it with the
 * socket's other sends (it is a SendRequest with `file` set, one at a time like every stream
 * send); this module moves its bytes and reports progress and the end to the socket.
 *
 * io_uring: IORING_OP_SPLICE file -> pipe, then pipe -> socket, through one pipe per socket
 * (created at the first sendFile, raised to PIPE_SIZE with F_SETPIPE_SZ, closed with the socket).
 * Each hop is a separate request that continues from the previous one's result, not an
 * IOSQE_IO_LINK chain: a linked pair breaks on the first short transfer (the pipe or the socket
 * buffer takes less than asked, which is the normal case). Two requests are in flight: the
 * pipe is refilled from the file while the socket drains it. A splice into a TCP socket completes
 * when the kernel has taken the pages (no notification CQE comes: the pages belong to the page
 * cache, no user memory is lent), so the request settles at its last result.
 *
 * Flags: SPLICE_F_NONBLOCK on both hops, so neither ever waits on the pipe (the kernel runs
 * splice in an io-wq worker; a worker parked on a full or empty pipe would only be freed by a
 * cancel): the fill asks for at most the room left in the pipe and the drain for at most what the
 * fills put there, and a full pipe (pages are counted in slots, not bytes) gives EAGAIN, retried
 * after the next drain. The socket is Node's, O_NONBLOCK: a full socket buffer gives EAGAIN too,
 * and an IORING_OP_POLL_ADD (POLLOUT) on the socket waits for room before the drain goes again.
 * SPLICE_F_MORE on a drain while more of the file follows (MSG_MORE: full segments, no partial
 * one pushed between two drains). No SPLICE_F_MOVE: the kernel ignores it since 2.6.21 (pages are
 * referenced, never moved), so it would only mislead a reader.
 *
 * msg_zerocopy / copy backends: sendfile(2) from the file to the socket, on the libuv threadpool
 * (native/file.c says why), through the SyscallRing: it parks the request on EAGAIN until the
 * socket is writable, as it does for sends, and cancels it with the socket's other requests.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { native } from './native.js';
import { UringZcAbortError, UringZcArgumentError, UringZcStateError, UringZcSystemError } from './errors.js';
import { validateOptions, validateSignal, validateUint } from './options.js';
import type { RingOp } from './ring-memory.js';
import { prepPollAdd, prepSplice } from './sqe.js';
import { POLLOUT, SPLICE_F_MORE, SPLICE_F_NONBLOCK } from './uapi.js';
import type { ZeroCopySocket } from './socket.js';

/** Options of zs.sendFile(). */
export interface SendFileOptions {
  /** Where in the file to start, in bytes. Default 0. The descriptor's file position is not used or moved. */
  offset?: number;
  /** How many bytes to send. Default: from `offset` to the end of the file as it is at the call. */
  length?: number;
  /**
   * Aborts the send: before it started (it waits behind earlier sends) it rejects at once with
   * an AbortError and the stream is untouched; once started, what is in the kernel is cancelled
   * and it rejects with an AbortError whose `bytes` says how many of its bytes went.
   */
  signal?: AbortSignal;
}

/** The pipe a socket's splices go through: [read end, write end], capacity in bytes. */
export interface FilePipe {
  readonly r: number;
  readonly w: number;
  readonly size: number;
}

/** What this module needs of the socket's SendRequest. */
export interface FileRequest {
  sent: number;
  readonly len: number;
}

/** The pipe size asked for: 1 MiB, /proc/sys/fs/pipe-max-size's default (native/file.c halves it until accepted). */
const PIPE_SIZE = 1 << 20;
/** Most bytes one sendfile threadpool job moves (bounds how late an abort or destroy is seen). */
const SENDFILE_CHUNK = 16 << 20;
/** Requests in a row that move no byte (EAGAIN on a full pipe, 0 from the socket) before the send fails. */
const MAX_NO_PROGRESS = 64;
const EAGAIN = -11;
const ECANCELED = -125;
const OPTION_NAMES = ['offset', 'length', 'signal'] as const;

const FILL = 0;
const DRAIN = 1;
const WAIT = 2;
const SENDFILE = 3;

/** One kernel request of a FileSend (`kind`: FILL, DRAIN, WAIT or SENDFILE). */
class FileOp implements RingOp {
  readonly sock: ZeroCopySocket;
  constructor(readonly fs: FileSend, readonly kind: number, readonly at: number, readonly len: number, readonly flags: number) {
    this.sock = fs.sock;
  }

  prep(w: Uint32Array, o: number, userData: number): void {
    const fs = this.fs;
    const sockFd = fs.sock.fd;
    switch (this.kind) {
      case FILL:
        prepSplice(w, o, fs.pipe!.w, fs.fd, this.at, this.len, this.flags, userData);
        break;
      case DRAIN:
        prepSplice(w, o, sockFd, fs.pipe!.r, -1, this.len, this.flags, userData);
        break;
      case WAIT:
        prepPollAdd(w, o, sockFd, POLLOUT, userData);
        break;
      default:
        // For the SyscallRing: a SPLICE from a regular file straight to the socket is its sendfile(2).
        prepSplice(w, o, sockFd, fs.fd, this.at, this.len, 0, userData);
    }
  }

  complete(res: number, _flags: number): boolean {
    this.fs.onResult(this, res);
    return true; // one CQE: splice and poll post no notification
  }

  abandon(err: Error): void {
    this.fs.onResult(this, err);
  }
}

/** How a FileSend is being stopped before its end. */
const STOP_NONE = 0;
const STOP_ERROR = 1;
const STOP_ABORT = 2;
const STOP_DESTROY = 3;

/**
 * The moving part of one sendFile(): its file, the range, and the requests in flight. Created by
 * openFileSend() at the call (the path is opened then, so a missing file throws there), started
 * by the socket when it is the stream's turn, ended once no request of it is in the kernel.
 * @internal
 */
export class FileSend {
  /** The SendRequest this belongs to (set by the socket right after construction). */
  req!: FileRequest;
  /** The pipe of the socket, while this send uses it (io_uring). */
  pipe: FilePipe | null = null;
  private readPos: number;
  private readonly endPos: number;
  /** Bytes in the pipe: filled and not drained yet. */
  private inPipe = 0;
  /** Requests of this send in the kernel (or waiting in the ring for a slot). */
  private ops = 0;
  private filling = false;
  private draining = false;
  private waiting = false;
  private needsWait = false;
  private fillBlocked = false;
  private eof = false;
  private noProgress = 0;
  private ended = false;
  private released = false;
  private cancelled = false;
  private stop = STOP_NONE;
  private stopError: Error | null = null;
  private abortReason: unknown = undefined;

  constructor(readonly sock: ZeroCopySocket, readonly fd: number, readonly ownsFd: boolean, readonly offset: number,
    readonly length: number) {
    this.readPos = offset;
    this.endPos = offset + length;
  }

  /** It is this send's turn in the stream. */
  start(): void {
    // Never settle inside the call that queued it (sendFile() or a completion): next tick.
    if (this.length === 0) {
      process.nextTick(() => this.step());
      return;
    }
    if (this.sock.backend === 'io_uring') {
      const p = this.sock.filePipe();
      if (typeof p === 'number') {
        this.stopWith(STOP_ERROR, new UringZcSystemError(p, 'pipe'));
        process.nextTick(() => this.step());
        return;
      }
      this.pipe = p;
    }
    this.step();
  }

  /**
   * The signal aborted once it was the stream's turn (the socket takes a waiting send out of its
   * queue itself): cancel what is in the kernel; it ends when those requests are back.
   */
  abort(reason: unknown): void {
    if (this.ended || this.stop !== STOP_NONE) return;
    this.abortReason = reason;
    this.stopWith(STOP_ABORT, null);
    this.step();
  }

  /** Settled: closes the file when it was opened here. */
  release(): void {
    if (this.released) return;
    this.released = true;
    // Node's fs: in a worker, Node closes what fs opened when the thread ends, and a descriptor
    // closed behind its back would be closed twice (perhaps someone else's by then).
    if (this.ownsFd) closeSync(this.fd);
  }

  private stopWith(kind: number, err: Error | null): void {
    if (this.stop !== STOP_NONE) return;
    this.stop = kind;
    this.stopError = err;
  }

  /** @internal A request's CQE (`res`), or the error it never reached the kernel with. */
  onResult(op: FileOp, res: number | Error): void {
    this.ops--;
    this.sock.fileOps(-1);
    const destroyed = this.sock.isDestroyed;
    if (typeof res !== 'number') {
      this.stopWith(STOP_ERROR, res);
      if (op.kind === FILL) this.filling = false;
      else if (op.kind === DRAIN || op.kind === SENDFILE) this.draining = false;
      else this.waiting = false;
      this.step();
      return;
    }
    switch (op.kind) {
      case FILL:
        this.filling = false;
        if (res > 0) {
          this.inPipe += res;
          this.readPos += res;
        } else if (res === 0) {
          this.eof = true; // the file ends before endPos: it was truncated
        } else if (res === EAGAIN) {
          // The pipe has no free slot (partly used pages count whole): again after a drain.
          this.fillBlocked = true;
          if (++this.noProgress > MAX_NO_PROGRESS) this.stopWith(STOP_ERROR, new UringZcSystemError(res, 'splice'));
        } else {
          this.stopWith(STOP_ERROR, new UringZcSystemError(res, 'splice'));
        }
        break;
      case DRAIN:
        this.draining = false;
        if (res > 0) {
          this.inPipe -= res;
          this.fillBlocked = false;
          this.noProgress = 0;
          this.sock.fileProgress(this.req, res);
        } else if (res === EAGAIN) {
          this.needsWait = true; // the socket buffer is full: POLLOUT, then again
        } else if (res === ECANCELED && (destroyed || this.stop !== STOP_NONE)) {
          // Cancelled by us (abort) or by destroy(): where it ends is decided in step().
        } else if (res === 0) {
          if (++this.noProgress > MAX_NO_PROGRESS) this.stopWith(STOP_ERROR, new UringZcSystemError(-32 /* EPIPE */, 'splice'));
        } else {
          this.stopWith(STOP_ERROR, new UringZcSystemError(res, 'splice'));
        }
        break;
      case WAIT:
        // Any outcome: the drain that follows finds the socket writable, or reports its error.
        this.waiting = false;
        break;
      default:
        this.draining = false;
        if (res > 0) {
          this.readPos += res;
          this.sock.fileProgress(this.req, res);
        } else if (res === 0) {
          this.eof = true;
        } else if (res === ECANCELED && (destroyed || this.stop !== STOP_NONE)) {
          // As for DRAIN.
        } else {
          this.stopWith(STOP_ERROR, new UringZcSystemError(res, 'sendfile'));
        }
    }
    this.step();
  }

  /** Queues what can go now, or ends the send once nothing of it is in the kernel. */
  private step(): void {
    if (this.ended) return;
    if (this.sock.isDestroyed) this.stopWith(STOP_DESTROY, null);
    if (this.stop !== STOP_NONE) {
      if (this.ops === 0) {
        this.end();
      } else if (!this.cancelled) {
        // The drain or poll on the socket (fill requests never wait: SPLICE_F_NONBLOCK), or the
        // sendfile parked on writability. The only requests on this fd: the stream has one active.
        this.cancelled = true;
        this.sock.ring.cancelFd(this.sock.fd);
      }
      return;
    }
    const sent = this.req.sent;
    if (sent === this.length || (this.eof && this.inPipe === 0)) {
      if (this.ops === 0) this.end();
      return;
    }
    if (this.pipe === null) {
      // sendfile(2), one threadpool job at a time.
      if (!this.draining && !this.eof) {
        this.draining = true;
        this.queue(new FileOp(this, SENDFILE, this.readPos, Math.min(this.endPos - this.readPos, SENDFILE_CHUNK), 0));
      }
      return;
    }
    const room = this.pipe.size - this.inPipe;
    if (this.fillBlocked && !this.draining && this.inPipe === 0) this.fillBlocked = false; // nothing will unblock it: retry
    if (!this.filling && !this.eof && !this.fillBlocked && this.readPos < this.endPos && room > 0) {
      this.filling = true;
      // At most half the pipe: the next fill runs while the socket drains this one (two in flight).
      this.queue(new FileOp(this, FILL, this.readPos, Math.min(this.endPos - this.readPos, room, this.pipe.size >>> 1), SPLICE_F_NONBLOCK));
    }
    if (!this.draining && !this.waiting && this.inPipe > 0) {
      if (this.needsWait) {
        this.needsWait = false;
        this.waiting = true;
        this.queue(new FileOp(this, WAIT, 0, 0, 0));
      } else {
        this.draining = true;
        const more = sent + this.inPipe < this.length;
        this.queue(new FileOp(this, DRAIN, 0, this.inPipe, SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0)));
      }
    }
  }

  private queue(op: FileOp): void {
    this.ops++;
    this.sock.fileOps(1);
    this.sock.ring.queueStream(op);
  }

  /** Nothing of it is in the kernel: report the outcome to the socket. */
  private end(): void {
    this.ended = true;
    const sent = this.req.sent;
    // Bytes read from the file and not sent stay in the pipe: it cannot serve the next send.
    if (this.pipe !== null && this.inPipe > 0) this.sock.dropFilePipe();
    this.pipe = null;
    let err: Error | null = null;
    const what = `${sent} of this sendFile's ${this.length} bytes went to the kernel`;
    if (sent === this.length && (this.stop === STOP_ABORT || this.stop === STOP_DESTROY)) {
      // The request in flight at the abort or destroy (a sendfile job on the threadpool cannot
      // be called back; a drain may finish before its cancel) took the file's last bytes: the
      // kernel has all of it, which resolves as a send() taken whole does, and cuts nothing.
    } else if (this.stop === STOP_DESTROY) {
      err = withBytes(new UringZcSystemError(ECANCELED, this.sock.backend === 'io_uring' ? 'splice' : 'sendfile',
        `the socket was destroyed after ${what}; the stream ends there`), sent);
    } else if (this.stop === STOP_ABORT) {
      err = new UringZcAbortError(`the sendFile was aborted after ${what}${cutText(sent)}`, this.abortReason, sent);
    } else if (this.stop === STOP_ERROR) {
      err = withBytes(this.stopError!, sent);
    } else if (sent < this.length) {
      err = withBytes(new UringZcStateError('ERR_URING_ZC_FILE_TRUNCATED',
        `the file ended (it was truncated while it was sent, or is shorter than asked) after ${what}${cutText(sent)}`), sent);
    }
    this.sock.fileEnd(this.req, err);
  }
}

/** What a short sendFile did to the stream (ZeroCopySocket#nextInStream). */
function cutText(sent: number): string {
  return sent === 0 ? '; the stream goes on without it' : ': the stream is cut there, and nothing more is sent on this socket';
}

/** `err` with `bytes`: how many of the sendFile's bytes went to the kernel before it ended. */
function withBytes<E extends Error>(err: E, bytes: number): E & { bytes: number } {
  return Object.assign(err, { bytes });
}

/** sendFile()'s arguments, validated (parseFileSend) and not acted on yet. @internal */
export interface FileArgs {
  readonly file: string | number;
  readonly offset: number;
  readonly length: number | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * Validates sendFile()'s arguments (throws ERR_URING_ZC_INVALID_ARG synchronously; nothing is
 * opened or queued).
 * @internal
 */
export function parseFileSend(sock: ZeroCopySocket, file: unknown, options: SendFileOptions | undefined): FileArgs {
  if (!sock.stream) {
    throw new UringZcArgumentError('sendFile() sends on a stream (TCP) socket; a UDP datagram has no room for a file');
  }
  let offset = 0;
  let length: number | undefined;
  let signal: AbortSignal | undefined;
  if (options !== undefined) {
    validateOptions('sendFile options', options, OPTION_NAMES);
    if (options.offset !== undefined) {
      validateUint('offset', options.offset, 0, Number.MAX_SAFE_INTEGER);
      offset = options.offset;
    }
    if (options.length !== undefined) {
      validateUint('length', options.length, 0, Number.MAX_SAFE_INTEGER);
      length = options.length;
    }
    if (options.signal !== undefined) {
      validateSignal(options.signal);
      signal = options.signal;
    }
  }
  if (typeof file === 'string') {
    if (file.length === 0 || file.includes('\0')) throw new UringZcArgumentError('"file" must be a non-empty path without NUL bytes');
  } else if (typeof file === 'number') {
    validateUint('file', file, 0, 0x7fffffff);
  } else {
    throw new UringZcArgumentError('"file" must be a path (string) or a file descriptor (number)');
  }
  return { file, offset, length, signal };
}

/**
 * Opens the file (a path) or checks it (a descriptor) and makes the send: what can be known at
 * the call (ENOENT, EACCES, EBADF, not a regular file) throws here, synchronously, and nothing
 * is queued.
 * @internal
 */
export function openFileSend(sock: ZeroCopySocket, args: FileArgs): FileSend {
  const { file, offset, length } = args;
  let fd: number;
  let owns: boolean;
  if (typeof file === 'string') {
    try {
      fd = openSync(file, fsConstants.O_RDONLY); // Node opens with O_CLOEXEC
    } catch (e) {
      throw new UringZcSystemError((e as NodeJS.ErrnoException).errno ?? -5 /* EIO */, 'open');
    }
    owns = true;
  } else {
    fd = file;
    owns = false;
  }
  try {
    let st;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw new UringZcSystemError((e as NodeJS.ErrnoException).errno ?? -9 /* EBADF */, 'fstat');
    }
    if (!st.isFile()) throw new UringZcArgumentError('"file" must be a regular file (splice and sendfile read the page cache)');
    const len = length ?? Math.max(0, st.size - offset);
    if (offset + len > Number.MAX_SAFE_INTEGER) throw new UringZcArgumentError('"offset" + "length" must be a safe integer');
    return new FileSend(sock, fd, owns, offset, len);
  } catch (e) {
    if (owns) closeSync(fd);
    throw e;
  }
}

/** The socket's pipe, made on first use: [r, w] with its capacity, or -errno. @internal */
export function openFilePipe(): FilePipe | number {
  const p = native.pipeOpen(PIPE_SIZE);
  if (typeof p === 'number') return p;
  // Closed at thread teardown if JS cannot (native/teardown.c), as the socket's own descriptor.
  native.trackSocket(p[0], false);
  native.trackSocket(p[1], false);
  return { r: p[0], w: p[1], size: p[2] };
}

/** Closes a socket's pipe (native.close also forgets it for teardown). @internal */
export function closeFilePipe(p: FilePipe): void {
  native.close(p.r);
  native.close(p.w);
}
