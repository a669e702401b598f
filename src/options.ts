/**
 * Boundary validation: every public option and argument is checked here before anything is
 * queued, and a failure throws UringZcArgumentError (ERR_URING_ZC_INVALID_ARG) naming the option
 * and what it expects. Nothing else is disturbed by a bad call.
 */
import { UringZcArgumentError } from './errors.js';

/** Rejects unknown (or misspelled, or renamed) option names, and non-objects. */
export function validateOptions(what: string, options: unknown, known: readonly string[]): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new UringZcArgumentError(`${what} must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new UringZcArgumentError(`${what}: unknown option "${key}" (known: ${known.join(', ')})`);
    }
  }
}

/** An integer in [min, max]. */
export function validateUint(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UringZcArgumentError(`"${name}" must be an integer between ${min} and ${max}, got ${describe(value)}`);
  }
}

/** A non-negative integer or Infinity (thresholds). */
export function validateThreshold(name: string, value: unknown): asserts value is number {
  if (value === Infinity) return;
  validateUint(name, value, 0, Number.MAX_SAFE_INTEGER);
}

export function validateBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new UringZcArgumentError(`"${name}" must be a boolean, got ${describe(value)}`);
  }
}

/** An `AbortSignal` option (send, sendv, sendFile, createWriteStream, acquireAsync). */
export function validateSignal(value: unknown): asserts value is AbortSignal {
  if (!(value instanceof AbortSignal)) throw new UringZcArgumentError('"signal" must be an AbortSignal');
}

/**
 * A Buffer or Uint8Array the kernel may read while we hold it. Refused: a detached ArrayBuffer
 * (its memory is gone), a resizable one (its memory may move or shrink under the kernel), and a
 * SharedArrayBuffer (another thread may rewrite or outlive-free it while in flight).
 */
export function validateSendBuffer(name: string, value: unknown, index = -1): asserts value is Uint8Array {
  // The name of an array element is built only on failure (this runs per chunk of every sendv).
  const label = (): string => (index >= 0 ? `"${name}[${index}]"` : `"${name}"`);
  if (!(value instanceof Uint8Array)) {
    throw new UringZcArgumentError(`${label()} must be a Buffer or Uint8Array, got ${describe(value)}`);
  }
  const ab = value.buffer as ArrayBuffer | SharedArrayBuffer;
  if (typeof SharedArrayBuffer !== 'undefined' && ab instanceof SharedArrayBuffer) {
    throw new UringZcArgumentError(`${label()} is backed by a SharedArrayBuffer: another thread could change or free it while the kernel reads it`);
  }
  if ((ab as ArrayBuffer & { resizable?: boolean }).resizable === true) {
    throw new UringZcArgumentError(`${label()} is backed by a resizable ArrayBuffer: its memory may move while the kernel reads it`);
  }
  if (ab.byteLength === 0 && isDetached(ab as ArrayBuffer)) {
    throw new UringZcArgumentError(`${label()} is backed by a detached ArrayBuffer (transferred or detached): its memory is gone`);
  }
}

function isDetached(ab: ArrayBuffer): boolean {
  // Node 20 has no ArrayBuffer.prototype.detached; constructing a view over a detached buffer
  // throws. Only reached for zero-length buffers, so the cost does not matter.
  try {
    new Uint8Array(ab);
    return false;
  } catch {
    return true;
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'object') return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  return typeof value;
}
