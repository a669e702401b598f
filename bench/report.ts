/** The human table of `uring-zc bench`: one line per row. */
import { formatSize } from './args.js';
import type { Report, Row } from './run.js';

const COLUMNS = ['scenario', 'mode', 'size', 'ws', 'GB/s median [min–max]', 'M sends/s', 'CPU s/GB', 'copied', 'vs node', 'vs c-ref'] as const;

function gb(x: number): string {
  return x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function ratio(x: number | null): string {
  return x === null ? '-' : `${x.toFixed(2)}x`;
}

function cells(r: Row): string[] {
  return [
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
  ];
}

/** The table, a header line and the footnotes, as text. */
export function formatTable(report: Report): string {
  const o = report.options as { durationMs: number; rounds: number; qd: number; cRefMode: string };
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`uring-zc bench: ${o.rounds} round${o.rounds === 1 ? '' : 's'} x ${o.durationMs / 1000} s per row, qd ${o.qd}; Linux ${m.kernel}, Node ${m.node}, ${m.cpus} CPUs`);
  if (report.rows.length > 0) {
    const body = report.rows.map(cells);
    const widths = COLUMNS.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
    // Text columns left-aligned, numbers right-aligned.
    const fmt = (c: readonly string[]): string =>
      c.map((s, i) => (i < 4 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
    lines.push(fmt(COLUMNS));
    for (const c of body) lines.push(fmt(c));
  } else {
    lines.push('no rows to report');
  }
  for (const r of report.rows) {
    if (r.errors > 0) lines.push(`note: ${r.scenario} ${r.mode} ${formatSize(r.size)} ${r.workingSet}: ${r.errors} send errors (first: ${r.firstError ?? 'unknown'})`);
  }
  for (const s of report.skipped) lines.push(`skipped ${s.what}: ${s.reason}`);
  lines.push(`GB/s = 10^9 payload bytes/s, median of the rounds; CPU s/GB = sender CPU seconds per GB; copied = share of sends the kernel copied; c-ref = the C reference sender (${o.cRefMode}); ratios of median GB/s.`);
  return `${lines.join('\n')}\n`;
}
