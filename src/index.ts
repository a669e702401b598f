/** uring-zc: zero-copy network sends for Node.js through Linux io_uring. Public exports only. */
export { Ring, DEFAULT_SETUP_FLAGS } from './ring.js';
export type { RingOptions } from './ring.js';
export { adopt, ZeroCopySocket, DEFAULT_ZERO_COPY_THRESHOLD, IOV_MAX } from './socket.js';
export { ZeroCopyWriteStream, DEFAULT_STREAM_HIGH_WATER_MARK, DEFAULT_MAX_UNRELEASED } from './writable.js';
export type { WriteStreamOptions } from './writable.js';
export { BufferPool } from './pool.js';
export type { BufferPoolOptions, BufferPoolStats, AcquireOptions } from './pool.js';
export type { Adoptable, AdoptOptions, SendOptions, SendResult, SocketStats } from './socket.js';
export { capabilities } from './probe.js';
export type { Capabilities } from './probe.js';
export {
  UringZcError,
  UringZcArgumentError,
  UringZcStateError,
  UringZcSystemError,
  UringZcUnsupportedError,
} from './errors.js';
export type { UringZcCode } from './errors.js';
