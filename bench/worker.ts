/**
 * One benchmark row, measured in a process of its own, printed as one JSON line on stdout:
 * the C reference sender's fields plus `scenario` and `workingSet`.
 *
 *   node dist/bench/worker.js --mode node|copy|zc|zc-pool|sendv|gso|bare|bare-pool|c-ref|c-ref-pool|c-msgzc|c-sendto --size BYTES
 *        --dst IP --port N [--tcp] [--qd 64] [--duration-ms 3000] [--warmup-ms 0] [--max-sends N]
 *        [--working-set BYTES] [--segment BYTES] [--scenario NAME] [--c-mode copy|zc|zc-pool]
 *
 * The flags are the C sender's (bench/ref/sender.c), so the orchestrator builds one argument list
 * for either. `qd` sends are kept in flight: each completion starts the next send from one shared
 * callback (the library's Node-style callback form: no Promise, no closure per send). The send
 * phase alone is timed: from the end of the warm-up (the loop already running, so that V8 has
 * compiled the hot path as it would in a long-running server; the C sender warms up alike) until
 * the last send in flight has settled (for uring-zc, at its notification), after sending stopped
 * at the deadline or the count bound. CPU is process.cpuUsage() over the same span.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { encodeSockaddr } from '../src/address.js';
import { addressOf } from '../src/buffers.js';
import { toolMissingReason, toolPath } from '../src/binaries.js';
import { adopt, Ring, type Adoptable, type AdoptOptions, type BufferPool, type SendOptions, type ZeroCopySocket } from '../src/index.js';
import { BareRing } from './bare.js';
import { type Counters, startOver } from './counters.js';
import { connectTcp, fileRow } from './file.js';
import { cSenderMode, FILE_MODES, isCMode, MAX_FILE_SIZE, isSyscallMode, MAX_UDP_SIZE, MODES, sendvHeaderSize, type Mode } from './args.js';

export type WorkerMode = Mode;

export interface WorkerArgs {
  mode: WorkerMode;
  size: number;
  dst: string;
  port: number;
  tcp: boolean;
  qd: number;
  durationMs: number;
  /** Sending before the clock starts (counters start over at its end; sends in flight go on). */
  warmupMs: number;
  /** Timed sends at most. */
  maxSends: number;
  /** 0: hot (one buffer re-sent); otherwise the cold region's size in bytes. */
  workingSet: number;
  /** `gso`: bytes per datagram (0: not a GSO row). */
  segment: number;
  scenario: string;
  /** The C sender's mode for `c-ref` (`c-ref-pool` always runs zc-pool). */
  cMode: 'copy' | 'zc' | 'zc-pool';
  /** --file: the file a file row sends (bench/file.ts), '' otherwise; `size` is its size. */
  file: string;
  /** --file: fs.createReadStream's highWaterMark in the rows that read the file (bytes). */
  readChunk: number;
}

/** What a row prints: the C sender's JSON line plus scenario and workingSet. */
export interface WorkerResult {
  mode: string;
  scenario: string;
  size: number;
  workingSet: 'hot' | 'cold';
  sends: number;
  bytes: number;
  seconds: number;
  gbps: number;
  sendsPerSec: number;
  /** Sends whose bytes the kernel copied (every send of a copying mode). */
  copied: number;
  notifs: number;
  errors: number;
  cpuUser: number;
  cpuSys: number;
  firstError: string | null;
}

/** The C reference sender (src/binaries.ts: a checkout's build, or the package's prebuild), or null. */
export const C_REF_SENDER: string | null = toolPath('uzc_ref_sender');

/** Why C_REF_SENDER is null (the C rows skip with it), or null. */
export const C_REF_SENDER_MISSING: string | null = C_REF_SENDER === null ? toolMissingReason('uzc_ref_sender') : null;

/** Stops starting sends after this many failures: a broken socket would otherwise spin. */
const MAX_ERRORS = 1000;

/** Why zc-pool cannot run, or null when the library has registered buffer pools. */
export function zcPoolUnavailableReason(): string | null {
  const proto = Ring.prototype as unknown as Record<string, unknown>;
  return typeof proto['createBufferPool'] === 'function' ? null : 'needs registered buffer pools (not yet supported)';
}

