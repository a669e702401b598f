/**
 * The file rows of `uring-zc bench --file`: one file sent again and again over TCP, each row in
 * its worker process (bench/worker.ts runs fileRow() when given --file), timed and counted by the
 * worker's own loop with one file in flight at a time (the next starts when the previous is done:
 * no row pipelines files, so every row pays its per-file start-up).
 *
 *   node     Node's own: fs.createReadStream(path).pipe(socket, { end: false }); a file is done
 *            when the socket has written its last byte (a zero-length write's callback)
 *   send-loop the same chunks from fs.createReadStream, each through zs.send() (io_uring,
 *            zero copy above the default threshold), at most 4 MiB not yet settled (the stream
 *            pauses above it): what a hand-written loop over the library does
 *   sendfile zs.sendFile(path) (io_uring: IORING_OP_SPLICE file -> pipe -> socket)
 *   stream   pipeline(fs.createReadStream(path), zs.createWriteStream({ highWaterMark: 4 MiB })),
 *            one Writable per file (after its 'finish' the socket stays open); reported as not
 *            available where the library has no createWriteStream
 *
 * The three that read the file read `--read-chunk` bytes at a time (fs.createReadStream's
 * highWaterMark; default Node's own 64 KiB, at which the reads on the thread pool bound them all
 * on loopback).
 *
 * Also the orchestrator's part: the files themselves (made before the rows, in the page cache,
 * removed after the run).
 */
import { closeSync, createReadStream, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { adopt, ZeroCopySocket } from '../src/index.js';
import { type Counters, startOver } from './counters.js';
import type { Pump, Timing, WorkerArgs } from './worker.js';

export { DEFAULT_FILE_SIZES, FILE_MODES, MAX_FILE_SIZE } from './args.js';

/** send-loop: bytes sent and not yet settled before the read stream pauses (createWriteStream's highWaterMark in the stream row). */
const SEND_LOOP_LIMIT = 4 << 20;

/** Why the stream row cannot run with this build of the library, or null. */
export function streamUnavailableReason(): string | null {
  const proto = ZeroCopySocket.prototype as unknown as Record<string, unknown>;
  return typeof proto.createWriteStream === 'function' ? null : 'not available: createWriteStream not built';
}

/** Where the bench keeps the file of `size` bytes of this run. */
export function benchFilePath(dir: string, size: number): string {
  return path.join(dir, `file-${size}.bin`);
}

/**
 * Makes the run's files (random bytes, written in 4 MiB blocks) in a fresh directory under
 * /var/tmp (a disk, not a tmpfs in memory twice), and reads each once so that it is in the page
 * cache. Returns the directory; removeBenchFiles() deletes it.
 */
export function makeBenchFiles(sizes: readonly number[]): string {
  const base = path.join(os.tmpdir() === '/tmp' ? '/var/tmp' : os.tmpdir(), `uzc-bench-${process.pid}`);
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const block = Buffer.allocUnsafe(4 << 20);
  randomFillSync(block);
  for (const size of sizes) {
    const p = benchFilePath(base, size);
    const fd = openSync(p, 'w');
    try {
      for (let off = 0; off < size; off += block.length) writeSync(fd, block, 0, Math.min(block.length, size - off), off);
    } finally {
      closeSync(fd);
    }
    const rd = openSync(p, 'r');
    try {
      for (let off = 0; off < size; off += block.length) readSync(rd, block, 0, Math.min(block.length, size - off), off);
    } finally {
      closeSync(rd);
    }
  }
  return base;
}

export function removeBenchFiles(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A connected TCP socket to the scenario's receiver. */
/** A TCP connection to the row's receiver (`a.dst`:`a.port`), bounded at 10 s. Also the socket rows' (worker.ts). */
export function connectTcp(a: WorkerArgs): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: a.dst, port: a.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`worker: connecting to ${a.dst}:${a.port} timed out`));
    }, 10_000);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

/** Stops a row after this many failed files. */
const MAX_FILE_ERRORS = 16;

/**
 * One file at a time: files during the warm-up until one ends after it (at least one, so that V8
 * has compiled the path), then the clock runs from that file's end to the end of the first file
 * that ends after the deadline (or the count bound): whole files only, so a 1 GiB file that takes
 * longer than --duration is measured whole. CPU is process.cpuUsage() over the same span (every
 * thread of the process: the io-wq workers that run the splices, the threadpool).
 */
