/**
 * One benchmark row, measured in a process of its own, printed as one JSON line on stdout:
 * the C reference sender's fields plus `scenario` and `workingSet`.
 *
 *   node dist/bench/worker.js --mode node|copy|zc|zc-pool|c-ref --size BYTES --dst IP --port N
 *        [--tcp] [--qd 64] [--duration-ms 3000] [--max-sends N] [--working-set BYTES]
 *        [--scenario NAME] [--c-mode copy|zc|zc-pool]
 *
 * The flags are the C sender's (bench/ref/sender.c), so the orchestrator builds one argument list
 * for either. `qd` sends are kept in flight: each completion starts the next send from a shared
 * callback (no async function or closure per send). The send phase alone is timed: from the first
 * send until the last one in flight has settled (for uring-zc, at its notification), after
 * sending stopped at the deadline or the count bound. CPU is process.cpuUsage() over the same span.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { adopt, Ring, type SendResult, type ZeroCopySocket } from '../src/index.js';

export type WorkerMode = 'node' | 'copy' | 'zc' | 'zc-pool' | 'c-ref';

export interface WorkerArgs {
  mode: WorkerMode;
  size: number;
  dst: string;
  port: number;
  tcp: boolean;
  qd: number;
  durationMs: number;
  maxSends: number;
  /** 0: hot (one buffer re-sent); otherwise the cold region's size in bytes. */
  workingSet: number;
  scenario: string;
  /** The C sender's mode for `c-ref`. */
  cMode: 'copy' | 'zc' | 'zc-pool';
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

/** The C reference sender, built by `npm run build` next to the addon. */
export const C_REF_SENDER = fileURLToPath(new URL('../../build/Release/uzc_ref_sender', import.meta.url));

/** Stops starting sends after this many failures: a broken socket would otherwise spin. */
const MAX_ERRORS = 1000;

/** Why zc-pool cannot run, or null when the library has registered buffer pools. */
export function zcPoolUnavailableReason(): string | null {
  const proto = Ring.prototype as unknown as Record<string, unknown>;
  return typeof proto['createBufferPool'] === 'function' ? null : 'needs registered buffer pools (not yet supported)';
}

export function parseWorkerArgs(argv: readonly string[]): WorkerArgs {
  const a: WorkerArgs = {
    mode: 'zc', size: 0, dst: '', port: 0, tcp: false, qd: 64, durationMs: 3000,
    maxSends: Number.MAX_SAFE_INTEGER, workingSet: 0, scenario: 'custom', cMode: 'zc',
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
        if (v !== 'node' && v !== 'copy' && v !== 'zc' && v !== 'zc-pool' && v !== 'c-ref') throw new Error(`worker: unknown mode ${String(v)}`);
        a.mode = v;
        required |= 1;
        break;
      case '--size': a.size = num(f, v, 1, 64 * 1024 * 1024); required |= 2; break;
      case '--dst': a.dst = v ?? ''; required |= 4; break;
      case '--port': a.port = num(f, v, 1, 65535); required |= 8; break;
      case '--qd': a.qd = num(f, v, 1, 32768); break;
      case '--duration-ms': a.durationMs = num(f, v, 1, 3_600_000); break;
      case '--max-sends': a.maxSends = num(f, v, 1, Number.MAX_SAFE_INTEGER); break;
      case '--working-set': a.workingSet = num(f, v, 0, 2 ** 40); break;
      case '--scenario': a.scenario = v ?? 'custom'; break;
      case '--c-mode':
        if (v !== 'copy' && v !== 'zc' && v !== 'zc-pool') throw new Error(`worker: unknown --c-mode ${String(v)}`);
        a.cMode = v;
        break;
      default: throw new Error(`worker: unknown option ${f}`);
    }
  }
  if (required !== 15) throw new Error('worker: --mode, --size, --dst and --port are required');
  if (a.workingSet !== 0 && a.workingSet < a.size) throw new Error('worker: --working-set must be 0 or at least --size');
  if (!a.tcp && a.size > 65507) throw new Error('worker: a UDP send carries at most 65507 bytes');
  return a;
}

