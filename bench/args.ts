/**
 * Command-line options of `uring-zc bench` and `uring-zc capabilities`: parsed, validated and
 * frozen here, before anything is measured. Every rejection is a UsageError naming the option and
 * what it expects; the CLI prints it and exits with status 2.
 */

/** A bad command line (exit status 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const SCENARIOS = ['udp-sink', 'tcp-loopback', 'tcp-veth'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * What a row measures. `c-ref` is the project's C reference sender (bench/ref/sender.c: build/Release/uzc_ref_sender in a checkout, prebuilds/<platform>-<arch>/ in the package)
 * in `--c-ref-mode` (SEND_ZC by default); `c-ref-pool` is the same sender in its `zc-pool` mode
 * (SEND_ZC from registered buffers), the like-for-like ceiling of `zc-pool`. `c-msgzc` and
 * `c-sendto` are the same C sender without io_uring: `sendto(MSG_ZEROCOPY)` with completions from
 * the socket's error queue (its `msg-zc` mode), and plain copying `sendto(2)` (its `sync-copy`
 * mode), so that one run compares io_uring SEND_ZC with the older zero-copy mechanism and with
 * the plain syscall, all in C. They are named after the system call they measure: `c-copy`
 * would read as `--c-ref-mode copy`, which is io_uring's copying IORING_OP_SEND. `bare` and
 * `bare-pool` send the same SEND_ZC requests from a minimal TypeScript ring loop without the
 * library (bench/bare.ts): the ceiling of any event-loop-driven TypeScript ring (UDP only).
 */
export const MODES = ['node', 'copy', 'zc', 'zc-pool', 'sendv', 'gso', 'msg-zc', 'sync-copy', 'bare', 'bare-pool', 'c-ref', 'c-ref-pool', 'c-msgzc', 'c-sendto', 'send-loop', 'sendfile', 'stream'] as const;
export type Mode = (typeof MODES)[number];

/**
 * The rows of `--file` (bench/file.ts): one file sent again and again over TCP. `node` is then
 * Node's fs.createReadStream(path).pipe(socket); `send-loop` the same chunks through zs.send();
 * `sendfile` zs.sendFile(path); `stream` pipeline(file stream, zs.createWriteStream()).
 */
export const FILE_MODES = ['node', 'send-loop', 'sendfile', 'stream'] as const;
/** --file's default sizes: 1 GiB (far larger than any CPU cache, in the page cache) and a hot 1 MiB. */
export const DEFAULT_FILE_SIZES = [1 << 30, 1 << 20];
/** Largest file the bench makes. */
export const MAX_FILE_SIZE = 4 * 1024 ** 3;
/** Largest --read-chunk (fs.createReadStream's highWaterMark of the file rows). */
export const MAX_READ_CHUNK = 64 * 1024 * 1024;

/** Modes that run the C sender rather than the Node worker. */
export function isCMode(m: Mode): m is 'c-ref' | 'c-ref-pool' | 'c-msgzc' | 'c-sendto' {
  return m === 'c-ref' || m === 'c-ref-pool' || m === 'c-msgzc' || m === 'c-sendto';
}

/** C rows that use no io_uring at all (they run where io_uring is blocked, too). */
/** uring-zc rows on a backend without io_uring (adopt's `backend` option): they run where io_uring is refused. */
export function isSyscallMode(m: Mode): m is 'msg-zc' | 'sync-copy' {
  return m === 'msg-zc' || m === 'sync-copy';
}

export function isSocketCMode(m: Mode): m is 'c-msgzc' | 'c-sendto' {
  return m === 'c-msgzc' || m === 'c-sendto';
}

/** The C sender's --mode for a C row (`c-ref`: --c-ref-mode). */
export function cSenderMode(m: 'c-ref' | 'c-ref-pool' | 'c-msgzc' | 'c-sendto', cRefMode: CMode): string {
  return m === 'c-ref-pool' ? 'zc-pool' : m === 'c-msgzc' ? 'msg-zc' : m === 'c-sendto' ? 'sync-copy' : cRefMode;
}

