/**
 * The orchestrator of `uring-zc bench`: decides which rows can run here (and says why the others
 * cannot), sets the scenarios up once, runs every row once per round with the rounds interleaved
 * (A B C A B C: slow drifts and noise hit every mode alike), each row in a fresh process, and
 * folds the rounds into medians. It never measures in its own process.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { capabilities } from '../src/index.js';
import {
  formatSize, gsoSegmentOf, isCMode, isSocketCMode, isSyscallMode, MIN_MEASURED_SECONDS, SWEEP_MODES, type BenchOptions, type Mode, type ScenarioName, type WorkingSet,
} from './args.js';
import { hasCapIpcLock } from './memlock.js';
import { netnsUnavailableReason } from './netns.js';
import { finish, killAll } from './procs.js';
import { scenarios, type ScenarioEnv } from './scenarios/index.js';
import { benchFilePath, makeBenchFiles, removeBenchFiles, streamUnavailableReason } from './file.js';
import { C_REF_SENDER, C_REF_SENDER_MISSING, cSenderArgs, MAX_POOL_BYTES, zcPoolUnavailableReason, type WorkerArgs, type WorkerResult } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** One measurement of one row (one round), as printed by the worker or the C sender. */
export interface RoundResult {
  seconds: number;
  sends: number;
  bytes: number;
  gbps: number;
  sendsPerSec: number;
  cpuUser: number;
  cpuSys: number;
  copied: number;
  notifs: number;
  errors: number;
}

/** A reported row: the median of its rounds. See docs/benchmarking.md for every field. */
export interface Row {
  scenario: ScenarioName;
  mode: Mode;
  size: number;
  workingSet: WorkingSet;
  gbps: number;
  gbpsMin: number;
  gbpsMax: number;
  sendsPerSec: number;
  /** UDP: datagrams per second (sendsPerSec x ⌈size / segmentSize⌉ for gso); TCP: null. */
  datagramsPerSec: number | null;
  /** gso rows: bytes per datagram; null otherwise. */
  segmentSize: number | null;
  cpuSecPerGB: number | null;
  copiedShare: number;
  vsNode: number | null;
  vsCRef: number | null;
  vsCRefPool: number | null;
  /** Against the c-msgzc row (the C sender's sendto(MSG_ZEROCOPY)): c-ref's is io_uring SEND_ZC over MSG_ZEROCOPY. */
  vsCMsgZc: number | null;
  /** Against the zc row (uring-zc SEND_ZC of ordinary Buffers): sendv's cost over one send. */
  vsZc: number | null;
  errors: number;
  firstError: string | null;
  rounds: RoundResult[];
}

export interface Skipped {
  what: string;
  reason: string;
}

/** An error as reported: its stable code where there is one (an errno name, ERR_URING_ZC_*). */
export interface ReportedError {
  code: string | null;
  message: string;
}

/**
 * A row whose run failed: its worker (or the C sender) exited with an error, timed out, or
 * stopped on send errors before it measured anything reportable (every send refused with
 * ENOMEM, say). Its later rounds are not run. It is listed in `skipped` too (as "failed: ...").
 */
export interface Failed {
  what: string;
  scenario: ScenarioName;
  mode: Mode;
  size: number;
  workingSet: WorkingSet;
  /** The round (1-based) that failed. */
  round: number;
  error: ReportedError;
}

/** One size of the --sweep: the winner among copy, zc and zc-pool per working set. */
export interface SweepEntry {
  size: number;
  workingSet: WorkingSet;
  /** Median GB/s by mode (null: the row was not measured). */
  gbps: Record<string, number | null>;
  /** The mode with the highest median, or null when none was measured. */
  winner: string | null;
  /** The winner's median over the runner-up's (1.10 = 10% ahead), or null. */
  margin: number | null;
}

/** --sweep: the table and, per working set, where zero copy starts to win. */
export interface Sweep {
  scenario: ScenarioName;
  sizes: number[];
  entries: SweepEntry[];
  /**
   * Per working set and zero-copy mode: the smallest sweep size from which that mode's median
   * GB/s is above copy's at that size and every larger one; null when copy wins at the largest.
   */
  crossover: Record<string, { zc: number | null; 'zc-pool': number | null }>;
}

export interface Report {
  version: 1;
  machine: { kernel: string; node: string; cpus: number; cpuModel: string };
  options: Record<string, unknown>;
  rows: Row[];
  skipped: Skipped[];
  /** Rows whose run failed, with the error. */
  failed: Failed[];
  /** --sweep only; null otherwise. */
  sweep: Sweep | null;
}