/** The C sender's flags for the same row. */
export function cSenderArgs(a: WorkerArgs): string[] {
  const argv = ['--mode', a.cMode, '--size', String(a.size), '--dst', a.dst, '--port', String(a.port),
    '--qd', String(a.qd), '--duration-ms', String(a.durationMs), '--working-set', String(a.workingSet)];
  if (a.maxSends < Number.MAX_SAFE_INTEGER) argv.push('--max-sends', String(a.maxSends));
  if (a.tcp) argv.push('--tcp');
  return argv;
}

/**
 * The buffers a row sends: `next()` returns the next one. Hot: the same Buffer every time (zero
 * copy allows it: the kernel only reads). Cold: consecutive `size`-byte windows of a region of
 * distinct bytes (every 8-byte word holds its offset, as in the C sender), wrapping at the end.
 */
class Source {
  private readonly region: Buffer;
  private offset = 0;
  constructor(private readonly size: number, workingSet: number) {
    if (workingSet === 0) {
      this.region = Buffer.allocUnsafeSlow(size);
      this.region.fill(0x5a);
    } else {
      this.region = Buffer.allocUnsafeSlow(workingSet);
      // Written before the clock starts: every page is faulted in and the bytes are distinct.
      const words = new Uint32Array(this.region.buffer, this.region.byteOffset, Math.floor(workingSet / 8) * 2);
      for (let w = 0; w < words.length; w += 2) {
        const off = w * 4;
        words[w] = off % 4294967296;
        words[w + 1] = Math.floor(off / 4294967296);
      }
      this.region.fill(0x33, words.length * 4);
    }
  }

  get hot(): boolean {
    return this.region.length === this.size;
  }

  next(): Buffer {
    if (this.region.length === this.size) return this.region;
    if (this.offset + this.size > this.region.length) this.offset = 0;
    const b = this.region.subarray(this.offset, this.offset + this.size);
    this.offset += this.size;
    return b;
  }
}

/** What the send loop counts; the modes add to it from their completion callbacks. */
interface Counters {
  sends: number;
  bytes: number;
  copied: number;
  notifs: number;
  errors: number;
  firstError: string | null;
}

/** The loop's two entry points, handed to a mode: one send settled; the mode can send again. */
interface Pump {
  done(): void;
  kick(): void;
}

/**
 * Keeps `qd` sends in flight until the deadline or `maxSends` (or `blocked()` says wait for a
 * kick), then waits for the rest. Resolves when sending stopped and nothing is in flight.
 */