/** The C sender's io_uring modes; `--c-ref-mode` picks the one the `c-ref` rows run. */
export const C_MODES = ['copy', 'zc', 'zc-pool'] as const;
export type CMode = (typeof C_MODES)[number];

export type WorkingSet = 'hot' | 'cold';

/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
export const MAX_UDP_SIZE = 65507;
/** Largest TCP send the bench accepts (one Buffer per send). */
export const MAX_TCP_SIZE = 64 * 1024 * 1024;
/** Rows (of one round) measured for less than this are not reported: too noisy to mean anything. */
export const MIN_MEASURED_SECONDS = 0.2;
/** Header bytes of a `sendv` row (half the size below 2 KiB): sendv([header, body]). */
export const SENDV_HEADER = 1024;
/** The header of a `sendv` row of `size` bytes; the body is the rest. */
export function sendvHeaderSize(size: number): number {
  return Math.min(SENDV_HEADER, Math.floor(size / 2));
}
/** Default GSO segment: a datagram that fits a 1500-byte MTU (1500 - 20 IPv4 - 8 UDP). */
export const DEFAULT_GSO_SEGMENT = 1472;
/** The GSO segment of a `gso` row of `size` bytes: --gso-segment, or the size when smaller. */
export function gsoSegmentOf(size: number, gsoSegment: number): number {
  return Math.min(size, gsoSegment);
}
/** The sizes of --sweep; 64k is 65507 (the largest UDP payload) when a UDP scenario is measured. */
export const SWEEP_SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536] as const;
export const SWEEP_MODES: readonly Mode[] = ['copy', 'zc', 'zc-pool'];

export interface BenchOptions {
  readonly scenarios: readonly ScenarioName[];
  /** --scenario was given (otherwise an unavailable default may be replaced by tcp-loopback). */
  readonly scenariosExplicit: boolean;
  readonly sizes: readonly number[];
  readonly modes: readonly Mode[];
  /** Working sets measured: hot rows for every size, cold rows for `coldSizes`. */
  readonly workingSets: readonly WorkingSet[];
  /** The sizes also measured cold (a subset of `sizes`; empty without a cold working set). */
  readonly coldSizes: readonly number[];
  readonly workingSetSize: number;
  /** Per row per round, milliseconds. */
  readonly durationMs: number;
  /** Per row per round: sending before the clock starts (JIT warm-up), milliseconds. */
  readonly warmupMs: number;
  readonly rounds: number;
  readonly qd: number;
  /** Per row per round: the count bound next to the time bound. */
  readonly maxSends: number;
  readonly cRefMode: CMode;
  /** `gso` rows: bytes per datagram (a row of `size` bytes uses min(size, gsoSegment)). */
  readonly gsoSegment: number;
  /** --sweep: the copy threshold sweep (sizes and modes fixed; its own table and crossover line). */
  readonly sweep: boolean;
  /** null: no JSON; '-': JSON on stdout (the table goes to stderr); else a file path. */
  readonly json: string | null;
  readonly chart: string | null;
  readonly quick: boolean;
  /** --file: the file rows (FILE_MODES; `sizes` are file sizes). */
  readonly file: boolean;
  /**
   * --file: the highWaterMark of the rows' fs.createReadStream (node, send-loop, stream), bytes.
   * Node's default, 64 KiB, makes the reading the bound of all three on a fast path (a read on
   * the thread pool per 64 KiB); a larger one leaves the send side to be measured.
   */
  readonly readChunk: number;
}

export interface CapabilitiesOptions {
  readonly json: boolean;
}

export type Command =
  | { readonly command: 'bench'; readonly options: BenchOptions }
  | { readonly command: 'capabilities'; readonly options: CapabilitiesOptions }
  | { readonly command: 'help'; readonly topic: 'bench' | 'capabilities' | 'main' }
  | { readonly command: 'version' };

