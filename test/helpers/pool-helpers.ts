/**
 * Helpers for the pool, sendv, GSO, threshold and memlock tests: a deterministic block stream
 * (the sender refills pool buffers from it, the receiver regenerates it to check every byte), the
 * pool-recycling send loop, a receiver-side verifier, and child-process plumbing.
 *
 * The stream is a sequence of blocks. Block n has a length and an offset inside its pool buffer
 * given by plan(), and content given by fillBlock(seed, n, ...): both sides compute the same bytes
 * without sharing memory, so a pool buffer rewritten too early (before its notification) shows up
 * as a mismatch at the receiver.
 */
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type { BufferPool, ZeroCopySocket } from '../../src/index.js';
import { firstDifference } from './data.js';
import type { SinkNamespace } from '../../bench/netns.js';

/** One block of the stream: `length` bytes at `offset` inside a pool buffer. */
export interface Block {
  offset: number;
  length: number;
}

/** A 32-bit mix of (seed, n): the per-block PRNG seed. */
function mix(seed: number, n: number): number {
  let h = (seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The blocks of a stream of at least `minBytes`: most fill a whole buffer; every fifth is a
 * subarray of odd length at an odd offset (sends of a slice of one pool buffer).
 */
export function plan(seed: number, bufferSize: number, minBytes: number): Block[] {
  const blocks: Block[] = [];
  let total = 0;
  for (let n = 0; total < minBytes; n++) {
    let length = bufferSize;
    let offset = 0;
    if (n % 5 === 4 && bufferSize > 2) {
      const h = mix(seed ^ 0x51ed, n);
      length = 1 + (h % (bufferSize - 1));
      offset = (h >>> 7) % (bufferSize - length + 1);
    }
    blocks.push({ offset, length });
    total += length;
  }
  return blocks;
}

let scratch = new Uint32Array(0);

/** Writes block `n`'s content (mulberry32 words, little-endian bytes) into `dst`. */
export function fillBlock(seed: number, n: number, dst: Uint8Array): void {
  const words = (dst.byteLength + 3) >>> 2;
  if (scratch.length < words) scratch = new Uint32Array(Math.max(words, 16384));
  let s = mix(seed, n);
  for (let i = 0; i < words; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    scratch[i] = (t ^ (t >>> 14)) >>> 0;
  }
  dst.set(new Uint8Array(scratch.buffer, 0, dst.byteLength));
}

/**
 * Checks a received byte stream against plan()/fillBlock(), byte by byte and in order, and hashes
 * it. `mismatchAt` is the stream offset of the first wrong byte (or of the first byte past the end).
 */
export class BlockVerifier {
  readonly expected: number;
  received = 0;
  verified = 0;
  mismatchAt = -1;
  private n = 0;
  private at = 0;
  private current: Buffer;
  private readonly hash: Hash = createHash('sha256');

  constructor(private readonly seed: number, private readonly blocks: Block[]) {
    this.expected = blocks.reduce((a, b) => a + b.length, 0);
    this.current = Buffer.alloc(0);
    this.load();
  }

  private load(): void {
    const b = this.blocks[this.n];
    if (b === undefined) return;
    if (this.current.length < b.length) this.current = Buffer.allocUnsafe(Math.max(b.length, this.current.length));
    fillBlock(this.seed, this.n, this.current.subarray(0, b.length));
  }

  push(chunk: Buffer): void {
    this.received += chunk.length;
    this.hash.update(chunk);
    let i = 0;
    while (i < chunk.length && this.mismatchAt < 0) {
      const b = this.blocks[this.n];
      if (b === undefined) {
        this.mismatchAt = this.verified; // bytes beyond the planned stream
        return;
      }
      const k = Math.min(b.length - this.at, chunk.length - i);
      const want = this.current.subarray(this.at, this.at + k);
      const got = chunk.subarray(i, i + k);
      if (!want.equals(got)) {
        this.mismatchAt = this.verified + firstDifference(want, got);
        return;
      }
      this.verified += k;
      this.at += k;
      i += k;
      if (this.at === b.length) {
        this.n++;
        this.at = 0;
        this.load();
      }
    }
  }

  get complete(): boolean {
    return this.mismatchAt < 0 && this.verified === this.expected && this.received === this.expected;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** What sendFromPool() observed. */
export interface PoolRunReport {
  sends: number;
  bytes: number;
  /** Most pool buffers in flight at once (pool.stats().inFlight). */
  maxInFlight: number;
  /** How many times acquire() returned null and acquireAsync() had to wait. */
  waits: number;
  /** Sends whose result disagreed with the block length, or that failed. */
  bad: string[];
  /** sha256 of the stream as written into the pool buffers. */
  sha256: string;
}

/**
 * Sends every block of `blocks` from `pool` on `zs`: acquires a buffer (waiting with
 * acquireAsync when all are in flight), writes the block into it at once, sends the slice and
 * moves on without waiting; a buffer comes back by itself when its send settles and is refilled
 * with the next block right away. Resolves when every send has settled.
 */
export async function sendFromPool(zs: ZeroCopySocket, pool: BufferPool, seed: number, blocks: Block[]): Promise<PoolRunReport> {
  const hash = createHash('sha256');
  const report: PoolRunReport = { sends: 0, bytes: 0, maxInFlight: 0, waits: 0, bad: [], sha256: '' };
  let settled = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => {
    resolveAll = r;
  });
  const onSettled = (): void => {
    if (++settled === blocks.length) resolveAll();
  };
  for (let n = 0; n < blocks.length; n++) {
    let buf = pool.acquire();
    if (buf === null) {
      report.waits++;
      buf = await pool.acquireAsync();
    }
    const { offset, length } = blocks[n]!;
    const view = buf.subarray(offset, offset + length);
    fillBlock(seed, n, view);
    hash.update(view);
    zs.send(view).then(
      (r) => {
        report.sends++;
        report.bytes += r.bytes;
        if (r.bytes !== length) report.bad.push(`block ${n}: ${r.bytes} of ${length} bytes`);
        onSettled();
      },
      (e: unknown) => {
        report.bad.push(`block ${n}: ${String((e as { code?: unknown }).code ?? e)}`);
        onSettled();
      },
    );
    const inFlight = pool.stats().inFlight;
    if (inFlight > report.maxInFlight) report.maxInFlight = inFlight;
  }
  if (blocks.length > 0) await all;
  report.sha256 = hash.digest('hex');
  return report;
}

/** A child's exit code and its whole stdout/stderr. */
export interface ChildOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Collects a child's output; kills it (SIGKILL) after `ms`. */
export function collectChild(child: ChildProcess, ms: number): Promise<ChildOutput> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

/** The first stdout line of `child` that parses as JSON (rejects if it exits first). */
export function firstJsonLine<T>(child: ChildProcess): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) {
          child.stdout?.off('data', onData);
          resolve(JSON.parse(line) as T);
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('close', (code) => reject(new Error(`child exited (${code}) before printing a JSON line`)));
  });
}

/** The last stdout line that parses as JSON. */
export function lastJson<T>(out: string): T {
  const lines = out.trim().split('\n').filter((l) => l.trim().startsWith('{'));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`no JSON line in child output: ${JSON.stringify(out.slice(0, 500))}`);
  return JSON.parse(last) as T;
}

/** Concatenates views (a copy). */
export function concat(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/**
 * Runs test/helpers/pool-gso-sender.js (`steps`, its JSON argument) in the sink namespace with
 * `env` (a backend's childEnv()): its report once it exited 0, else the test fails with its stderr.
 */
export async function runPoolGsoSender<T>(sink: SinkNamespace, steps: readonly object[], env: NodeJS.ProcessEnv): Promise<T> {
  const child = sink.spawn([process.execPath, 'dist/test/helpers/pool-gso-sender.js', sink.destination, '9', JSON.stringify(steps)], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const { code, out, err } = await collectChild(child, 30_000);
  assert.equal(code, 0, `pool-gso-sender exited with ${code}: ${err}`);
  return lastJson<T>(out);
}