export interface RunHooks {
  /** A line of news for the user (skips, notes), printed as it happens. */
  note(text: string): void;
  /** Progress: `done` of `total` runs finished, the one starting now. */
  progress(done: number, total: number, what: string): void;
}

interface PlannedRow {
  scenario: ScenarioName;
  mode: Mode;
  size: number;
  workingSet: WorkingSet;
  key: string;
}

/** Everything set up by run(), so that SIGINT can tear it down synchronously. */
const active = new Set<ScenarioEnv>();

/** Kills every child and removes every namespace at once (SIGINT, SIGTERM). */
export function abortRun(): void {
  killAll();
  for (const env of active) {
    try {
      env.abort();
    } catch {
      // Tearing down on a signal: keep going with the rest.
    }
  }
  active.clear();
  if (fileDir !== null) removeBenchFiles(fileDir);
  fileDir = null;
}

function keyOf(scenario: string, mode: string, size: number, ws: string): string {
  return `${scenario}|${mode}|${size}|${ws}`;
}

/** Is the kernel operation of this row a copying one (so every send counts as copied)? */
function copyingMode(mode: Mode, o: BenchOptions): boolean {
  return mode === 'node' || mode === 'copy' || mode === 'c-sendto' || (mode === 'c-ref' && o.cRefMode === 'copy');
}

/** Does this row pin registered memory (so RLIMIT_MEMLOCK may stop it)? */
function registersMemory(mode: Mode, o: BenchOptions): boolean {
  return mode === 'zc-pool' || mode === 'c-ref-pool' || mode === 'bare-pool' || (mode === 'c-ref' && o.cRefMode === 'zc-pool');
}

/** Why `mode` cannot run here at all, or null. */
function modeUnavailableReason(mode: Mode, o: BenchOptions): string | null {
  if (mode === 'node') return null;
  if (mode === 'stream') {
    const r = streamUnavailableReason();
    if (r !== null) return r;
  }
  // sendto(MSG_ZEROCOPY) and plain sendto(2) need the C sender, not io_uring.
  if (isSocketCMode(mode)) return C_REF_SENDER_MISSING;
  if (mode === 'msg-zc' && !capabilities().backends.msg_zerocopy.ok) return `MSG_ZEROCOPY is not available: ${capabilities().backends.msg_zerocopy.reason ?? 'unknown reason'}`;
  if (isSyscallMode(mode)) return null;
  const caps = capabilities();
  if (!caps.ioUring || !caps.sendZc) return `io_uring zero-copy send is not available: ${caps.reason ?? 'unknown reason'}`;
  if (mode === 'zc-pool') {
    const r = zcPoolUnavailableReason();
    if (r !== null) return r;
  }
  if ((mode === 'sendv' || mode === 'gso') && !caps.sendmsgZc) return 'needs IORING_OP_SENDMSG_ZC (Linux 6.1)';
  if (isCMode(mode) && C_REF_SENDER_MISSING !== null) return C_REF_SENDER_MISSING;
  if (registersMemory(mode, o) && !caps.fixedBuffers) return 'registered buffers are not available (RLIMIT_MEMLOCK too low?)';
  return null;
}

/** Why one row cannot run (the mode can), or null. */
function rowUnavailableReason(p: PlannedRow, tcp: boolean, o: BenchOptions): string | null {
  if (p.mode === 'gso' && tcp) return 'UDP GSO is for UDP scenarios';
  if ((p.mode === 'bare' || p.mode === 'bare-pool') && tcp) return 'the bare ring sends UDP only';
  if (p.mode === 'sendv' && p.size < 2) return 'sendv needs at least 2 bytes (header and body)';
  if (registersMemory(p.mode, o)) {
    const bytes = p.workingSet === 'hot' ? p.size : o.workingSetSize;
    if (p.mode === 'zc-pool' && bytes > MAX_POOL_BYTES) return `a registered pool holds at most 1 GiB; --working-set-size is ${bytes} bytes`;
    // A process with CAP_IPC_LOCK (root, usually) registers without RLIMIT_MEMLOCK accounting;
    // others need the room. The capability, not the uid: root without it (a container,
    // setpriv --bounding-set=-ipc_lock) is limited like anyone.
    const limit = capabilities().memlockLimit;
    if (!hasCapIpcLock() && Number.isFinite(limit) && limit < bytes + 65536) {
      return `registering ${bytes} bytes needs RLIMIT_MEMLOCK above that (it is ${limit} bytes without CAP_IPC_LOCK: ulimit -l, or run as root)`;
    }
  }
  return null;
}

