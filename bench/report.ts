/** The human tables of `uring-zc bench`: one line per row, the headline ratios, the --sweep table. */
import { formatSize } from './args.js';
import { formatError, type Report, type Row, type Sweep } from './run.js';

const COLUMNS = ['scenario', 'mode', 'size', 'ws', 'GB/s median [min–max]', 'M sends/s', 'CPU s/GB', 'copied', 'vs node', 'vs c-ref', 'vs c-ref-pool', 'vs c-msgzc'] as const;
/** Text columns (left-aligned); the rest are numbers (right-aligned). */
const TEXT_COLUMNS = 4;

function gb(x: number): string {
  return x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function ratio(x: number | null): string {
  return x === null ? '-' : `${x.toFixed(2)}x`;
}

function cells(r: Row, dgrams: boolean): string[] {
  const c = [
    r.scenario,
    r.mode,
    formatSize(r.size),
    r.workingSet,
    `${gb(r.gbps)} [${gb(r.gbpsMin)}–${gb(r.gbpsMax)}]`,
    (r.sendsPerSec / 1e6).toFixed(3),
    r.cpuSecPerGB === null ? '-' : r.cpuSecPerGB.toFixed(3),
    `${Math.round(r.copiedShare * 100)}%`,
    ratio(r.vsNode),
    ratio(r.vsCRef),
    ratio(r.vsCRefPool),
    ratio(r.vsCMsgZc),
  ];
  if (dgrams) c.splice(6, 0, r.datagramsPerSec === null ? '-' : (r.datagramsPerSec / 1e6).toFixed(3));
  return c;
}

/** Lays out rows of cells under a header, text columns left-aligned, numbers right-aligned. */
function layout(header: readonly string[], body: readonly string[][], textColumns: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const fmt = (c: readonly string[]): string =>
    c.map((s, i) => (i < textColumns ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), ...body.map(fmt)];
}

/** "16 KB"; the largest UDP payload (65507) as "64 KB" too. */
export function kb(n: number): string {
  return n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`;
}

/**
 * The headline ratios of zc-pool (SEND_ZC from registered buffers): against node (what a Node
 * program gets without uring-zc) and against c-ref-pool (the same kernel request from C).
 */
function headlines(rows: readonly Row[]): string[] {
  const out: string[] = [];
  const line = (label: string, mode: string, pick: (r: Row) => number | null): void => {
    const of = rows.filter((r) => r.mode === mode && pick(r) !== null);
    if (of.length === 0) return;
    const scen = new Set(of.map((r) => r.scenario)).size > 1;
    out.push(`${label}: ${of.map((r) => `${scen ? `${r.scenario} ` : ''}${formatSize(r.size)} ${r.workingSet} ${ratio(pick(r))}`).join(', ')}`);
  };
  line('zc-pool vs node', 'zc-pool', (r) => r.vsNode);
  line('zc-pool vs c-ref-pool', 'zc-pool', (r) => r.vsCRefPool);
  // sendv([1 KiB header, body]) against send() of one Buffer of the same total size.
  line('sendv vs zc', 'sendv', (r) => r.vsZc);
  // In C: io_uring SEND_ZC against sendto(MSG_ZEROCOPY), and that against what Node offers.
  line('c-ref vs c-msgzc', 'c-ref', (r) => r.vsCMsgZc);
  line('c-msgzc vs node', 'c-msgzc', (r) => r.vsNode);
  return out;
}

/** The table, a header line and the footnotes, as text. */
export function formatTable(report: Report): string {
  const o = report.options as { durationMs: number; warmupMs?: number; rounds: number; qd: number; cRefMode: string; gsoSegment?: number; file?: boolean; readChunk?: number };
  const m = report.machine;
  const lines: string[] = [];
  // A file row's "qd" is one file in flight; what it reads per call is what sets its pace.
  const depth = o.file === true ? `files read ${formatSize(o.readChunk ?? 65536)} at a time (--read-chunk)` : `qd ${o.qd}`;
  lines.push(`uring-zc bench: ${o.rounds} round${o.rounds === 1 ? '' : 's'} x ${o.durationMs / 1000} s per row (after ${(o.warmupMs ?? 0) / 1000} s of warm-up), ${depth}; Linux ${m.kernel}, Node ${m.node}, ${m.cpus} CPUs`);
  const dgrams = report.rows.some((r) => r.mode === 'gso');
  if (report.rows.length > 0) {
    let header: string[] = [...COLUMNS];
    if (dgrams) header.splice(6, 0, 'M dgrams/s');
    let body = report.rows.map((r) => cells(r, dgrams));
    // Ratio columns with nothing to compare against (no node / c-ref / c-ref-pool rows) are left out.
    const keep = header.map((h, i) => !h.startsWith('vs ') || body.some((c) => c[i] !== '-'));
    header = header.filter((_, i) => keep[i]);
    body = body.map((c) => c.filter((_, i) => keep[i]));
    lines.push(...layout(header, body, TEXT_COLUMNS));
  } else {
    lines.push('no rows to report');
  }
  const heads = headlines(report.rows);
  if (heads.length > 0) lines.push('', ...heads, '');
  for (const r of report.rows) {
    if (r.errors > 0) lines.push(`note: ${r.scenario} ${r.mode} ${formatSize(r.size)} ${r.workingSet}: ${r.errors} send errors (first: ${r.firstError ?? 'unknown'})`);
  }
  // A failed row: its error, not a line of the table (it measured nothing to report).
  const failed = report.failed ?? [];
  for (const f of failed) lines.push(`FAILED ${f.what} (round ${f.round}): ${formatError(f.error)}`);
  const failedWhat = new Set(failed.map((f) => f.what));
  for (const s of report.skipped) if (!failedWhat.has(s.what)) lines.push(`skipped ${s.what}: ${s.reason}`);
  const notes = [
    'GB/s = 10^9 payload bytes/s, median of the rounds',
    'CPU s/GB = sender CPU seconds per GB',
    'copied = share of sends the kernel copied',
    `c-ref = the C reference sender (${o.cRefMode}), c-ref-pool = the same with registered buffers (zc-pool)`,
    'ratios: the median of per-round ratios of GB/s at the same scenario, size and working set (rows of a round run back to back)',
  ];
  if (report.rows.some((r) => r.mode === 'c-msgzc' || r.mode === 'c-sendto')) {
    notes.push('c-msgzc = the C sender, sendto(MSG_ZEROCOPY) + error-queue completions; c-sendto = the C sender, plain sendto(2); neither uses io_uring');
  }
  if (report.rows.some((r) => r.mode === 'sendv')) notes.push('sendv = sendv([1 KiB header, body]) as one message');
  if (dgrams) notes.push(`gso = one send cut into ${o.gsoSegment ?? '?'}-byte datagrams (M dgrams/s)`);
  lines.push(`${notes.join('; ')}.`);
  if (report.sweep !== null && report.sweep !== undefined) lines.push('', ...formatSweep(report.sweep));
  return `${lines.join('\n')}\n`;
}

/** The --sweep table: GB/s of copy, zc and zc-pool per size, the winner, and the crossover lines. */
export function formatSweep(sw: Sweep): string[] {
  const modes = ['copy', 'zc', 'zc-pool'];
  const wss = [...new Set(sw.entries.map((e) => e.workingSet))];
  const header = ['size'];
  for (const ws of wss) header.push(...modes.map((m) => `${m} ${ws}`), `winner ${ws}`);
  const sizes = [...new Set(sw.entries.map((e) => e.size))].sort((a, b) => a - b);
  const body = sizes.map((size) => {
    const row = [formatSize(size)];
    for (const ws of wss) {
      const e = sw.entries.find((x) => x.size === size && x.workingSet === ws);
      for (const m of modes) {
        const v = e?.gbps[m];
        row.push(v === null || v === undefined ? '-' : gb(v));
      }
      row.push(e?.winner == null ? '-' : `${e.winner}${e.margin !== null ? ` +${Math.round((e.margin - 1) * 100)}%` : ''}`);
    }
    return row;
  });
  const lines = [`threshold sweep (${sw.scenario}, GB/s median; winner = highest median, +N% ahead of the runner-up):`];
  lines.push(...layout(header, body, 1));
  const smallest = sizes[0];
  const largest = kb(sizes[sizes.length - 1] ?? 0);
  const at = (n: number | null): string => (n === null ? `none up to ${largest}` : n === smallest ? `≤ ${kb(n)}` : kb(n));
  for (const mode of ['zc', 'zc-pool'] as const) {
    const found = wss.map((ws) => sw.crossover[ws]?.[mode] ?? null);
    const parts = wss.map((ws, i) => `${at(found[i]!)} (${ws})`);
    // "crossover copy→zc at 16 KB (hot), 8 KB (cold)"; "crossover copy→zc: none up to 64 KB (hot), …"
    lines.push(`crossover copy→${mode}${found.every((n) => n !== null) ? ' at' : ':'} ${parts.join(', ')}`);
  }
  lines.push('(crossover: the smallest size from which the mode beats copy there and at every larger size; the library copies below DEFAULT_ZERO_COPY_THRESHOLD = 16 KB unless a pool buffer is sent)');
  return lines;
}