export const DEFAULTS = Object.freeze({
  scenarios: ['udp-sink'] as ScenarioName[],
  sizes: [4096, 16384, 60000],
  modes: ['node', 'copy', 'zc', 'zc-pool', 'c-ref', 'c-ref-pool'] as Mode[],
  /** Without --sizes, --working-set and --cold-sizes: every size hot, and 60000 cold as well. */
  workingSets: ['hot', 'cold'] as WorkingSet[],
  coldSizes: [60000],
  workingSetSize: 256 * 1024 * 1024,
  // (3 hot sizes + 1 cold) x 6 modes = 24 rows x 3 rounds x 0.5 s = 36 s of sending, about 50 s
  // with process start-up (~0.1-0.3 s a run) and filling / registering the cold region.
  durationMs: 500,
  // A Node process runs its first ~100 ms of sends in the interpreter and baseline code before
  // V8 optimises the send path; a server does that once in its life, so rows measure after it.
  warmupMs: 200,
  rounds: 3,
  qd: 64,
  maxSends: 50_000_000,
  cRefMode: 'zc' as CMode,
  gsoSegment: DEFAULT_GSO_SEGMENT,
  quickDurationMs: 400,
  quickWarmupMs: 100,
  quickRounds: 1,
  /** --read-chunk: Node's own default highWaterMark of fs.createReadStream. */
  readChunk: 64 * 1024,
});

const BENCH_FLAGS = new Set([
  '--scenario', '--sizes', '--modes', '--working-set', '--working-set-size', '--duration', '--warmup', '--rounds',
  '--qd', '--max-sends', '--c-ref-mode', '--json', '--chart', '--quick', '--help',
  '--cold-sizes', '--gso-segment', '--sweep', '--file', '--read-chunk',
]);
/** Flags that take no value. `--json` takes an optional one. */
const BOOLEAN_FLAGS = new Set(['--quick', '--help', '--sweep', '--file']);

export function parseCommandLine(argv: readonly string[]): Command {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return { command: 'help', topic: 'main' };
  if (sub === '--version' || sub === '-v' || sub === 'version') return { command: 'version' };
  if (sub === 'bench') {
    if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: 'bench' };
    return { command: 'bench', options: parseBenchOptions(rest) };
  }
  if (sub === 'capabilities') {
    if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: 'capabilities' };
    let json = false;
    for (const a of rest) {
      if (a === '--json') json = true;
      else throw new UsageError(`capabilities: unknown option "${a}" (known: --json, --help)`);
    }
    return { command: 'capabilities', options: { json } };
  }
  throw new UsageError(`unknown command "${sub}" (known: bench, capabilities)`);
}

/** Splits argv into [flag, value] pairs: `--flag value`, `--flag=value`, bare boolean flags. */
function pairs(argv: readonly string[]): Array<[string, string | undefined]> {
  const out: Array<[string, string | undefined]> = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}" (options start with --; see --help)`);
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    if (!BENCH_FLAGS.has(flag)) throw new UsageError(`unknown option "${flag}" (see uring-zc bench --help)`);
    if (eq >= 0) {
      if (BOOLEAN_FLAGS.has(flag)) throw new UsageError(`${flag} takes no value`);
      out.push([flag, a.slice(eq + 1)]);
      continue;
    }
    if (BOOLEAN_FLAGS.has(flag)) {
      out.push([flag, undefined]);
      continue;
    }
    const next = argv[i + 1];
    if (flag === '--json') {
      // The file is optional: a following option is not a file name.
      if (next !== undefined && !next.startsWith('--')) {
        out.push([flag, next]);
        i++;
      } else {
        out.push([flag, undefined]);
      }
      continue;
    }
    if (next === undefined || next.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    out.push([flag, next]);
    i++;
  }
  return out;
}

