/// <reference types="node" preserve="true" />
// The reference above is kept in the emitted index.d.ts (preserve="true"): the declarations use
// Buffer and Node's net/dgram types, and TypeScript >= 6 loads @types/node only where a file
// asks for it (its "types" option defaults to []). @types/node is a peer dependency for it.
/** uring-zc: zero-copy network sends for Node.js through Linux io_uring. Public exports only. */
export { Ring } from './ring.js';
export { DEFAULT_SETUP_FLAGS } from './ring-memory.js';
export type { RingOptions } from './ring.js';
export { adopt } from './adopt.js';
export { ZeroCopySocket, DEFAULT_ZERO_COPY_THRESHOLD, IOV_MAX } from './socket.js';
export { ZeroCopyWriteStream, DEFAULT_STREAM_HIGH_WATER_MARK, DEFAULT_MAX_UNRELEASED } from './writable.js';
export type { WriteStreamOptions } from './writable.js';
export { BufferPool, createBufferPool } from './pool.js';
export type { BufferPoolOptions, BufferPoolStats, AcquireOptions, CreateBufferPoolOptions } from './pool.js';
export type { Adoptable, AdoptOptions, SendOptions, SendResult, SocketStats } from './socket.js';
export type { SendFileOptions } from './file.js';
export { capabilities } from './probe.js';
export type { Capabilities } from './probe.js';
export {
  UringZcError,
  UringZcArgumentError,
  UringZcStateError,
  UringZcSystemError,
  UringZcUnsupportedError,
  UringZcAbortError,
} from './errors.js';
export type { UringZcCode, UringZcStateCode, ErrnoCode } from './errors.js';
