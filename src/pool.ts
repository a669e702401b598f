/**
 * Registered buffer pools (IORING_REGISTER_BUFFERS2 / IORING_REGISTER_BUFFERS_UPDATE).
 *
 * A pool is one page-aligned region, registered with the ring as one entry of its buffer table
 * and cut into `count` buffers of `bufferSize` bytes. Sends from it use IORING_RECVSEND_FIXED_BUF:
 * the kernel pinned its pages once at registration, so no send pays for pinning (the cost that
 * makes unregistered zero copy lose to copying below ~16-32 KB).
 *
 * Lifetime: acquire() lends a buffer to the caller; a send of it (or of a slice) takes it over and
 * it returns to the pool only when its last send's notification has come, never earlier (error,
 * socket close, ring close included). A buffer that was acquired but is not going to be sent goes
 * back with release(). close() waits for every buffer in flight, then unregisters the region.
 *
 * Where nothing registers memory (the msg_zerocopy and copy backends: no ring), createBufferPool()
 * makes the same pool of plain page-aligned memory: the same lending and returning at the release,
 * `registeredBytes` 0, and each send pins (or copies) as a send of any Buffer does.
 */
import { markAsUntransferable } from 'node:worker_threads';
import { baseAddress, writeU64 } from './buffers.js';
import { memlockHint, ringClosedError, UringZcAbortError, UringZcArgumentError, UringZcStateError, UringZcSystemError, UringZcUnsupportedError } from './errors.js';
import { native } from './native.js';
import { validateOptions, validateSignal, validateUint } from './options.js';
import { capabilities, chooseBackend, validateBackendOption } from './probe.js';
import type { BackendName } from './syscall.js';
import { defaultRing, Ring } from './ring.js';
import { IORING_REGISTER_BUFFERS2, IORING_REGISTER_BUFFERS_UPDATE } from './uapi.js';

/** Options of ring.createBufferPool(). */
export interface BufferPoolOptions {
  /** Bytes per buffer (1 .. 1 GiB; default 65536). */
  bufferSize?: number;
  /** Number of buffers (1 .. 65536; default 256). bufferSize * count must not exceed 1 GiB. */
  count?: number;
}

/** Options of createBufferPool(): a pool's, and the backend whose sends it is made for. */
export interface CreateBufferPoolOptions extends BufferPoolOptions {
  /**
   * 'io_uring': registered with this thread's default ring (as defaultRing.createBufferPool());
   * 'msg_zerocopy' or 'copy': plain memory, io_uring never called; 'auto' (default): the backend
   * adopt() picks here (URING_ZC_BACKEND, else the best that works).
   */
  backend?: 'auto' | BackendName;
}

/** Counters of a pool. */
export interface BufferPoolStats {
  /** Buffers in the pool. */
  size: number;
  /** Buffers acquire() can hand out now. */
  free: number;
  /** Buffers lent to sends whose notification has not come yet. */
  inFlight: number;
  /** Bytes registered with the kernel (pinned) for this pool (0 for a pool of plain memory). */
  registeredBytes: number;
}

/** Options of acquireAsync(). */
export interface AcquireOptions {
  /** Abort the wait (rejects with code ABORT_ERR, nothing acquired). */
  signal?: AbortSignal;
}

/** The kernel's limit on one registered buffer. */
const MAX_REGION = 1 << 30;
/** Registered buffer table size per ring (sparse: entries cost nothing until used). */
const TABLE_SIZE = 256;
const PAGE = 4096;
const IORING_RSRC_REGISTER_SPARSE = 1 << 0;

// Per-buffer states.
const FREE = 0;
const HELD = 1; // acquired by the caller, not in a send

/** @internal The ring's registered buffer table, shared by its pools. */
export class BufferTable {
  private readonly freeIndexes: number[] = [];
  private registered = false;
  constructor(private readonly ring: Ring) {}