export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  let scenarios: ScenarioName[] | undefined;
  let sizesText: string | undefined;
  let coldSizesText: string | undefined;
  let modes: Mode[] | undefined;
  let workingSets: WorkingSet[] | undefined;
  let workingSetSize: number | undefined;
  let durationMs: number | undefined;
  let warmupMs: number | undefined;
  let rounds: number | undefined;
  let qd: number | undefined;
  let maxSends: number | undefined;
  let cRefMode: CMode | undefined;
  let gsoSegment: number | undefined;
  let json: string | null = null;
  let chart: string | null = null;
  let quick = false;
  let sweep = false;
  let file = false;
  let readChunk: number | undefined;
  const seen = new Set<string>();
  for (const [flag, value] of pairs(argv)) {
    if (seen.has(flag)) throw new UsageError(`${flag} given twice`);
    seen.add(flag);
    const v = value ?? '';
    switch (flag) {
      case '--scenario':
        scenarios = list(flag, v, SCENARIOS);
        break;
      case '--sizes':
        sizesText = v;
        break;
      case '--cold-sizes':
        coldSizesText = v;
        break;
      case '--modes':
        modes = list(flag, v, MODES);
        break;
      case '--working-set':
        if (v === 'both') workingSets = ['hot', 'cold'];
        else if (v === 'hot' || v === 'cold') workingSets = [v];
        else throw new UsageError(`--working-set must be hot, cold or both, got "${v}"`);
        break;
      case '--working-set-size':
        workingSetSize = parseBytes(flag, v);
        if (workingSetSize < 1 || workingSetSize > 16 * 1024 ** 3) {
          throw new UsageError(`--working-set-size must be between 1 byte and 16g, got "${v}"`);
        }
        break;
      case '--duration':
        durationMs = parseDuration(flag, v);
        break;
      case '--warmup':
        warmupMs = v.trim() === '0' ? 0 : parseDuration(flag, v);
        break;
      case '--rounds':
        rounds = parseInteger(flag, v, 1, 100);
        break;
      case '--qd':
        qd = parseInteger(flag, v, 1, 4096);
        break;
      case '--max-sends':
        maxSends = parseInteger(flag, v, 1, Number.MAX_SAFE_INTEGER);
        break;
      case '--c-ref-mode':
        if (!(C_MODES as readonly string[]).includes(v)) {
          throw new UsageError(`--c-ref-mode must be one of ${C_MODES.join(', ')}, got "${v}"`);
        }
        cRefMode = v as CMode;
        break;
      case '--gso-segment':
        gsoSegment = parseBytes(flag, v);
        if (gsoSegment < 1 || gsoSegment > MAX_UDP_SIZE) {
          throw new UsageError(`--gso-segment must be between 1 and ${MAX_UDP_SIZE} bytes, got "${v}"`);
        }
        break;
      case '--json':
        json = value === undefined ? '-' : value;
        if (json === '') throw new UsageError('--json=FILE needs a file name');
        break;
      case '--chart':
        if (!v.endsWith('.svg')) throw new UsageError(`--chart needs a file name ending in .svg, got "${v}"`);
        chart = v;
        break;
      case '--quick':
        quick = true;
        break;
      case '--sweep':
        sweep = true;
        break;
      case '--file':
        file = true;
        break;
      case '--read-chunk':
        readChunk = parseBytes(flag, v);
        if (readChunk < 1024 || readChunk > MAX_READ_CHUNK) {
          throw new UsageError(`--read-chunk must be between 1k and 64m, got "${v}"`);
        }
        break;
      default:
        throw new UsageError(`unknown option "${flag}"`);
    }
  }
  if (file) return fileOptions(seen, scenarios, sizesText, modes, { durationMs, warmupMs, rounds, maxSends, json, chart, quick, readChunk });
  if (readChunk !== undefined) throw new UsageError('--read-chunk applies to the file rows: it needs --file');
  for (const m of modes ?? []) {
    if (m === 'send-loop' || m === 'sendfile' || m === 'stream') throw new UsageError(`--modes: ${m} is a file row: it needs --file`);
  }
  const sc = scenarios ?? DEFAULTS.scenarios;
  let sizes: number[];
  let ws: WorkingSet[];
  let coldSizes: number[];
  if (sweep) {
    // The sweep fixes what it compares: copy, zc and zc-pool at 1k..64k, hot and cold.
    for (const f of ['--sizes', '--modes', '--cold-sizes']) {
      if (seen.has(f)) throw new UsageError(`--sweep fixes the sizes and modes (${SWEEP_MODES.join(', ')}); ${f} cannot be combined with it`);
    }
    const udp = sc.some((s) => s.startsWith('udp'));
    sizes = SWEEP_SIZES.map((n) => (n === 65536 && udp ? MAX_UDP_SIZE : n));
    ws = workingSets ?? ['hot', 'cold'];
    coldSizes = ws.includes('cold') ? [...sizes] : [];
  } else {
    sizes = sizesText === undefined ? [...DEFAULTS.sizes] : parseSizes(sizesText, sc);
    if (sizesText === undefined) checkSizes(sizes, sc, DEFAULTS.sizes.map(String));
    const cold = coldSizesText === undefined ? undefined : parseColdSizes(coldSizesText, sizes);
    if (workingSets !== undefined) {
      if (cold !== undefined && !workingSets.includes('cold')) {
        throw new UsageError(`--cold-sizes needs the cold working set, but --working-set is ${workingSets[0]}`);
      }
      ws = workingSets;
      coldSizes = ws.includes('cold') ? (cold ?? [...sizes]) : [];
    } else if (cold !== undefined) {
      ws = ['hot', 'cold'];
      coldSizes = cold;
    } else if (sizesText === undefined) {
      // The default run: every size hot, and the default cold sizes.
      ws = [...DEFAULTS.workingSets];
      coldSizes = DEFAULTS.coldSizes.filter((n) => sizes.includes(n));
    } else {
      ws = ['hot'];
      coldSizes = [];
    }
  }
  const wsSize = workingSetSize ?? DEFAULTS.workingSetSize;
  if (coldSizes.length > 0 && wsSize < Math.max(...coldSizes)) {
    throw new UsageError(`--working-set-size (${wsSize} bytes) must be at least the largest size measured cold (${Math.max(...coldSizes)} bytes)`);
  }
  return Object.freeze({
    scenarios: Object.freeze([...sc]),
    scenariosExplicit: scenarios !== undefined,
    sizes: Object.freeze(sizes),
    modes: Object.freeze([...(modes ?? (sweep ? SWEEP_MODES : DEFAULTS.modes))]),
    workingSets: Object.freeze([...ws]),
    coldSizes: Object.freeze(coldSizes),
    workingSetSize: wsSize,
    durationMs: durationMs ?? (quick ? DEFAULTS.quickDurationMs : DEFAULTS.durationMs),
    warmupMs: warmupMs ?? (quick ? DEFAULTS.quickWarmupMs : DEFAULTS.warmupMs),
    rounds: rounds ?? (quick ? DEFAULTS.quickRounds : DEFAULTS.rounds),
    qd: qd ?? DEFAULTS.qd,
    maxSends: maxSends ?? DEFAULTS.maxSends,
    cRefMode: cRefMode ?? DEFAULTS.cRefMode,
    gsoSegment: gsoSegment ?? DEFAULTS.gsoSegment,
    sweep,
    json,
    chart,
    quick,
    file: false,
    readChunk: DEFAULTS.readChunk,
  });
}