/** The most buffers a pool holds, and the most bytes (one registered region). */
export const MAX_POOL_COUNT = 65536;
export const MAX_POOL_BYTES = 1024 ** 3;

export function parseWorkerArgs(argv: readonly string[]): WorkerArgs {
  const a: WorkerArgs = {
    mode: 'zc', size: 0, dst: '', port: 0, tcp: false, qd: 64, durationMs: 3000, warmupMs: 0,
    maxSends: Number.MAX_SAFE_INTEGER, workingSet: 0, segment: 0, scenario: 'custom', cMode: 'zc', file: '', readChunk: 64 * 1024,
  };
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`worker: ${flag} must be an integer between ${min} and ${max}, got ${String(v)}`);
    }
    return n;
  };
  let required = 0;
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--tcp') {
      a.tcp = true;
      continue;
    }
    const v = argv[++i];
    switch (f) {
      case '--mode':
        if (!(MODES as readonly string[]).includes(v ?? '')) throw new Error(`worker: unknown mode ${String(v)}`);
        a.mode = v as Mode;
        required |= 1;
        break;
      case '--size': a.size = num(f, v, 1, MAX_FILE_SIZE); required |= 2; break;
      case '--file': a.file = v ?? ''; break;
      case '--read-chunk': a.readChunk = num(f, v, 1024, 64 * 1024 * 1024); break;
      case '--dst': a.dst = v ?? ''; required |= 4; break;
      case '--port': a.port = num(f, v, 1, 65535); required |= 8; break;
      case '--qd': a.qd = num(f, v, 1, 32768); break;
      case '--duration-ms': a.durationMs = num(f, v, 1, 3_600_000); break;
      case '--warmup-ms': a.warmupMs = num(f, v, 0, 3_600_000); break;
      case '--max-sends': a.maxSends = num(f, v, 1, Number.MAX_SAFE_INTEGER); break;
      case '--working-set': a.workingSet = num(f, v, 0, 2 ** 40); break;
      case '--segment': a.segment = num(f, v, 1, MAX_UDP_SIZE); break;
      case '--scenario': a.scenario = v ?? 'custom'; break;
      case '--c-mode':
        if (v !== 'copy' && v !== 'zc' && v !== 'zc-pool') throw new Error(`worker: unknown --c-mode ${String(v)}`);
        a.cMode = v;
        break;
      default: throw new Error(`worker: unknown option ${f}`);
    }
  }
  if (required !== 15) throw new Error('worker: --mode, --size, --dst and --port are required');
  if (a.file === '' && a.size > 64 * 1024 * 1024) throw new Error('worker: --size is at most 64m (a file row, --file, up to 4g)');
  if ((a.file !== '') !== (FILE_MODES as readonly string[]).includes(a.mode) && a.mode !== 'node') {
    throw new Error(`worker: mode ${a.mode} ${a.file === '' ? 'needs --file' : 'is not a file mode'}`);
  }
  if (a.workingSet !== 0 && a.workingSet < a.size) throw new Error('worker: --working-set must be 0 or at least --size');
  if (!a.tcp && a.size > MAX_UDP_SIZE) throw new Error(`worker: a UDP send carries at most ${MAX_UDP_SIZE} bytes`);
  if (a.mode === 'gso') {
    if (a.tcp) throw new Error('worker: gso (UDP GSO) is for UDP only');
    if (a.segment === 0) throw new Error('worker: gso needs --segment BYTES');
  }
  if (a.mode === 'sendv' && a.size < 2) throw new Error('worker: sendv needs --size of at least 2 (header and body)');
  if ((a.mode === 'bare' || a.mode === 'bare-pool') && a.tcp) throw new Error('worker: the bare ring sends UDP only');
  if (a.mode === 'zc-pool' && a.workingSet > MAX_POOL_BYTES) {
    throw new Error(`worker: zc-pool registers the working set, at most ${MAX_POOL_BYTES} bytes (one pool)`);
  }
  return a;
}

