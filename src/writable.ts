/**
 * ZeroCopyWriteStream: a stream.Writable over a ZeroCopySocket (TCP), made by
 * `zs.createWriteStream(options)`.
 *
 * Why the write callback fires at 'accepted' and not at the release: Node's Writable runs one
 * `_write`/`_writev` at a time and emits 'drain' only when its buffer is empty, so a callback held
 * until the release (after the peer's ACK on TCP) makes the stream stop-and-wait (measured 5.8x
 * slower elsewhere). The kernel's acceptance of the bytes (the result CQE; sendmsg returned) is
 * when the next request may go. The memory is still read until the release, so the stream keeps
 * every chunk referenced until then (the socket's request holds it) and counts it as
 * "unreleased"; past `maxUnreleased` the write callback is held until releases bring the count
 * back under, and with it Node's buffer, write()'s return value and 'drain': a fast producer cannot
 * pin unbounded memory.
 *
 * Lifetime: a chunk must not be modified after write() (until the stream has finished or closed):
 * the kernel may read it until its release, long after its write callback.
 */
import { Writable } from 'node:stream';
import { UringZcArgumentError, UringZcUnsupportedError } from './errors.js';
import { validateBoolean, validateOptions, validateSignal, validateUint } from './options.js';
import type { ZeroCopySocket } from './socket.js';

/** Options of ZeroCopySocket#createWriteStream(). */
export interface WriteStreamOptions {
  /**
   * Node's highWaterMark: write() returns false once this many bytes are written and their
   * callback has not run (buffered in the stream, in the kernel's hands not yet accepted, or held
   * for `maxUnreleased`). Default DEFAULT_STREAM_HIGH_WATER_MARK (1 MiB).
   */
  highWaterMark?: number;
  /**
   * Most bytes accepted by the kernel and not yet released before a write callback is held
   * (and so write() returns false and 'drain' waits). Default: the larger of highWaterMark and
   * DEFAULT_MAX_UNRELEASED (4 MiB). Pinned memory stays below about maxUnreleased + 2 x highWaterMark.
   */
  maxUnreleased?: number;
  /** As Node's Writable: strings written are turned into Buffers with their encoding (default true). */
  decodeStrings?: boolean;
  /** As Node's Writable (default 'utf8'). */
  defaultEncoding?: BufferEncoding;
  /** As Node's Writable: aborting it destroys the stream with an AbortError. */
  signal?: AbortSignal;
}

/** Default highWaterMark of a ZeroCopyWriteStream (bytes). */
export const DEFAULT_STREAM_HIGH_WATER_MARK = 1 << 20;
/** Default floor of maxUnreleased (bytes): see WriteStreamOptions#maxUnreleased. */
export const DEFAULT_MAX_UNRELEASED = 4 << 20;
/**
 * Most bytes in one vectored request of _writev(): the socket's own per-request size on a stream
 * (MAX_STREAM_CHUNK in stream-send.ts; each request is pinned and counted against RLIMIT_MEMLOCK as a
 * whole, and its result is where the stream shows progress). A single longer chunk goes alone.
 */
const MAX_REQUEST_BYTES = 4 << 20;
/** The kernel's iovec limit per message (UIO_MAXIOV, IOV_MAX in socket.ts). */
const MAX_IOVECS = 1024;
const OPTION_NAMES = ['highWaterMark', 'maxUnreleased', 'decodeStrings', 'defaultEncoding', 'signal', 'objectMode'] as const;

type Callback = (err?: Error | null) => void;

/**
 * Calls a callback of Node's Writable from the socket's completion path; an exception thrown by
 * user code under it (a 'drain' listener, a write callback) surfaces as uncaught after the ring
 * finished its dispatch, as the socket's own callbacks do.
 */