/** The options of a --file run: file modes, file sizes (1 byte..4g), TCP scenarios, hot only. */
function fileOptions(seen: ReadonlySet<string>, scenarios: ScenarioName[] | undefined, sizesText: string | undefined, modes: Mode[] | undefined,
  o: { durationMs: number | undefined; warmupMs: number | undefined; rounds: number | undefined; maxSends: number | undefined; json: string | null; chart: string | null; quick: boolean; readChunk: number | undefined }): BenchOptions {
  for (const f of ['--sweep', '--working-set', '--cold-sizes', '--working-set-size', '--gso-segment', '--c-ref-mode', '--qd']) {
    if (seen.has(f)) throw new UsageError(`${f} does not apply to --file (one file in flight, sent whole, TCP)`);
  }
  const sc = scenarios ?? ['tcp-loopback', 'tcp-veth'];
  for (const s of sc) if (s.startsWith('udp')) throw new UsageError(`--file sends over TCP: scenario ${s} is UDP`);
  for (const m of modes ?? []) {
    if (!(FILE_MODES as readonly string[]).includes(m)) throw new UsageError(`--modes: ${m} is not a file row (with --file: ${FILE_MODES.join(', ')})`);
  }
  const sizes: number[] = [];
  for (const p of sizesText === undefined ? [] : sizesText.split(',').map((x) => x.trim())) {
    const n = parseBytes('--sizes', p);
    if (n < 1 || n > MAX_FILE_SIZE) throw new UsageError(`--sizes: a file of "${p}" (${n} bytes) is outside 1 byte..4g`);
    if (!sizes.includes(n)) sizes.push(n);
  }
  return Object.freeze({
    scenarios: Object.freeze([...sc]),
    scenariosExplicit: scenarios !== undefined,
    sizes: Object.freeze(sizesText === undefined ? [...DEFAULT_FILE_SIZES] : sizes),
    modes: Object.freeze([...(modes ?? FILE_MODES)]),
    workingSets: Object.freeze(['hot'] as WorkingSet[]),
    coldSizes: Object.freeze([] as number[]),
    workingSetSize: DEFAULTS.workingSetSize,
    durationMs: o.durationMs ?? (o.quick ? DEFAULTS.quickDurationMs : DEFAULTS.durationMs),
    warmupMs: o.warmupMs ?? (o.quick ? DEFAULTS.quickWarmupMs : DEFAULTS.warmupMs),
    rounds: o.rounds ?? (o.quick ? DEFAULTS.quickRounds : DEFAULTS.rounds),
    qd: 1,
    maxSends: o.maxSends ?? DEFAULTS.maxSends,
    cRefMode: DEFAULTS.cRefMode,
    gsoSegment: DEFAULTS.gsoSegment,
    sweep: false,
    json: o.json,
    chart: o.chart,
    quick: o.quick,
    file: true,
    readChunk: o.readChunk ?? DEFAULTS.readChunk,
  });
}