/** The C sender's flags for the same row (`c-ref-pool`: its zc-pool mode, `c-msgzc`: msg-zc, `c-sendto`: sync-copy). */
export function cSenderArgs(a: WorkerArgs): string[] {
  if (!isCMode(a.mode)) throw new Error(`worker: ${a.mode} is not a C sender row`);
  const mode = cSenderMode(a.mode, a.cMode);
  const argv = ['--mode', mode, '--size', String(a.size), '--dst', a.dst, '--port', String(a.port),
    '--qd', String(a.qd), '--duration-ms', String(a.durationMs), '--warmup-ms', String(a.warmupMs),
    '--working-set', String(a.workingSet)];
  if (a.maxSends < Number.MAX_SAFE_INTEGER) argv.push('--max-sends', String(a.maxSends));
  if (a.tcp) argv.push('--tcp');
  return argv;
}

/**
 * Writes the C sender's pattern into `b`: every 8-byte word holds its offset from the start of
 * the region (little-endian), the bytes after the last whole word 0x33. Done before the clock
 * starts, so every page is faulted in and the bytes are distinct.
 */
function fillPattern(b: Buffer): void {
  const nWords = Math.floor(b.length / 8);
  // fill(0) faults every page in at memset speed and zeroes the high halves; then only the low
  // halves are written, as int32 stores while offsets fit (2 GiB). ~3x faster than word by word.
  b.fill(0);
  if (b.byteOffset % 4 === 0) {
    const words = new Int32Array(b.buffer, b.byteOffset, nWords * 2);
    const n = words.length;
    const small = Math.min(n, 1 << 29);
    for (let w = 0; w < small; w += 2) words[w] = w << 2;
    const u = new Uint32Array(b.buffer, b.byteOffset, nWords * 2);
    for (let w = small; w < n; w += 2) {
      const off = w * 4;
      u[w] = off % 4294967296;
      u[w + 1] = Math.floor(off / 4294967296);
    }
  } else {
    for (let off = 0; off < nWords * 8; off += 8) {
      b.writeUInt32LE(off % 4294967296, off);
      b.writeUInt32LE(Math.floor(off / 4294967296), off + 4);
    }
  }
  b.fill(0x33, nWords * 8);
}

/**
 * The buffers a row sends: `next()` returns the next one. Hot: the same Buffer every time (zero
 * copy allows it: the kernel only reads). Cold: consecutive `size`-byte windows of a region of
 * distinct bytes (fillPattern), walked in order and wrapping at the end like the C sender
 * (floor(region / size) windows). The windows are made before the clock starts, so that no
 * mode pays for a subarray() per send.
 */
class Source {
  readonly views: Buffer[];
  private cursor = 0;
  readonly hot: boolean;
  constructor(size: number, workingSet: number) {
    this.hot = workingSet === 0;
    if (this.hot) {
      const b = Buffer.allocUnsafeSlow(size);
      b.fill(0x5a);
      this.views = [b];
    } else {
      const region = Buffer.allocUnsafeSlow(workingSet);
      fillPattern(region);
      const n = Math.floor(workingSet / size);
      this.views = new Array<Buffer>(n);
      for (let i = 0; i < n; i++) this.views[i] = region.subarray(i * size, (i + 1) * size);
    }
  }

  next(): Buffer {
    const v = this.views[this.cursor]!;
    if (++this.cursor === this.views.length) this.cursor = 0;
    return v;
  }
}

/** The loop's two entry points, handed to a mode: one send settled; the mode can send again. */
export interface Pump {
  done(): void;
  kick(): void;
}

/**
 * Keeps `qd` sends in flight for the warm-up (then calls `startClock` once), then until the
 * deadline or `maxSends` timed sends (or `blocked()` says wait for a kick), then waits for the
 * rest. Resolves when sending stopped and nothing is in flight.
 * `issue()` starts one send whose completion calls done(); if it throws, nothing was started.
 */