function measureFiles(a: WorkerArgs, c: Counters, issue: () => void, setPump: (p: Pump) => void): Promise<Timing> {
  return new Promise<Timing>((resolve) => {
    const warmEnd = performance.now() + a.warmupMs;
    let warming = true;
    let deadline = Infinity;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    let timed = 0;
    const next = (): void => {
      const now = performance.now();
      if (warming && now >= warmEnd) {
        warming = false;
        startOver(c);
        cpu0 = process.cpuUsage();
        t0 = now;
        deadline = now + a.durationMs;
      } else if (!warming) {
        timed++;
      }
      if ((!warming && (now >= deadline || timed >= a.maxSends)) || c.errors >= MAX_FILE_ERRORS) {
        const cpu = process.cpuUsage(cpu0);
        resolve({ seconds: warming ? 0 : (now - t0) / 1000, cpuUser: cpu.user / 1e6, cpuSys: cpu.system / 1e6 });
        return;
      }
      try {
        issue();
      } catch (e) {
        c.errors++;
        if (c.firstError === null) c.firstError = String((e as Error).message ?? e);
        setImmediate(next);
      }
    };
    setPump({ done: next, kick: () => {} });
    next();
  });
}

/** One file row (a.mode among FILE_MODES): files sent one after the other, timed by measureFiles(). */
export async function fileRow(a: WorkerArgs, c: Counters, recordError: (c: Counters, e: unknown) => void): Promise<Timing> {
  if (!a.tcp) throw new Error('worker: file rows are TCP only');
  const file = a.file;
  const size = a.size;
  const sock = await connectTcp(a);
  sock.on('error', (e) => recordError(c, e));
  let pump: Pump = { done: () => {}, kick: () => {} };
  const finished = (err: unknown): void => {
    if (err) recordError(c, err);
    else {
      c.sends++;
      c.bytes += size;
    }
    pump.done();
  };
  let zs: ZeroCopySocket | null = null;
  let issue: () => void;
  if (a.mode === 'node') {
    issue = () => {
      const r = createReadStream(file, { highWaterMark: a.readChunk });
      r.on('error', finished);
      r.on('end', () => {
        // Called once every earlier write has gone to the kernel.
        sock.write(Buffer.alloc(0), (e) => finished(e ?? null));
      });
      r.pipe(sock, { end: false });
    };
  } else {
    // The defaults a user gets (threshold, auto-downgrade), on io_uring.
    zs = adopt(sock, { backend: 'io_uring' });
    const z = zs;
    c.notifsNow = () => z.stats().notifications;
    if (a.mode === 'sendfile') {
      issue = () => z.sendFile(file, undefined, (e) => finished(e));
    } else if (a.mode === 'send-loop') {
      issue = () => {
        const r = createReadStream(file, { highWaterMark: a.readChunk });
        let unsettled = 0;
        let ended = false;
        let failed = false;
        let copied = false;
        const settled = (e: Error | null, bytes: number, zeroCopy: boolean): void => {
          if (e !== null && !failed) {
            failed = true;
            r.destroy();
            finished(e);
            return;
          }
          if (!zeroCopy) copied = true;
          unsettled -= bytes;
          if (r.isPaused() && unsettled < SEND_LOOP_LIMIT) r.resume();
          if (ended && unsettled === 0 && !failed) {
            if (copied) c.copied++; // a file counts as copied when any of its chunks was
            finished(null);
          }
        };
        r.on('data', (chunk) => {
          const b = chunk as Buffer;
          unsettled += b.length;
          z.send(b, undefined, settled);
          if (unsettled >= SEND_LOOP_LIMIT) r.pause();
        });
        r.on('end', () => {
          ended = true;
          if (unsettled === 0 && !failed) {
            if (copied) c.copied++;
            finished(null);
          }
        });
        r.on('error', (e) => {
          if (!failed) {
            failed = true;
            finished(e);
          }
        });
      };
    } else {
      const create = (z as unknown as { createWriteStream?: (o: object) => Writable }).createWriteStream;
      if (typeof create !== 'function') throw new Error('worker: not available: createWriteStream not built');
      issue = () => {
        const copied0 = z.stats().copied;
        pipeline(createReadStream(file, { highWaterMark: a.readChunk }), create.call(z, { highWaterMark: 4 << 20 })).then(() => {
          if (z.stats().copied > copied0) c.copied++; // as send-loop: any chunk copied
          finished(null);
        }, finished);
      };
    }
  }
  const t = await measureFiles(a, c, issue, (p) => (pump = p));
  if (zs !== null) await zs.close();
  await new Promise<void>((r) => sock.end(() => r()));
  sock.destroy();
  return t;
}