/** --cold-sizes: each one of the measured sizes. */
function parseColdSizes(text: string, sizes: readonly number[]): number[] {
  const out: number[] = [];
  for (const p of text.split(',').map((s) => s.trim())) {
    const n = parseBytes('--cold-sizes', p);
    if (!sizes.includes(n)) {
      throw new UsageError(`--cold-sizes: "${p}" (${n} bytes) is not one of the sizes measured (${sizes.map(formatSize).join(', ')})`);
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** A comma-separated list of known names, without duplicates. */
function list<T extends string>(flag: string, v: string, known: readonly T[]): T[] {
  const items = v.split(',').map((s) => s.trim());
  const out: T[] = [];
  for (const item of items) {
    if (!(known as readonly string[]).includes(item)) {
      throw new UsageError(`${flag}: unknown value "${item}" (known: ${known.join(', ')})`);
    }
    if (!out.includes(item as T)) out.push(item as T);
  }
  return out;
}

function parseInteger(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be an integer between ${min} and ${max}, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer between ${min} and ${max}, got "${v}"`);
  }
  return n;
}

/** Bytes: an integer with an optional k, m or g suffix (powers of 1024). */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(v.trim());
  if (!m) throw new UsageError(`${flag}: "${v}" is not a size (an integer number of bytes, optionally with k, m or g: 1k = 1024)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag}: "${v}" is too large`);
  return n;
}

/** --sizes: every size must fit every requested scenario's protocol. */
function parseSizes(text: string, scenarios: readonly ScenarioName[]): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const sizes: number[] = [];
  for (const p of parts) {
    const n = parseBytes('--sizes', p);
    if (!sizes.includes(n)) sizes.push(n);
  }
  checkSizes(sizes, scenarios, parts);
  return sizes;
}

function checkSizes(sizes: readonly number[], scenarios: readonly ScenarioName[], texts: readonly string[]): void {
  const udp = scenarios.find((s) => s.startsWith('udp'));
  for (let i = 0; i < sizes.length; i++) {
    const n = sizes[i]!;
    const t = texts[i] ?? String(n);
    if (n < 1) throw new UsageError(`--sizes: "${t}" must be at least 1 byte`);
    if (udp !== undefined && n > MAX_UDP_SIZE) {
      throw new UsageError(`--sizes: "${t}" (${n} bytes) is larger than a UDP datagram can carry (${MAX_UDP_SIZE}) for scenario ${udp}`);
    }
    if (n > MAX_TCP_SIZE) throw new UsageError(`--sizes: "${t}" (${n} bytes) is larger than the bench's limit of 64m`);
  }
}

/** A duration: "3s", "500ms", "1.5s", or a plain number of seconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
  if (!m) throw new UsageError(`${flag}: "${v}" is not a duration (like 3s, 1.5s or 500ms)`);
  const ms = m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
  if (!(ms >= 10) || ms > 600_000) throw new UsageError(`${flag} must be between 10ms and 600s, got "${v}"`);
  return Math.round(ms);
}

/** "1k" for 1024, "60000" for 60000: the spelling the table and chart use. */
export function formatSize(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}m`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}k`;
  return String(n);
}