function runLoop(a: WorkerArgs, c: Counters, issue: () => void, blocked: () => boolean, setPump: (p: Pump) => void,
  startClock: (now: number) => void): Promise<void> {
  let started = 0;
  let inFlight = 0;
  let stopped = false;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => {
    resolveFinished = r;
  });
  // The clock, not a timer: completions that arrive through process.nextTick (dgram's lookup and
  // send callbacks) can keep the loop busy without ever reaching the timers phase. Read every 16
  // sends: ~2 ns a send instead of ~30.
  const warmEnd = performance.now() + a.warmupMs;
  const deadline = warmEnd + a.durationMs;
  let warming = true;
  const fill = (): void => {
    while (!stopped && inFlight < a.qd && !blocked()) {
      if ((started & 15) === 0) {
        const now = performance.now();
        if (warming && now >= warmEnd) {
          warming = false;
          started = 0;
          startClock(now);
        }
        if (!warming && now >= deadline) {
          stopped = true;
          break;
        }
      }
      if ((!warming && started >= a.maxSends) || c.errors >= MAX_ERRORS) {
        stopped = true;
        break;
      }
      started++;
      inFlight++;
      try {
        issue();
      } catch (e) {
        // Refused synchronously (a bad argument, a pool buffer in the wrong state): not in flight.
        inFlight--;
        recordError(c, e);
      }
    }
    if (stopped && inFlight === 0) resolveFinished();
  };
  setPump({
    done: () => {
      inFlight--;
      fill();
    },
    kick: fill,
  });
  fill();
  return finished;
}

function recordError(c: Counters, e: unknown): void {
  c.errors++;
  if (c.firstError === null) {
    const err = e as { code?: unknown; message?: unknown };
    c.firstError = typeof err.code === 'string' ? `${err.code}: ${String(err.message)}` : String(err.message ?? e);
  }
}

const NOT_BLOCKED = (): boolean => false;
const NO_PUMP: Pump = { done: () => {}, kick: () => {} };

async function bindUdp(a: WorkerArgs): Promise<dgram.Socket> {
  const sock = dgram.createSocket(a.dst.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, () => resolve());
  });
  return sock;
}

/** The completion callback of the node rows: Node copies every send; `next` starts another. */
function nodeCallback(c: Counters, size: number, next: () => void): (err?: Error | null) => void {
  return (err) => {
    if (err) recordError(c, err);
    else {
      c.sends++;
      c.bytes += size;
      c.copied++;
    }
    next();
  };
}

/** Node's dgram: send with a callback, to the destination given per send (like the others). */
async function nodeUdp(a: WorkerArgs, c: Counters): Promise<Timing> {
  const src = new Source(a.size, a.workingSet);
  const sock = await bindUdp(a);
  let pump = NO_PUMP;
  // One callback for every send.
  const onSent = nodeCallback(c, a.size, () => pump.done());
  const issue = (): void => {
    sock.send(src.next(), a.port, a.dst, onSent);
  };
  const t = await measure(a, c, issue, NOT_BLOCKED, (p) => (pump = p));
  await new Promise<void>((r) => sock.close(() => r()));
  return t;
}

/**
 * Node's net: write() with a callback, honouring backpressure: after write() returns false no
 * further write until 'drain'; at most `qd` write callbacks outstanding as well.
 */
async function nodeTcp(a: WorkerArgs, c: Counters): Promise<Timing> {
  const src = new Source(a.size, a.workingSet);
  const sock = await connectTcp(a);
  let pump = NO_PUMP;
  let blocked = false;
  const onWritten = nodeCallback(c, a.size, () => pump.done());
  sock.on('drain', () => {
    blocked = false;
    pump.kick();
  });
  sock.on('error', (e) => recordError(c, e));
  const issue = (): void => {
    if (!sock.write(src.next(), onWritten)) blocked = true;
  };
  const t = await measure(a, c, issue, () => blocked, (p) => (pump = p));
  await new Promise<void>((r) => sock.end(() => r()));
  sock.destroy();
  return t;
}

/** An adopted socket on `ring`, the options object every send reuses, and how to close both. */
interface Adopted {
  zs: ZeroCopySocket;
  /** undefined for TCP (a stream socket sends to its peer). */
  opts: SendOptions | undefined;
  close(): Promise<void>;
}

/**
 * Adopts a UDP or TCP socket with an explicit threshold and without auto-downgrade (so that the
 * loopback and veth rows are not switched to copying sends behind the mode's back).
 */