  /** Registers [addr, addr+len) in a free table entry; returns its index. */
  add(addr: number, len: number): number {
    if (!this.registered) {
      const arg = Buffer.alloc(32); // struct io_uring_rsrc_register
      arg.writeUInt32LE(TABLE_SIZE, 0);
      arg.writeUInt32LE(IORING_RSRC_REGISTER_SPARSE, 4);
      const r = native.register(this.ring.mem.fd, IORING_REGISTER_BUFFERS2, arg, 32);
      if (r < 0) throw new UringZcSystemError(r, 'io_uring_register(BUFFERS2)');
      this.registered = true;
      for (let i = TABLE_SIZE - 1; i >= 0; i--) this.freeIndexes.push(i);
    }
    const index = this.freeIndexes.pop();
    if (index === undefined) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', `a ring holds at most ${TABLE_SIZE} buffer pools`);
    }
    const r = this.update(index, addr, len);
    if (r < 0) {
      this.freeIndexes.push(index);
      const hint = r === -12 /* ENOMEM */ ? memlockHint(len) : undefined;
      throw new UringZcSystemError(r, 'io_uring_register(BUFFERS_UPDATE)', hint);
    }
    return index;
  }

  /** Empties a table entry (the kernel unpins once no request uses it). */
  remove(index: number): void {
    this.update(index, 0, 0);
    this.freeIndexes.push(index);
  }

  private update(index: number, addr: number, len: number): number {
    const iov = Buffer.alloc(16);
    writeU64(iov, 0, addr);
    writeU64(iov, 8, len);
    const arg = Buffer.alloc(32); // struct io_uring_rsrc_update2
    arg.writeUInt32LE(index, 0);
    // data -> one iovec; an empty iovec (NULL, 0) clears the entry.
    writeU64(arg, 8, baseAddress(iov.buffer) + iov.byteOffset);
    arg.writeUInt32LE(1, 24);
    return native.register(this.ring.mem.fd, IORING_REGISTER_BUFFERS_UPDATE, arg, 32);
  }
}

const poolOfMemory = new WeakMap<ArrayBufferLike, BufferPool>();

/** @internal The pool whose region `ab` is, if any. */
export function poolOf(ab: ArrayBufferLike): BufferPool | undefined {
  return poolOfMemory.get(ab);
}

/** @internal Returns the pool buffers a sendv() lent ([pool, index, pool, index, ...]) at its last CQE. */
export function giveBackLeases(leases: readonly (BufferPool | number)[]): void {
  for (let i = 0; i < leases.length; i += 2) (leases[i] as BufferPool).giveBack(leases[i + 1] as number);
}

/**
 * A pool of registered buffers. Create with ring.createBufferPool(), or createBufferPool() for the
 * backend in effect (plain memory where no ring registers it).
 * Since Linux 6.0 (sparse buffer tables, SEND_ZC with FIXED_BUF).
 */
export class BufferPool {
  readonly bufferSize: number;
  readonly count: number;
  /** The ring its region is registered with; null for a pool of plain memory. */
  readonly ring: Ring | null;
  /** @internal Table index (buf_index) of the region; -1 when not registered. */
  readonly index: number;
  /** @internal Byte offset of buffer 0 in the region's ArrayBuffer. */
  readonly start: number;
  private readonly memory: Buffer;
  private readonly buffers: Buffer[];
  /** Per buffer: FREE, HELD, or 1 + the number of sends in flight (2, 3, ...). */
  private readonly state: Uint32Array;
  private readonly freeList: number[] = [];
  private readonly waiters: { resolve: (b: Buffer) => void; reject: (e: Error) => void; signal: AbortSignal | undefined; onAbort: (() => void) | undefined }[] = [];
  private inFlightCount = 0;
  private closing = false;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  private readonly table: BufferTable | null;