export async function run(o: BenchOptions, hooks: RunHooks): Promise<{ report: Report; failures: number }> {
  const skipped: Skipped[] = [];
  const failedRows: Failed[] = [];
  const skip = (what: string, reason: string): void => {
    skipped.push({ what, reason });
    hooks.note(`skipped ${what}: ${reason}`);
  };

  // Which scenarios can run here.
  let names: ScenarioName[] = [];
  const netnsReason = o.scenarios.some((s) => scenarios[s].needsNetns) ? netnsUnavailableReason() : null;
  for (const s of o.scenarios) {
    if (scenarios[s].needsNetns && netnsReason !== null) skip(s, `${netnsReason}; it needs a network namespace`);
    else names.push(s);
  }
  if (names.length === 0 && !o.scenariosExplicit) {
    hooks.note('running tcp-loopback instead (no root needed; loopback always copies, so it shows overhead, not zero-copy gains)');
    names = ['tcp-loopback'];
  }

  // Which modes.
  const modes: Mode[] = [];
  for (const m of o.modes) {
    const reason = modeUnavailableReason(m, o);
    if (reason !== null) skip(`mode ${m}`, reason);
    else modes.push(m);
  }

  // Set the scenarios up once for the whole run.
  const envs = new Map<ScenarioName, ScenarioEnv>();
  let failures = 0;
  try {
    if (o.file && modes.length > 0) {
      hooks.note(`making the files (${o.sizes.map(formatSize).join(', ')}) in the page cache`);
      fileDir = makeBenchFiles(o.sizes);
    }
    for (const s of names) {
      try {
        const env = await scenarios[s].setup();
        active.add(env);
        envs.set(s, env);
      } catch (e) {
        skip(s, `setup failed: ${(e as Error).message.trim()}`);
        failures++;
      }
    }

    const plan: PlannedRow[] = [];
    for (const [s, env] of envs) {
      for (const ws of o.workingSets) {
        for (const size of ws === 'hot' ? o.sizes : o.coldSizes) {
          for (const mode of modes) {
            const p = { scenario: s, mode, size, workingSet: ws, key: keyOf(s, mode, size, ws) };
            const why = rowUnavailableReason(p, env.tcp, o);
            if (why !== null) skip(`${s} ${mode} ${formatSize(size)} ${ws}`, why);
            else plan.push(p);
          }
        }
      }
    }

    if (plan.length > 0) {
      // ~0.25 s a run for process start-up (more with a cold working set to fill).
      const cold = plan.filter((p) => p.workingSet === 'cold').length;
      const est = Math.round(o.rounds * (plan.length * ((o.durationMs + o.warmupMs) / 1000 + 0.2) + cold * 0.3));
      hooks.note(`measuring ${plan.length} row${plan.length === 1 ? '' : 's'} x ${o.rounds} round${o.rounds === 1 ? '' : 's'} of ${o.durationMs / 1000} s after ${o.warmupMs / 1000} s of warm-up (about ${est} s)`);
    }
    const results = new Map<string, RoundResult[]>();
    const firstErrors = new Map<string, string>();
    const failed = new Set<string>();
    const total = plan.length * o.rounds;
    let done = 0;
    for (let round = 1; round <= o.rounds; round++) {
      for (const p of plan) {
        const what = `${p.scenario} ${p.mode} ${formatSize(p.size)} ${p.workingSet}`;
        hooks.progress(done, total, `round ${round}/${o.rounds}: ${what}`);
        if (failed.has(p.key)) {
          done++;
          continue;
        }
        const env = envs.get(p.scenario)!;
        const r = await measureRow(env, p, o);
        done++;
        // A round that stopped on send errors before measuring anything reportable failed too: its
        // short span says nothing about speed, its first error says why (it used to be reported as
        // "measured only 0.03 s; raise --duration").
        const error = 'failure' in r ? r.failure : stoppedOnErrors(r.result);
        if (error !== null || 'failure' in r) {
          failed.add(p.key);
          failures++;
          const e = error ?? { code: null, message: 'unknown failure' };
          failedRows.push({ what, scenario: p.scenario, mode: p.mode, size: p.size, workingSet: p.workingSet, round, error: e });
          skipped.push({ what, reason: `failed: ${formatError(e)}` });
          hooks.note(`FAILED ${what}, round ${round}: ${formatError(e)}`);
          continue;
        }
        if (r.result.firstError !== null && !firstErrors.has(p.key)) firstErrors.set(p.key, r.result.firstError);
        if (r.result.seconds < MIN_MEASURED_SECONDS) {
          hooks.note(`${what}, round ${round}: measured only ${r.result.seconds.toFixed(3)} s (${r.result.sends} sends, under ${MIN_MEASURED_SECONDS} s); not reported: raise --duration or --max-sends`);
          continue;
        }
        let list = results.get(p.key);
        if (list === undefined) results.set(p.key, (list = []));
        list.push(toRound(r.result, copyingMode(p.mode, o)));
      }
    }
    hooks.progress(total, total, 'done');

    const rows: Row[] = [];
    for (const p of plan) {
      const rs = results.get(p.key);
      if (failed.has(p.key)) continue;
      if (rs === undefined || rs.length === 0) {
        skipped.push({ what: `${p.scenario} ${p.mode} ${formatSize(p.size)} ${p.workingSet}`, reason: `every round measured under ${MIN_MEASURED_SECONDS} s` });
        continue;
      }
      rows.push(fold(p, rs, firstErrors.get(p.key) ?? null, envs.get(p.scenario)!.tcp, o));
    }
    addRatios(rows);
    return {
      report: {
        version: 1,
        machine: { kernel: os.release(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown' },
        options: {
          scenarios: [...o.scenarios],
          sizes: [...o.sizes],
          modes: [...o.modes],
          workingSets: [...o.workingSets],
          coldSizes: [...o.coldSizes],
          workingSetSize: o.workingSetSize,
          durationMs: o.durationMs,
          warmupMs: o.warmupMs,
          rounds: o.rounds,
          qd: o.qd,
          maxSends: o.maxSends,
          cRefMode: o.cRefMode,
          gsoSegment: o.gsoSegment,
          sweep: o.sweep,
          quick: o.quick,
          file: o.file,
          readChunk: o.readChunk,
        },
        rows,
        skipped,
        failed: failedRows,
        sweep: o.sweep ? makeSweep(rows, o) : null,
      },
      failures,
    };
  } finally {
    for (const env of envs.values()) {
      await env.dispose();
      active.delete(env);
    }
    if (fileDir !== null) removeBenchFiles(fileDir);
    fileDir = null;
  }
}

/** --file: the directory of this run's files (removed at the end, and by abortRun()), or null. */
let fileDir: string | null = null;

/** Runs one row once: the worker (or the C sender for the c-* rows) where the scenario sends from. */
async function measureRow(env: ScenarioEnv, p: PlannedRow, o: BenchOptions): Promise<{ result: WorkerResult } | { failure: ReportedError }> {
  const wa: WorkerArgs = {
    mode: p.mode,
    size: p.size,
    dst: env.dst,
    port: env.port,
    tcp: env.tcp,
    qd: o.qd,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
    maxSends: o.maxSends,
    workingSet: p.workingSet === 'hot' ? 0 : o.workingSetSize,
    segment: p.mode === 'gso' ? gsoSegmentOf(p.size, o.gsoSegment) : 0,
    scenario: p.scenario,
    cMode: o.cRefMode,
    file: fileDir === null ? '' : benchFilePath(fileDir, p.size),
    readChunk: o.readChunk,
  };
  let argv: string[];
  if (isCMode(p.mode)) {
    // modeUnavailableReason() skipped every C row where the sender is missing.
    argv = [C_REF_SENDER ?? 'uzc_ref_sender', ...cSenderArgs(wa)];
  } else {
    argv = [process.execPath, WORKER, '--mode', p.mode, '--size', String(p.size), '--dst', env.dst, '--port', String(env.port),
      '--qd', String(o.qd), '--duration-ms', String(o.durationMs), '--warmup-ms', String(o.warmupMs), '--max-sends', String(o.maxSends),
      '--working-set', String(wa.workingSet), '--scenario', p.scenario];
    if (wa.segment > 0) argv.push('--segment', String(wa.segment));
    if (wa.file !== '') argv.push('--file', wa.file, '--read-chunk', String(wa.readChunk));
    if (env.tcp) argv.push('--tcp');
  }
  // Bounded: the duration, plus start-up, filling a cold working set, and draining.
  // A file row sends whole files: two at least (the warm-up ends at a file's end), at 50 MB/s or more.
  const timeoutMs = o.durationMs + o.warmupMs + 30_000 + Math.ceil(wa.workingSet / (64 * 1024 * 1024)) * 1000 +
    (wa.file === '' ? 0 : Math.ceil((3 * p.size) / 50e6) * 1000);
  const f = await finish(env.spawnSender(argv), timeoutMs);
  const why = f.timedOut ? `no result within ${timeoutMs} ms (killed)` : f.code !== 0 ? `exit status ${String(f.code ?? f.signal)}` : '';
  const line = f.stdout.trim().split('\n').pop() ?? '';
  if (why !== '') {
    const said = f.stderr.trim() ? lastLines(f.stderr) : '';
    return { failure: { code: codeIn(said), message: said === '' ? why : `${why}: ${said}` } };
  }
  let parsed: WorkerResult;
  try {
    parsed = JSON.parse(line) as WorkerResult;
  } catch {
    return { failure: { code: null, message: `unreadable output ${JSON.stringify(line.slice(0, 200))}` } };
  }
  if (typeof parsed.seconds !== 'number' || typeof parsed.bytes !== 'number') {
    return { failure: { code: null, message: `output without seconds/bytes: ${line.slice(0, 200)}` } };
  }
  return { result: { ...parsed, mode: p.mode, scenario: p.scenario, workingSet: p.workingSet } };
}

/** "CODE: message", or the message alone when there is no code. */
export function formatError(e: ReportedError): string {
  return e.code === null || e.message.startsWith(e.code) ? e.message : `${e.code}: ${e.message}`;
}

/** The first stable error code in `text`: ERR_URING_ZC_*, other ERR_*, or an errno name. */
function codeIn(text: string): string | null {
  return /\b(ERR_[A-Z0-9_]+)\b/.exec(text)?.[1] ?? /\b(E[A-Z0-9]{2,})\b/.exec(text)?.[1] ?? null;
}

/**
 * The error of a round that stopped on send errors before it measured a reportable span (no
 * send succeeded, or under MIN_MEASURED_SECONDS), or null for any other round. The worker's
 * firstError is "CODE: message", the C sender's an errno name alone.
 */
function stoppedOnErrors(r: WorkerResult): ReportedError | null {
  if (r.errors === 0 || (r.sends > 0 && r.seconds >= MIN_MEASURED_SECONDS)) return null;
  const first = r.firstError ?? 'unknown error';
  const m = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(first);
  const code = m?.[1] ?? (/^E[A-Z0-9]+$/.test(first) ? first : codeIn(first));
  return { code, message: `${r.errors} send${r.errors === 1 ? '' : 's'} failed, ${r.sends} succeeded in ${r.seconds.toFixed(3)} s; the first: ${m?.[2] ?? first}` };
}

/** What a failed child said: its first error line (not the stack's tail), else its last lines. */
function lastLines(text: string): string {
  const lines = text.trim().split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const err = lines.find((l) => /^(\w*Error\b|worker:|sender:|uring-zc:)/.test(l) || /\bERR_[A-Z_]+\b/.test(l));
  if (err !== undefined) return err.length > 400 ? `${err.slice(0, 400)}…` : err;
  return lines.slice(-3).join(' | ');
}

function toRound(r: WorkerResult, copying: boolean): RoundResult {
  return {
    seconds: r.seconds,
    sends: r.sends,
    bytes: r.bytes,
    gbps: r.gbps,
    sendsPerSec: r.sendsPerSec,
    cpuUser: r.cpuUser,
    cpuSys: r.cpuSys,
    // A copying request copies every byte by definition (the C sender counts only COPIED notifications).
    copied: copying ? r.sends : r.copied,
    notifs: r.notifs,
    errors: r.errors,
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function fold(p: PlannedRow, rs: RoundResult[], firstError: string | null, tcp: boolean, o: BenchOptions): Row {
  const gb = rs.map((r) => r.gbps);
  const cpu = rs.filter((r) => r.bytes > 0).map((r) => (r.cpuUser + r.cpuSys) / (r.bytes / 1e9));
  const sends = rs.reduce((a, r) => a + r.sends, 0);
  const copied = rs.reduce((a, r) => a + r.copied, 0);
  const sendsPerSec = Math.round(median(rs.map((r) => r.sendsPerSec)));
  const segmentSize = p.mode === 'gso' ? gsoSegmentOf(p.size, o.gsoSegment) : null;
  return {
    scenario: p.scenario,
    mode: p.mode,
    size: p.size,
    workingSet: p.workingSet,
    gbps: round4(median(gb)),
    gbpsMin: round4(Math.min(...gb)),
    gbpsMax: round4(Math.max(...gb)),
    sendsPerSec,
    datagramsPerSec: tcp ? null : sendsPerSec * (segmentSize === null ? 1 : Math.ceil(p.size / segmentSize)),
    segmentSize,
    cpuSecPerGB: cpu.length > 0 ? round4(median(cpu)) : null,
    copiedShare: sends > 0 ? round4(copied / sends) : 0,
    vsNode: null,
    vsCRef: null,
    vsCRefPool: null,
    vsCMsgZc: null,
    vsZc: null,
    errors: rs.reduce((a, r) => a + r.errors, 0),
    firstError,
    rounds: rs,
  };
}

/**
 * vsNode / vsCRef / vsCRefPool / vsCMsgZc / vsZc: this row against the node / c-ref / c-ref-pool / c-msgzc / zc row of the same
 * scenario, size and working set (null where that row was not measured): the median of the
 * per-round ratios. The rows of one round run back to back, so each ratio compares two
 * measurements taken seconds apart; on a machine whose speed drifts (a VM's CPU share swings
 * here by up to 2x from one second to the next) that is far steadier than a ratio of medians,
 * which is the fallback when the round counts differ.
 */
function addRatios(rows: Row[]): void {
  const by = new Map(rows.map((r) => [keyOf(r.scenario, r.mode, r.size, r.workingSet), r]));
  const ratio = (r: Row, mode: Mode): number | null => {
    const base = by.get(keyOf(r.scenario, mode, r.size, r.workingSet));
    if (!base || base.gbps <= 0) return null;
    if (base.rounds.length === r.rounds.length && r.rounds.length > 0) {
      const per = r.rounds.map((x, i) => x.gbps / base.rounds[i]!.gbps).filter((v) => Number.isFinite(v));
      if (per.length === r.rounds.length) return round4(median(per));
    }
    return round4(r.gbps / base.gbps);
  };
  for (const r of rows) {
    r.vsNode = ratio(r, 'node');
    r.vsCRef = ratio(r, 'c-ref');
    r.vsCRefPool = ratio(r, 'c-ref-pool');
    r.vsCMsgZc = ratio(r, 'c-msgzc');
    r.vsZc = ratio(r, 'zc');
  }
}

/** The --sweep summary: per size and working set the best of copy, zc and zc-pool; the crossovers. */
export function makeSweep(rows: readonly Row[], o: BenchOptions): Sweep | null {
  const scenario = rows.find((r) => SWEEP_MODES.includes(r.mode))?.scenario;
  if (scenario === undefined) return null;
  const by = new Map(rows.filter((r) => r.scenario === scenario).map((r) => [keyOf(r.scenario, r.mode, r.size, r.workingSet), r]));
  const gbpsOf = (mode: Mode, size: number, ws: WorkingSet): number | null => by.get(keyOf(scenario, mode, size, ws))?.gbps ?? null;
  const entries: SweepEntry[] = [];
  const crossover: Sweep['crossover'] = {};
  for (const ws of o.workingSets) {
    const sizes = ws === 'hot' ? o.sizes : o.coldSizes;
    for (const size of sizes) {
      const gbps: Record<string, number | null> = {};
      for (const m of SWEEP_MODES) gbps[m] = gbpsOf(m, size, ws);
      const ranked = SWEEP_MODES.map((m) => [m, gbps[m]] as const)
        .filter((x): x is readonly [Mode, number] => x[1] !== null)
        .sort((x, y) => y[1] - x[1]);
      const winner = ranked[0]?.[0] ?? null;
      const margin = ranked.length >= 2 && ranked[1]![1] > 0 ? round4(ranked[0]![1] / ranked[1]![1]) : null;
      entries.push({ size, workingSet: ws, gbps, winner, margin });
    }
    crossover[ws] = { zc: crossoverOf('zc', sizes, ws, gbpsOf), 'zc-pool': crossoverOf('zc-pool', sizes, ws, gbpsOf) };
  }
  return { scenario, sizes: [...o.sizes], entries, crossover };
}

/** The smallest size from which `mode` beats copy at it and at every larger size measured. */
function crossoverOf(mode: Mode, sizes: readonly number[], ws: WorkingSet, gbpsOf: (m: Mode, s: number, ws: WorkingSet) => number | null): number | null {
  const sorted = [...sizes].sort((a, b) => a - b);
  let from: number | null = null;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const z = gbpsOf(mode, sorted[i]!, ws);
    const c = gbpsOf('copy', sorted[i]!, ws);
    if (z === null || c === null || z <= c) break;
    from = sorted[i]!;
  }
  return from;
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