async function adoptSocket(a: WorkerArgs, ring: Ring | undefined, zeroCopyThreshold: number, c: Counters): Promise<Adopted> {
  const options = { zeroCopyThreshold, autoDowngrade: false };
  // msg-zc and sync-copy: the same sends through a backend without io_uring.
  const on = (sock: Adoptable, o: AdoptOptions): ZeroCopySocket =>
    a.mode === 'msg-zc' ? adopt(sock, { ...o, backend: 'msg_zerocopy' }) : a.mode === 'sync-copy' ? adopt(sock, { ...o, backend: 'copy' }) : ring!.adopt(sock, o);
  if (a.tcp) {
    const sock = await connectTcp(a);
    sock.on('error', (e) => recordError(c, e));
    const zs = on(sock, options);
    return {
      zs,
      opts: undefined,
      close: async () => {
        await zs.close();
        sock.destroy();
      },
    };
  }
  const sock = await bindUdp(a);
  // A send-only socket, as a sender would adopt it: Node stops reading it, which spares the kernel
  // a wake-up of Node's watcher per sent datagram (adopt's `receive` option).
  const zs = on(sock, { ...options, receive: false });
  // One options object for every send: the library checks its names once per object.
  const opts: SendOptions = a.mode === 'gso' ? { address: a.dst, port: a.port, segmentSize: a.segment } : { address: a.dst, port: a.port };
  return {
    zs,
    opts,
    close: async () => {
      await zs.close();
      await new Promise<void>((r) => sock.close(() => r()));
    },
  };
}

/**
 * The uring-zc modes, on a ring of their own:
 * - copy: every send a copying IORING_OP_SEND (zeroCopyThreshold: Infinity);
 * - zc: every send IORING_OP_SEND_ZC from ordinary (unregistered) memory (threshold 0);
 * - zc-pool: SEND_ZC with IORING_RECVSEND_FIXED_BUF from a registered pool (see poolSource);
 * - sendv: sendv([header, body]), IORING_OP_SENDMSG_ZC with two iovecs: one datagram (UDP) of
 *   `size` bytes, a header of sendvHeaderSize(size) bytes (always the same Buffer: headers are
 *   made per message, hot in cache) and the body (hot, or walking the cold region);
 * - gso: one SENDMSG_ZC of `size` bytes with a UDP_SEGMENT control message: ⌈size/segment⌉
 *   datagrams per send.
 */
async function uring(a: WorkerArgs, c: Counters): Promise<Timing> {
  // (None for the rows on a backend without io_uring: they must run where io_uring is refused.)
  const ring = isSyscallMode(a.mode) ? undefined : new Ring();
  let pool: BufferPool | undefined;
  let s: Adopted | undefined;
  try {
    s = await adoptSocket(a, ring, a.mode === 'copy' || a.mode === 'sync-copy' ? Infinity : 0, c);
    const { zs, opts } = s;
    c.notifsNow = () => zs.stats().notifications;
    let pump = NO_PUMP;
    // The allocation-free callback: (err, bytes, zeroCopy).
    const onSent = (err: Error | null, bytes: number, zeroCopy: boolean): void => {
      if (err !== null) recordError(c, err);
      else {
        c.sends++;
        c.bytes += bytes;
        if (!zeroCopy) c.copied++;
      }
      pump.done();
    };
    let issue: () => void;
    if (a.mode === 'zc-pool') {
      const ps = poolSource(ring!, a.size, a.workingSet);
      pool = ps.pool;
      const views = ps.views;
      const p = ps.pool;
      let cursor = 0;
      issue = (): void => {
        // Every buffer of the pool stays ours: acquired (held) or lent to sends in flight, so any
        // view may be sent at any time (the pool refuses a buffer that is free). A buffer whose
        // last send has settled went back to the pool by itself; take it back (and any other
        // freed one) before each send. This costs one empty pop when nothing was freed, and keeps
        // the walk in address order, unlike acquire()'s LIFO order.
        while (p.acquire() !== null);
        const v = views[cursor]!;
        if (++cursor === views.length) cursor = 0;
        zs.send(v, opts, onSent);
      };
    } else if (a.mode === 'sendv') {
      // The header within one page, as most are: one straddling two pages next to a body of 16
      // pages would exceed a datagram's 17 fragments and take the copied-header path (measured
      // apart by bench/vector.ts).
      const headerLen = sendvHeaderSize(a.size);
      const headerRegion = Buffer.allocUnsafeSlow(headerLen + 4096);
      const skip = (4096 - (addressOf(headerRegion) % 4096)) % 4096;
      const header = headerRegion.subarray(skip, skip + headerLen).fill(0x48);
      const body = new Source(a.size - header.length, a.workingSet);
      // One array for every send: sendv() copies the list into its request.
      const chunks: Buffer[] = [header, header];
      issue = (): void => {
        chunks[1] = body.next();
        zs.sendv(chunks, opts, onSent);
      };
    } else if (a.mode === 'copy' || a.mode === 'zc' || a.mode === 'gso' || a.mode === 'msg-zc' || a.mode === 'sync-copy') {
      const src = new Source(a.size, a.workingSet);
      issue = (): void => {
        zs.send(src.next(), opts, onSent);
      };
    } else {
      throw new Error(`worker: mode ${a.mode} is not a uring-zc mode`);
    }
    const t = await measure(a, c, issue, NOT_BLOCKED, (p) => (pump = p));
    c.notifs = zs.stats().notifications - c.notifsBase;
    return t;
  } finally {
    await s?.close();
    await pool?.close();
    await ring?.close();
  }
}

