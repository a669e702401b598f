/**
 * The only importer of the native addon, and its typed surface. The addon sets up and maps rings,
 * enters, registers, polls the ring fd and offers a few socket syscalls; every function returns a
 * negative errno instead of throwing for kernel failures, so that errors.ts maps them in one place.
 */
import { loadAddon, PREBUILT_PLATFORMS } from './binaries.js';
import { UringZcError } from './errors.js';

export interface RingOffsets {
  head: number;
  tail: number;
  ringMask: number;
}

export interface SetupResult {
  fd: number;
  features: number;
  flags: number;
  sqEntries: number;
  cqEntries: number;
  sqOff: RingOffsets & { flags: number; dropped: number };
  cqOff: RingOffsets & { overflow: number; cqes: number };
  /** The SQ ring (and the CQ ring too with IORING_FEAT_SINGLE_MMAP). */
  rings: ArrayBuffer;
  /** The CQ ring when it is mapped separately (kernels without SINGLE_MMAP). */
  cqRing?: ArrayBuffer;
  sqes: ArrayBuffer;
  /** The ring's words for the teardown in C (src/native/teardown.c); see RingMemory. */
  shared: ArrayBuffer;
}

export type PollHandle = { readonly __brand: 'PollHandle' };

export interface NativeBinding {
  setup(entries: number, flags: number, cqEntries: number): SetupResult | number;
  enter(fd: number, toSubmit: number, minComplete: number, flags: number, timeoutNs?: number): number;
  register(fd: number, opcode: number, arg: ArrayBufferView | null, nrArgs: number): number;
  unmap(mapping: ArrayBuffer): number;
  address(buffer: ArrayBuffer | ArrayBufferView): number;
  pollStart(fd: number, onReadable: (status: number) => void): PollHandle;
  pollRef(handle: PollHandle, on: boolean): void;
  pollStop(handle: PollHandle): void;
  dup(fd: number): number;
  close(fd: number): number;
  /** [domain, type, protocol, connected (1|0), inode] or -errno. */
  sockInfo(fd: number): [number, number, number, number, number] | number;
  /** Ends a ring whose mappings were unmapped: detaches `shared`, forgets the ring, closes its fd. */
  release(shared: ArrayBuffer): number;
  /** Records an adopted descriptor for thread teardown (reset if a stream, closed); close() forgets it. With `inode`, a stream socket is claimed as the process's one writer of it: -EBUSY when it is already. */
  trackSocket(fd: number, isStream: boolean, inode?: number): number;
  /**
   * Makes `fd` (recorded with its inode) the one reader of its socket's MSG_ZEROCOPY completions,
   * process-wide: the number the socket's next zero-copy send gets, or -EBUSY when another
   * descriptor reads them. close() lets go.
   */
  claimErrqueue(fd: number): number;
  /** Where the socket's zero-copy counter stands, kept for the next reader: 0 or -ENOENT. */
  setErrqueueNext(fd: number, id: number): number;
  /** setsockopt of an int option: 0 or -errno. */
  setSockOpt(fd: number, level: number, name: number, value: number): number;
  /**
   * Drains MSG_ZEROCOPY completions into `out` as [lo, hi, copied] triples: how many, or -errno (-EAGAIN: none);
   * with `expect`, it stops once they cover that many numbers.
   */
  zcCompletions(fd: number, out: Uint32Array, expect?: number): number;
  epollCreate(): number;
  epollCtl(epfd: number, op: number, fd: number, events: number): number;
  /** Never waits: [fd, events] pairs into `out`; how many, or -errno. */
  epollWait(epfd: number, out: Int32Array): number;
  /** A UDP socket on 127.0.0.1 connected to itself (for the probe), or -errno. */
  probeSocket(): number;
  /** Resets a TCP socket whose SO_LINGER asks for a reset (1), or leaves it (0); -errno. */
  resetIfLingering(fd: number): number;
  /** Performs the send the SQE in `sqe` describes as one non-blocking sendto/sendmsg (MSG_ZEROCOPY with `zc`): bytes or -errno. */
  sqeSend(sqe: Uint32Array, zc: boolean): number;
  /**
   * Performs send SQEs 0..n-1 of `sqes` (16 words each) in order, consecutive ones on one datagram socket as one
   * sendmmsg; res[i] = bytes or -errno. Stops after the first that fails; returns how many were performed.
   */
  sqeSendBatch(sqes: Uint32Array, n: number, msgZc: boolean, res: Int32Array): number;
  /** A pipe (O_CLOEXEC) raised to `size` bytes where allowed: [readFd, writeFd, capacity] or -errno. */
  pipeOpen(size: number): [number, number, number] | number;
  /**
   * sendfile(2) of up to `count` bytes from `offset` on the libuv threadpool (native/file.c): 0 or
   * -errno now, then `callback(bytes | 0 at end of file | -errno)` on this thread.
   */
  sendfileAsync(outFd: number, inFd: number, offset: number, count: number, callback: (res: number) => void): number;
}

/**
 * The addon through node-gyp-build (src/binaries.ts): a source build in build/Release, else the
 * package's prebuild for this platform. Where neither exists, says what to do instead of
 * node-gyp-build's bare "No native build was found".
 */
function load(): NativeBinding {
  try {
    return loadAddon() as NativeBinding;
  } catch (err) {
    const found = (err as Error).message;
    throw new UringZcError(
      'ERR_URING_ZC_UNSUPPORTED',
      `uring-zc: cannot load its native addon for ${process.platform}-${process.arch}: ${found}. ` +
        `The npm package carries prebuilt binaries for ${PREBUILT_PLATFORMS.join(' and ')} (glibc); elsewhere the install ` +
        'builds one from source, which needs python3, make and a C compiler: install them, then run `npm rebuild uring-zc`.',
      { cause: err },
    );
  }
}

export const native: NativeBinding = load();