function callNode(cb: Callback, err?: Error | null): void {
  try {
    cb(err);
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}

/**
 * A stream.Writable that sends through a ZeroCopySocket without copying (each chunk is the
 * memory the kernel sends from). Write callbacks fire when the kernel accepted the bytes;
 * 'finish' only once every chunk is released; backpressure counts unreleased bytes.
 * See docs/api.md, "zs.createWriteStream()".
 */
export class ZeroCopyWriteStream extends Writable {
  /** The socket it sends through. */
  readonly socket: ZeroCopySocket;
  /** See WriteStreamOptions#maxUnreleased. */
  readonly maxUnreleased: number;
  /** Bytes handed to the socket and not yet released by the kernel. */
  #unreleased = 0;
  /** Socket sends not settled (released) yet. */
  #sends = 0;
  /** Vectored requests made (each a sendv()), for tests and stats. */
  #vectored = 0;
  /** The write callback held until releases bring #unreleased to maxUnreleased, or null. */
  #held: Callback | null = null;
  /** _final's callback, waiting for the last release, or null. */
  #final: Callback | null = null;

  /** @internal Use zs.createWriteStream(). */
  constructor(socket: ZeroCopySocket, options: WriteStreamOptions = {}) {
    validateOptions('createWriteStream options', options, OPTION_NAMES);
    if ((options as { objectMode?: unknown }).objectMode !== undefined && (options as { objectMode?: unknown }).objectMode !== false) {
      throw new UringZcArgumentError('"objectMode" is not supported: a zero-copy stream sends bytes (Buffers, typed arrays, strings)');
    }
    if (options.highWaterMark !== undefined) validateUint('highWaterMark', options.highWaterMark, 0, 2 ** 31);
    if (options.maxUnreleased !== undefined) validateUint('maxUnreleased', options.maxUnreleased, 0, 2 ** 40);
    if (options.decodeStrings !== undefined) validateBoolean('decodeStrings', options.decodeStrings);
    if (options.defaultEncoding !== undefined && !Buffer.isEncoding(options.defaultEncoding)) {
      throw new UringZcArgumentError(`"defaultEncoding" must be a Buffer encoding, got ${JSON.stringify(options.defaultEncoding)}`);
    }
    if (options.signal !== undefined) validateSignal(options.signal);
    if (socket.type !== 'tcp') {
      // Writes are not datagrams: Node joins buffered writes into one _writev, and the chunking of
      // a producer (a file's 64 KiB reads) is no message boundary.
      throw new UringZcUnsupportedError('createWriteStream() on a UDP socket', 'a stream has no datagram boundaries; send each datagram with send()');
    }
    const hwm = options.highWaterMark ?? DEFAULT_STREAM_HIGH_WATER_MARK;
    super({
      highWaterMark: hwm,
      decodeStrings: options.decodeStrings ?? true,
      defaultEncoding: options.defaultEncoding ?? 'utf8',
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    this.socket = socket;
    this.maxUnreleased = options.maxUnreleased ?? Math.max(hwm, DEFAULT_MAX_UNRELEASED);
  }

  /** Bytes written to the socket whose memory the kernel has not released yet (still pinned). */
  get writableUnreleased(): number {
    return this.#unreleased;
  }

  /** @internal Vectored requests this stream made (_writev), for tests. */
  get vectoredSends(): number {
    return this.#vectored;
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: Callback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    if (buf.length === 0) {
      callback();
      return;
    }
    this.#submit([buf], buf.length, (err) => this.#accepted(err, callback));
  }

  override _writev(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, callback: Callback): void {
    // Groups of at most MAX_IOVECS chunks and MAX_REQUEST_BYTES (a longer chunk alone), each one
    // request; the callback runs when the kernel has accepted them all.
    const groups: Buffer[][] = [];
    const sizes: number[] = [];
    let group: Buffer[] = [];
    let size = 0;
    for (const { chunk, encoding } of chunks) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
      if (buf.length === 0) continue;
      if (group.length > 0 && (group.length === MAX_IOVECS || size + buf.length > MAX_REQUEST_BYTES)) {
        groups.push(group);
        sizes.push(size);
        group = [];
        size = 0;
      }
      group.push(buf);
      size += buf.length;
    }
    if (group.length > 0) {
      groups.push(group);
      sizes.push(size);
    }
    if (groups.length === 0) {
      callback();
      return;
    }
    if (groups.length === 1) {
      this.#submit(groups[0]!, sizes[0]!, (err) => this.#accepted(err, callback));
      return;
    }
    // One callback for the _writev, decided (held or not) once every request was accepted.
    let left = groups.length;
    let first: Error | null = null;
    const join = (err: Error | null): void => {
      if (err !== null && first === null) first = err;
      if (--left === 0) this.#accepted(first, callback);
    };
    for (let i = 0; i < groups.length; i++) this.#submit(groups[i]!, sizes[i]!, join);
  }

  /** One socket send of `bufs` (send() for one, sendv() for more); `onAccept` at 'accepted'. */
  #submit(bufs: Buffer[], len: number, onAccept: (err: Error | null) => void): void {
    this.#unreleased += len;
    this.#sends++;
    try {
      if (bufs.length > 1) this.#vectored++;
      // 'accepted' can come in the middle of the socket's completion handling (one result of a
      // batch of several sends): the write callback, which may write again at once, runs after it.
      this.socket.sendAccepted(bufs.length === 1 ? bufs[0]! : bufs, (err) => process.nextTick(onAccept, err),
        (err) => this.#released(len, err));
    } catch (e) {
      // Refused before anything was queued (the socket throws only for bad arguments).
      this.#unreleased -= len;
      this.#sends--;
      process.nextTick(onAccept, e as Error);
    }
  }

  /**
   * The kernel accepted the requests of one _write/_writev (err null), or one ended with `err`:
   * the write callback runs, or is held while too many bytes are unreleased (one write is in
   * flight at a time, so one callback at most is held).
   */
  #accepted(err: Error | null, callback: Callback): void {
    if (err !== null) {
      // Node destroys the stream with it (autoDestroy); the release still comes for the memory.
      callNode(callback, err);
      return;
    }
    if (this.#unreleased > this.maxUnreleased && !this.destroyed) {
      this.#held = callback;
      return;
    }
    callNode(callback);
  }

  /** The kernel released a send's memory (every CQE of it came). */
  #released(len: number, err: Error | null): void {
    this.#unreleased -= len;
    this.#sends--;
    // An error is reported at 'accepted' first; this is only a safety net.
    if (err !== null && !this.destroyed) this.destroy(err);
    const held = this.#held;
    if (held !== null && (this.#unreleased <= this.maxUnreleased || this.destroyed)) {
      this.#held = null;
      callNode(held);
    }
    if (this.#sends === 0 && this.#final !== null) {
      const f = this.#final;
      this.#final = null;
      callNode(f);
    }
  }

  override _final(callback: Callback): void {
    // Every write callback has run (the kernel accepted everything): 'finish' waits for the
    // releases, so that the caller may reuse or drop the memory and close the socket after it.
    if (this.#sends === 0) {
      callback();
      return;
    }
    this.#final = callback;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#final = null;
    const held = this.#held;
    this.#held = null;
    // The bytes of a held write were accepted: its callback runs (Node reports the destroy).
    if (held !== null) callNode(held);
    if (this.writableFinished && this.#sends === 0) {
      // After 'finish' (autoDestroy): everything went out and was released; the socket stays.
      callback(err);
      return;
    }
    // Destroyed before 'finish' (destroy(), an error, an aborted signal): the byte stream is cut
    // at a point the peer cannot know, so the socket takes no more sends. Its destroy() cancels
    // what is in the kernel and resolves once every Buffer is released; 'close' comes then.
    this.socket.destroy().then(() => callback(err), (e: unknown) => callback((err ?? e) as Error));
  }
}