/**
 * bare, bare-pool: the same SEND_ZC requests from a minimal TypeScript ring loop without the
 * library (bench/bare.ts), through the same send loop; bare-pool registers the hot buffer or the
 * whole cold region as fixed buffer 0. The socket is a dgram socket adopted by a library ring
 * only for its descriptor (the library sends nothing here).
 */
async function bareUdp(a: WorkerArgs, c: Counters): Promise<Timing> {
  const src = new Source(a.size, a.workingSet);
  const sock = await bindUdp(a);
  const ring = new Ring();
  const zs = ring.adopt(sock, { receive: false }); // send-only, as the uring-zc rows
  const fixed = a.mode === 'bare-pool';
  let pump = NO_PUMP;
  const bare = new BareRing((res, zeroCopy) => {
    if (res < 0) recordError(c, new Error(`send_zc failed: errno ${-res}`));
    else {
      c.sends++;
      c.bytes += res;
      if (!zeroCopy) c.copied++;
      c.notifs++;
    }
    pump.done();
  });
  try {
    const addrs = src.views.map((v) => addressOf(v));
    if (fixed) bare.register(addrs[0]!, src.hot ? a.size : addrs.length * a.size);
    const dest = encodeSockaddr(a.dst, a.port, a.dst.includes(':') ? 10 : 2);
    const destAddr = addressOf(dest);
    let cursor = 0;
    const issue = (): void => {
      const addr = addrs[cursor]!;
      if (++cursor === addrs.length) cursor = 0;
      bare.send(zs.fd, addr, a.size, destAddr, dest.length, fixed);
    };
    c.notifsNow = () => c.notifs;
    const t = await measure(a, c, issue, NOT_BLOCKED, (p) => (pump = p));
    c.notifs -= c.notifsBase;
    return t;
  } finally {
    bare.close();
    await zs.close();
    await ring.close();
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

/**
 * The registered memory of a zc-pool row and the order its sends walk it.
 * Hot: a pool of one buffer of `size` bytes, sent again while its earlier sends are in flight
 * (each send holds it; `qd` sends of it at once), as the C sender's zc-pool hot row.
 * Cold: the working set registered as one pool and walked in address order, `size` bytes per
 * send, wrapping, like the other cold rows: floor(workingSet / size) windows, in buffers of
 * `perBuf` windows each so that the pool stays within 65536 buffers (perBuf = 1 from 4 KiB up with
 * 256 MiB). The buffers are acquired all at once, so they are all ours from the start.
 */
function poolSource(ring: Ring, size: number, workingSet: number): { pool: BufferPool; views: Buffer[] } {
  const windows = workingSet === 0 ? 1 : Math.floor(workingSet / size);
  const perBuf = Math.ceil(windows / MAX_POOL_COUNT);
  const count = Math.floor(windows / perBuf);
  const pool = ring.createBufferPool({ bufferSize: perBuf * size, count });
  const bufs: Buffer[] = [];
  for (let b = pool.acquire(); b !== null; b = pool.acquire()) bufs.push(b);
  if (bufs.length !== count) throw new Error(`worker: acquired ${bufs.length} of the pool's ${count} buffers`);
  bufs.sort((x, y) => x.byteOffset - y.byteOffset);
  const first = bufs[0]!;
  // The buffers are consecutive in one region: fill it as the C sender fills its own.
  if (workingSet === 0) first.fill(0x5a);
  else fillPattern(Buffer.from(first.buffer, first.byteOffset, count * perBuf * size));
  const views: Buffer[] = [];
  for (const b of bufs) {
    for (let k = 0; k < perBuf; k++) views.push(perBuf === 1 ? b : b.subarray(k * size, (k + 1) * size));
  }
  return { pool, views };
}

export interface Timing {
  seconds: number;
  cpuUser: number;
  cpuSys: number;
}

/**
 * Runs the send loop and times it: wall clock and process CPU of the send phase after the
 * warm-up. When the clock starts, the counters start over (errors are kept: they count whenever
 * they happen).
 */
async function measure(a: WorkerArgs, c: Counters, issue: () => void, blocked: () => boolean, setPump: (p: Pump) => void): Promise<Timing> {
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  await runLoop(a, c, issue, blocked, setPump, (now) => {
    startOver(c);
    cpu0 = process.cpuUsage();
    t0 = now;
  });
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (t1 - t0) / 1000, cpuUser: cpu.user / 1e6, cpuSys: cpu.system / 1e6 };
}

/** Runs the C sender with the same flags and relabels its line. */
async function cRef(a: WorkerArgs): Promise<WorkerResult> {
  if (C_REF_SENDER === null) throw new Error(`worker: ${C_REF_SENDER_MISSING ?? ''}`);
  const child = spawn(C_REF_SENDER, cSenderArgs(a), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`worker: the C sender exited with status ${String(code)}`);
  const line = out.trim().split('\n').pop() ?? '';
  const r = JSON.parse(line) as WorkerResult;
  return { ...r, mode: a.mode, scenario: a.scenario, workingSet: a.workingSet === 0 ? 'hot' : 'cold' };
}

export async function runWorker(a: WorkerArgs): Promise<WorkerResult> {
  if (isCMode(a.mode)) return cRef(a);
  const c: Counters = { sends: 0, bytes: 0, copied: 0, notifs: 0, errors: 0, firstError: null, notifsNow: null, notifsBase: 0 };
  const t = a.file !== '' ? await fileRow(a, c, recordError)
    : a.mode === 'node' ? await (a.tcp ? nodeTcp(a, c) : nodeUdp(a, c))
    : a.mode === 'bare' || a.mode === 'bare-pool' ? await bareUdp(a, c) : await uring(a, c);
  return {
    mode: a.mode,
    scenario: a.scenario,
    size: a.size,
    workingSet: a.workingSet === 0 ? 'hot' : 'cold',
    sends: c.sends,
    bytes: c.bytes,
    seconds: round(t.seconds, 6),
    gbps: round(t.seconds > 0 ? c.bytes / t.seconds / 1e9 : 0, 4),
    sendsPerSec: Math.round(t.seconds > 0 ? c.sends / t.seconds : 0),
    copied: c.copied,
    notifs: c.notifs,
    errors: c.errors,
    cpuUser: round(t.cpuUser, 4),
    cpuSys: round(t.cpuSys, 4),
    firstError: c.firstError,
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// Run when executed, not when imported (the CLI imports the helpers above).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const result = await runWorker(parseWorkerArgs(process.argv.slice(2)));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (e) {
    // "worker: CODE: message": the orchestrator reports the code of a failed row.
    const err = e as { code?: unknown; message?: unknown };
    const text = String(err.message ?? e);
    process.stderr.write(`${text.startsWith('worker:') ? '' : 'worker: '}${typeof err.code === 'string' ? `${err.code}: ` : ''}${text}\n`);
    process.exitCode = 2;
  }
}