export const BENCH_HELP = `usage: uring-zc bench [options]

Measures sends per second and GB/s (10^9 payload bytes/s) of uring-zc against Node's own
dgram/net and the project's C reference sender, each row in its own process, rounds
interleaved (A B C A B C) so that noise hits every mode alike. Reports the median of the
rounds with their min-max.

  --scenario LIST        udp-sink, tcp-loopback, tcp-veth (default: udp-sink)
                           udp-sink     UDP into an IFB device in a network namespace (root)
                           tcp-loopback TCP to a receiver process on 127.0.0.1 (always copies)
                           tcp-veth     TCP between two namespaces joined by veth (root)
  --sizes LIST           bytes per send, k = 1024 (default: 4k,16k,60000);
                         UDP: 1..${MAX_UDP_SIZE}, TCP: up to 64m
  --modes LIST           node, copy, zc, zc-pool, sendv, gso, msg-zc, sync-copy, bare,
                         bare-pool, c-ref, c-ref-pool, c-msgzc, c-sendto
                         (default: node,copy,zc,zc-pool,c-ref,c-ref-pool)
                           node       dgram.send / net.Socket.write with backpressure
                           copy       uring-zc, every send copying (zeroCopyThreshold: Infinity)
                           zc         uring-zc, IORING_OP_SEND_ZC from ordinary Buffers
                           zc-pool    uring-zc SEND_ZC from registered buffers (ring.createBufferPool)
                           sendv      uring-zc sendv([${SENDV_HEADER} B header, body]): SENDMSG_ZC, one message
                           gso        uring-zc UDP GSO: one SENDMSG_ZC of size bytes cut into
                                      --gso-segment datagrams (UDP only)
                           msg-zc     uring-zc on its msg_zerocopy backend (no io_uring): sendmsg with
                                      MSG_ZEROCOPY, completions from the error queue
                           sync-copy  uring-zc on its copy backend (no io_uring): non-blocking sendmsg
                           c-ref      the C reference sender (bench/ref/sender.c, prebuilt in the package), --c-ref-mode
                           c-ref-pool the C reference sender, SEND_ZC from registered buffers
                           c-msgzc    the C sender without io_uring: SO_ZEROCOPY + sendto(MSG_ZEROCOPY),
                                      completions read from the socket's error queue
                           c-sendto   the C sender without io_uring: plain sendto(2) (copies)
                           bare       SEND_ZC from a minimal TypeScript ring loop without the
                                      library (bench/bare.ts): the event-loop ceiling (UDP only)
                           bare-pool  the same from one registered region (IORING_REGISTER_BUFFERS)
  --c-ref-mode MODE      what the c-ref rows run: copy, zc or zc-pool (default: zc)
  --working-set WS       hot (one buffer re-sent), cold (walk distinct memory) or both, for
                         every size (default: hot for every size, cold for 60000 as well;
                         with --sizes: hot)
  --cold-sizes LIST      measure only these of the sizes cold as well (default: all of them)
  --working-set-size N   size of the cold region (default: 256m; zc-pool: at most 1g)
  --gso-segment N        bytes per datagram of the gso rows (default: ${DEFAULT_GSO_SEGMENT}, a 1500-byte MTU)
  --sweep                copy threshold sweep: copy, zc and zc-pool at 1k,2k,4k,8k,16k,32k,64k
                         (64k = ${MAX_UDP_SIZE} on UDP), hot and cold; its own table, the winner per
                         size, and where zero copy starts to win
  --duration D           per row per round, like 3s or 500ms (default: 500ms; --quick: 400ms)
  --warmup D             per row per round, sending before the clock starts, every mode alike
                         (V8 optimises the send path meanwhile); 0 for none (default: 200ms;
                         --quick: 100ms)
  --rounds N             rounds (default: 3; --quick: 1)
  --qd N                 sends kept in flight (default: 64)
  --max-sends N          per row per round, next to the time bound (default: ${DEFAULTS.maxSends})
  --json [FILE]          JSON results to FILE, or to stdout (the table then goes to stderr)
  --chart FILE.svg       grouped bar chart of GB/s
  --quick                short rows, one round (for CI)
  --file                 the file rows instead: one file sent again and again over TCP, one file
                         in flight, the sender's CPU per GB; --sizes are file sizes (default:
                         1g,1m; made in /var/tmp, in the page cache, removed after the run),
                         --scenario defaults to tcp-loopback,tcp-veth, --modes to
                         node,send-loop,sendfile,stream:
                           node       fs.createReadStream(path).pipe(net.Socket)
                           send-loop  the same chunks, each through zs.send() (io_uring),
                                      at most 4 MiB unsettled
                           sendfile   zs.sendFile(path) (io_uring: IORING_OP_SPLICE through a pipe)
                           stream     pipeline(fs.createReadStream(path), zs.createWriteStream(
                                      { highWaterMark: 4 MiB })), where the library has it
  --read-chunk N         --file: the read size of the rows that read the file with
                         fs.createReadStream (node, send-loop, stream; default: 64k, Node's own:
                         then reading is what bounds all three on loopback; 1m measures the
                         sending)
  --help                 this text

Rows measured for less than ${MIN_MEASURED_SECONDS} s are refused. Exit status: 0 when rows were reported,
1 when a run failed or nothing could be reported, 2 for a bad command line.
See docs/benchmarking.md.
`;

export const MAIN_HELP = `usage: uring-zc <command> [options]

commands:
  bench          measure uring-zc against Node's dgram/net and the C reference sender
  capabilities   what io_uring, zero copy and the benchmark can use on this machine [--json]

uring-zc <command> --help for the options of a command; uring-zc --version for the package's version.
`;

export const CAPABILITIES_HELP = `usage: uring-zc capabilities [--json]

Prints what uring-zc can use here (io_uring, SEND_ZC, SENDMSG_ZC, REPORT_USAGE, registered
buffers), the RLIMIT_MEMLOCK limit, whether network namespaces can be made (the udp-sink and
tcp-veth scenarios need them), and the kernel.
`;