  /** @internal Use ring.createBufferPool() or createBufferPool(). `ring` null: plain memory. */
  constructor(ring: Ring | null, table: BufferTable | null, options: BufferPoolOptions) {
    validateOptions('buffer pool options', options, ['bufferSize', 'count']);
    const bufferSize = options.bufferSize ?? 65536;
    const count = options.count ?? 256;
    validateUint('bufferSize', bufferSize, 1, MAX_REGION);
    validateUint('count', count, 1, 65536);
    if (bufferSize * count > MAX_REGION) {
      throw new UringZcArgumentError(`"bufferSize" * "count" must be at most ${MAX_REGION} bytes (one registered region), got ${bufferSize * count}`);
    }
    this.ring = ring;
    this.table = table;
    this.bufferSize = bufferSize;
    this.count = count;
    const total = bufferSize * count;
    // Page-aligned so that a buffer spans as few pages as possible (pinning and zero copy work per page).
    this.memory = Buffer.allocUnsafeSlow(total + PAGE);
    const base = baseAddress(this.memory.buffer);
    this.start = this.memory.byteOffset + ((PAGE - ((base + this.memory.byteOffset) % PAGE)) % PAGE);
    // Our memory must not move to another thread while the kernel may read it.
    markAsUntransferable(this.memory.buffer);
    this.index = table === null ? -1 : table.add(base + this.start, total);
    poolOfMemory.set(this.memory.buffer, this);
    this.buffers = [];
    for (let i = 0; i < count; i++) {
      this.buffers.push(Buffer.from(this.memory.buffer, this.start + i * bufferSize, bufferSize));
    }
    this.state = new Uint32Array(count);
    for (let i = count - 1; i >= 0; i--) this.freeList.push(i);
  }

  /** A free buffer (its full `bufferSize` bytes), or null when every buffer is held or in flight. */
  acquire(): Buffer | null {
    if (this.closing) throw poolClosedError();
    const i = this.freeList.pop();
    if (i === undefined) return null;
    this.state[i] = HELD;
    return this.buffers[i]!;
  }

  /** Waits for a free buffer. Rejects with ABORT_ERR when `signal` aborts, ERR_URING_ZC_POOL_CLOSED on close. */
  acquireAsync(options: AcquireOptions = {}): Promise<Buffer> {
    validateOptions('acquireAsync options', options, ['signal']);
    const { signal } = options;
    if (signal !== undefined) validateSignal(signal);
    if (this.closing) return Promise.reject(poolClosedError());
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const b = this.acquire();
    if (b !== null) return Promise.resolve(b);
    return new Promise<Buffer>((resolve, reject) => {
      const waiter = { resolve, reject, signal, onAbort: undefined as (() => void) | undefined };
      if (signal) {
        waiter.onAbort = () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /**
   * Returns an acquired buffer that will not be sent. A buffer that was sent returns by itself at
   * its notification; releasing it, or releasing twice, throws ERR_URING_ZC_INVALID_STATE.
   */
  release(buf: Uint8Array): void {
    const i = this.slotOf(buf);
    if (this.state[i] !== HELD) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE',
        this.state[i] === FREE ? 'this pool buffer is already free (double release?)' : 'this pool buffer is in flight: it returns to the pool at its notification');
    }
    this.toFree(i);
  }

  /** Counters. */
  stats(): BufferPoolStats {
    return { size: this.count, free: this.freeList.length, inFlight: this.inFlightCount, registeredBytes: this.closedFlag || this.table === null ? 0 : this.bufferSize * this.count };
  }

  /**
   * Closes the pool: acquire() throws, waiters reject (ERR_URING_ZC_POOL_CLOSED); resolves once
   * every buffer in flight has had its notification and the region is unregistered.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      this.resolveClose = resolve;
    });
    for (const w of this.waiters.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.reject(poolClosedError());
    }
    this.maybeFinish();
    return this.closePromise;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * @internal The buffer index of `view`, which must lie inside one buffer of this pool.
   * Throws ERR_URING_ZC_INVALID_ARG otherwise.
   */
  slotOf(view: Uint8Array): number {
    if (view.buffer !== this.memory.buffer) throw new UringZcArgumentError('the Buffer is not from this pool');
    return this.slotAt(view.byteOffset, view.byteLength);
  }

  /** @internal slotOf() for a view of this pool's memory at `byteOffset` (hot path: no getters). */
  slotAt(byteOffset: number, byteLength: number): number {
    const rel = byteOffset - this.start;
    const size = this.bufferSize;
    let i = Math.floor(rel / size);
    if (byteLength === 0 && rel === i * size && i > 0) {
      // An empty view where buffer i-1 ends and buffer i starts: either could be meant. At the
      // pool's end it can only be the last one; elsewhere refuse rather than guess (a guess
      // would hand a buffer to a second owner).
      if (i < this.count) throw new UringZcArgumentError('an empty view at the boundary of two pool buffers does not say which buffer it belongs to');
      i = this.count - 1;
    }
    if (rel < 0 || i >= this.count || rel + byteLength > (i + 1) * size) {
      throw new UringZcArgumentError('the Buffer must lie within one buffer of the pool');
    }
    return i;
  }

  /** @internal Throws unless buffer `i` may be sent (acquired, or already in flight). */
  checkLendable(i: number): void {
    if (this.closing) throw poolClosedError();
    if (this.state[i] === FREE) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'this pool buffer is not acquired (it was released or returned at a notification): acquire() it again');
    }
  }