function runLoop(a: WorkerArgs, c: Counters, issue: () => void, blocked: () => boolean, setPump: (p: Pump) => void): Promise<void> {
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
  const deadline = performance.now() + a.durationMs;
  const fill = (): void => {
    while (!stopped && inFlight < a.qd && !blocked()) {
      if (started >= a.maxSends || c.errors >= MAX_ERRORS || ((started & 15) === 0 && performance.now() >= deadline)) {
        stopped = true;
        break;
      }
      started++;
      inFlight++;
      issue();
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

/** Node's dgram: send with a callback, to the destination given per send (like the others). */
async function nodeUdp(a: WorkerArgs, src: Source, c: Counters): Promise<Timing> {
  const sock = dgram.createSocket(a.dst.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, () => resolve());
  });
  let pump = NO_PUMP;
  const size = a.size;
  // One callback for every send.
  const onSent = (err: Error | null): void => {
    if (err) recordError(c, err);
    else {
      c.sends++;
      c.bytes += size;
      c.copied++;
    }
    pump.done();
  };
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
async function nodeTcp(a: WorkerArgs, src: Source, c: Counters): Promise<Timing> {
  const sock = await connectTcp(a);
  let pump = NO_PUMP;
  let blocked = false;
  const size = a.size;
  const onWritten = (err?: Error | null): void => {
    if (err) recordError(c, err);
    else {
      c.sends++;
      c.bytes += size;
      c.copied++;
    }
    pump.done();
  };
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

/** uring-zc on an adopted socket: copying (zeroCopyThreshold: Infinity) or SEND_ZC. */
async function uring(a: WorkerArgs, src: Source, c: Counters): Promise<Timing> {
  const threshold = a.mode === 'copy' ? Infinity : 0;
  let zs: ZeroCopySocket;
  let closeNode: () => Promise<void>;
  let sendOptions: { address: string; port: number } | undefined;
  if (a.tcp) {
    const sock = await connectTcp(a);
    sock.on('error', (e) => recordError(c, e));
    zs = adopt(sock, { zeroCopyThreshold: threshold });
    closeNode = async () => {
      await zs.close();
      sock.destroy();
    };
  } else {
    const sock = dgram.createSocket(a.dst.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, () => resolve());
    });
    zs = adopt(sock, { zeroCopyThreshold: threshold });
    // One options object for every send: the library reads it, never keeps it.
    sendOptions = { address: a.dst, port: a.port };
    closeNode = async () => {
      await zs.close();
      await new Promise<void>((r) => sock.close(() => r()));
    };
  }
  const before = zs.stats();
  let pump = NO_PUMP;
  const onOk = (r: SendResult): void => {
    c.sends++;
    c.bytes += r.bytes;
    if (!r.zeroCopy) c.copied++;
    pump.done();
  };
  const onErr = (e: unknown): void => {
    recordError(c, e);
    pump.done();
  };
  const opts = sendOptions;
  const issue = opts === undefined
    ? (): void => void zs.send(src.next()).then(onOk, onErr)
    : (): void => void zs.send(src.next(), opts).then(onOk, onErr);
  const t = await measure(a, c, issue, NOT_BLOCKED, (p) => (pump = p));
  c.notifs = zs.stats().notifications - before.notifications;
  await closeNode();
  return t;
}

function connectTcp(a: WorkerArgs): Promise<net.Socket> {
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

interface Timing {
  seconds: number;
  cpuUser: number;
  cpuSys: number;
}

/** Runs the send loop and times it: wall clock and process CPU of the send phase only. */
async function measure(a: WorkerArgs, c: Counters, issue: () => void, blocked: () => boolean, setPump: (p: Pump) => void): Promise<Timing> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runLoop(a, c, issue, blocked, setPump);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (t1 - t0) / 1000, cpuUser: cpu.user / 1e6, cpuSys: cpu.system / 1e6 };
}

/** Runs the C sender with the same flags and relabels its line. */
async function cRef(a: WorkerArgs): Promise<WorkerResult> {
  if (!existsSync(C_REF_SENDER)) throw new Error(`worker: ${C_REF_SENDER} is missing (run npm run build)`);
  const child = spawn(C_REF_SENDER, cSenderArgs(a), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`worker: the C sender exited with status ${String(code)}`);
  const line = out.trim().split('\n').pop() ?? '';
  const r = JSON.parse(line) as WorkerResult;
  return { ...r, mode: 'c-ref', scenario: a.scenario, workingSet: a.workingSet === 0 ? 'hot' : 'cold' };
}

export async function runWorker(a: WorkerArgs): Promise<WorkerResult> {
  if (a.mode === 'c-ref') return cRef(a);
  if (a.mode === 'zc-pool') {
    // The gate the CLI checks too; the pool's send path is wired here once the library has one.
    throw new Error(`worker: zc-pool ${zcPoolUnavailableReason() ?? 'is not wired into the bench yet (bench/worker.ts)'}`);
  }
  const src = new Source(a.size, a.workingSet);
  const c: Counters = { sends: 0, bytes: 0, copied: 0, notifs: 0, errors: 0, firstError: null };
  const t = a.mode === 'node' ? await (a.tcp ? nodeTcp(a, src, c) : nodeUdp(a, src, c)) : await uring(a, src, c);
  return {
    mode: a.mode,
    scenario: a.scenario,
    size: a.size,
    workingSet: src.hot ? 'hot' : 'cold',
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
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