  /** @internal A send takes buffer `i` (acquired, or already in flight). */
  lend(i: number): void {
    this.checkLendable(i);
    const s = this.state[i]!;
    if (s === HELD) this.inFlightCount++;
    this.state[i] = s === HELD ? 2 : s + 1;
  }

  /** @internal A send of buffer `i` has had its last CQE. */
  giveBack(i: number): void {
    const s = this.state[i]!;
    if (s > 2) {
      this.state[i] = s - 1;
      return;
    }
    this.inFlightCount--;
    this.toFree(i);
  }

  private toFree(i: number): void {
    if (this.closing) {
      this.state[i] = FREE;
      this.maybeFinish();
      return;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.state[i] = HELD;
      w.resolve(this.buffers[i]!);
      return;
    }
    this.state[i] = FREE;
    this.freeList.push(i);
  }

  private maybeFinish(): void {
    if (this.closedFlag || this.inFlightCount > 0) return;
    this.closedFlag = true;
    if (this.ring !== null) {
      if (!this.ring.closed) this.table!.remove(this.index);
      this.ring.pools.delete(this);
    }
    this.resolveClose?.();
  }
}

function poolClosedError(): UringZcStateError {
  return new UringZcStateError('ERR_URING_ZC_POOL_CLOSED', 'the buffer pool is closed');
}

function abortError(signal: AbortSignal): UringZcAbortError {
  return new UringZcAbortError('the wait for a buffer was aborted', signal.reason);
}

declare module './ring.js' {
  interface Ring {
    /**
     * Creates a pool of `count` registered buffers of `bufferSize` bytes (one registered region).
     * Sends of its buffers use IORING_RECVSEND_FIXED_BUF. See BufferPool.
     * @throws ENOMEM (with the RLIMIT_MEMLOCK limit and how to raise it) when the kernel cannot pin it.
     */
    createBufferPool(options?: BufferPoolOptions): BufferPool;
  }
}

/** Each ring's registered buffer table, made with its first pool. */
const tables = new WeakMap<Ring, BufferTable>();

// A method of Ring defined here, where pools are: ring.ts builds on nothing above it.
Ring.prototype.createBufferPool = function createBufferPool(this: Ring, options: BufferPoolOptions = {}): BufferPool {
  if (this.closing) throw ringClosedError();
  let table = tables.get(this);
  if (table === undefined) tables.set(this, (table = new BufferTable(this)));
  const pool = new BufferPool(this, table, options);
  this.pools.add(pool);
  return pool;
};

const CREATE_OPTION_NAMES = ['bufferSize', 'count', 'backend'] as const;

/**
 * A buffer pool for the sends of the backend in effect (or `options.backend`): on io_uring a
 * registered pool of this thread's default ring (as defaultRing.createBufferPool()); on
 * msg_zerocopy and copy, where nothing registers memory, the same pool of plain page-aligned
 * memory (registeredBytes 0; io_uring is never called). Either way a sent buffer returns to the
 * pool only at its release. Its buffers can be sent on any socket.
 * @throws ERR_URING_ZC_UNSUPPORTED when io_uring is asked for and not available; ENOMEM as
 * ring.createBufferPool() when the kernel cannot pin a registered pool.
 */
export function createBufferPool(options: CreateBufferPoolOptions = {}): BufferPool {
  validateOptions('buffer pool options', options, CREATE_OPTION_NAMES);
  const { backend, ...pool } = options;
  validateBackendOption(backend);
  const kind = chooseBackend(backend);
  if (kind !== 'io_uring') return new BufferPool(null, null, pool);
  const caps = capabilities();
  if (!caps.ioUring) throw new UringZcUnsupportedError('a registered buffer pool', caps.reason ?? 'io_uring is not available');
  return defaultRing().createBufferPool(pool);
}
