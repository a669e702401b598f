/**
 * `--chart FILE.svg`: GB/s as grouped bars, written by hand (no dependency). One panel per send
 * size (and scenario / working set), each with its own y scale: GB/s grows ~30x from 1 KiB to
 * 60 KB, and one shared axis would flatten the small sizes to nothing. One colour per mode, the
 * median as the bar, min–max of the rounds as a whisker, the value above each bar, and the ratio
 * to node under the value on the uring-zc bars.
 */
import { formatSize } from './args.js';
import type { Report, Row } from './run.js';

const COLORS: Record<string, string> = {
  node: '#8c8c8c',
  copy: '#4e79a7',
  zc: '#f28e2b',
  'zc-pool': '#59a14f',
  sendv: '#edc948',
  gso: '#76b7b2',
  'c-ref': '#6b4c9a',
  'c-ref-pool': '#b07aa1',
  'c-msgzc': '#e15759',
  'c-sendto': '#9c755f',
  'msg-zc': '#ff9d9a',
  'sync-copy': '#bab0ac',
};
const LABELS: Record<string, string> = {
  node: 'node (dgram / net)',
  copy: 'uring-zc copy',
  zc: 'uring-zc zero copy',
  'zc-pool': 'uring-zc zc + registered',
  sendv: 'uring-zc sendv (header + body)',
  gso: 'uring-zc UDP GSO',
  'c-ref': 'C reference',
  'c-ref-pool': 'C reference (SEND_ZC + registered)',
  'c-msgzc': 'C sendto(MSG_ZEROCOPY)',
  'c-sendto': 'C sendto(2), copying',
  'msg-zc': 'uring-zc msg_zerocopy backend',
  'sync-copy': 'uring-zc copy backend',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round axis maximum and tick step for values up to `max`. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

/** A tick label with as many decimals as the step needs. */
function tick(v: number, step: number): string {
  const d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) + (Number.isInteger(step / 10 ** Math.floor(Math.log10(step) + 1e-9)) ? 0 : 1);
  return v.toFixed(d);
}

function fmt(x: number): string {
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}

export function renderChart(report: Report): string {
  const rows = report.rows;
  const modes = [...new Set(rows.map((r) => r.mode))];
  const groups: { title: string; sub: string; rows: Row[] }[] = [];
  const scenariosSeen = new Set(rows.map((r) => `${r.scenario}|${r.workingSet}`));
  for (const r of rows) {
    const title = formatSize(r.size) === String(r.size) ? `${r.size} B` : `${formatSize(r.size)} (${r.size} B)`;
    const sub = `${r.scenario}, ${r.workingSet}`;
    let g = groups.find((x) => x.title === title && x.sub === sub);
    if (g === undefined) groups.push((g = { title, sub, rows: [] }));
    g.rows.push(r);
  }
  const o = report.options as { rounds: number; durationMs: number; qd: number };
  const barW = 50;
  const barGap = 10;
  const panelInner = Math.max(1, modes.length) * (barW + barGap) - barGap;
  const panelW = panelInner + 70; // room for the panel's own y axis
  const panelGap = 24;
  const left = 40;
  const top = 96;
  const plotH = 300;
  const width = Math.max(640, left + groups.length * (panelW + panelGap) + 10);
  const colW = 205;
  const perRow = Math.min(Math.max(1, Math.floor((width - 40) / colW)), Math.max(1, modes.length));
  const legendH = 28 * Math.ceil(modes.length / perRow);
  const height = top + plotH + 70 + legendH + 30;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="30" font-size="19" font-weight="bold" text-anchor="middle">uring-zc: send throughput by size (GB/s, higher is better)</text>`);
  const scen = [...scenariosSeen].map((s) => s.replace('|', ', ')).join('; ');
  out.push(`<text x="${width / 2}" y="52" font-size="12.5" fill="#444" text-anchor="middle">${esc(`${scen} — median of ${o.rounds} round${o.rounds === 1 ? '' : 's'} of ${o.durationMs / 1000} s, whiskers min–max, qd ${o.qd}; Linux ${report.machine.kernel}, Node ${report.machine.node}, ${report.machine.cpus} CPUs`)}</text>`);
  out.push(`<text x="${width / 2}" y="70" font-size="12.5" fill="#444" text-anchor="middle">${esc('Each panel has its own scale. Under the values of the uring-zc bars: GB/s relative to node at the same size (1.50× = 50% more).')}</text>`);
  // Y axis title, once, on the left.
  out.push(`<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" font-size="13" text-anchor="middle">GB/s (10^9 payload bytes per second)</text>`);

  groups.forEach((g, gi) => {
    const x0 = left + gi * (panelW + panelGap) + 46;
    const maxV = Math.max(...g.rows.map((r) => r.gbpsMax));
    const { top: yTop, step } = niceScale(maxV * 1.18);
    const y = (v: number): number => top + plotH - (v / yTop) * plotH;
    // Grid and ticks.
    for (let v = 0; v <= yTop + step / 1000; v += step) {
      const yy = y(v).toFixed(1);
      out.push(`<line x1="${x0 - 4}" x2="${x0 + panelInner + 8}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#333' : '#e3e3e3'}" stroke-width="1"/>`);
      out.push(`<text x="${x0 - 7}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#555">${tick(v, step)}</text>`);
    }
    out.push(`<line x1="${x0 - 4}" x2="${x0 - 4}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
    modes.forEach((m, mi) => {
      const r = g.rows.find((x) => x.mode === m);
      const bx = x0 + 4 + mi * (barW + barGap);
      if (r === undefined) return;
      const by = y(r.gbps);
      out.push(`<rect x="${bx}" y="${by.toFixed(1)}" width="${barW}" height="${(top + plotH - by).toFixed(1)}" fill="${COLORS[m] ?? '#333'}"><title>${esc(`${m} ${formatSize(r.size)} ${r.workingSet}: ${r.gbps} GB/s [${r.gbpsMin}–${r.gbpsMax}]`)}</title></rect>`);
      if (r.gbpsMax > r.gbpsMin) {
        const cx = bx + barW / 2;
        out.push(`<path d="M${cx} ${y(r.gbpsMin).toFixed(1)}V${y(r.gbpsMax).toFixed(1)}M${cx - 5} ${y(r.gbpsMin).toFixed(1)}h10M${cx - 5} ${y(r.gbpsMax).toFixed(1)}h10" stroke="#222" stroke-width="1.2" fill="none"/>`);
      }
      const labelY = Math.min(by, y(r.gbpsMax)) - 6;
      const showRatio = (m === 'copy' || m === 'zc' || m === 'zc-pool' || m === 'sendv' || m === 'gso') && r.vsNode !== null;
      out.push(`<text x="${bx + barW / 2}" y="${(labelY - (showRatio ? 14 : 0)).toFixed(1)}" font-size="11" text-anchor="middle" fill="#222">${fmt(r.gbps)}</text>`);
      if (showRatio) {
        const bold = m !== 'copy' ? ' font-weight="bold"' : '';
        out.push(`<text x="${bx + barW / 2}" y="${labelY.toFixed(1)}" font-size="11.5"${bold} text-anchor="middle" fill="${m === 'copy' ? '#2b4f75' : '#a85a10'}">${r.vsNode!.toFixed(2)}×</text>`);
      }
    });
    const cx = x0 + panelInner / 2 + 4;
    out.push(`<text x="${cx}" y="${top + plotH + 22}" font-size="13.5" font-weight="bold" text-anchor="middle">${esc(g.title)}</text>`);
    out.push(`<text x="${cx}" y="${top + plotH + 39}" font-size="11.5" fill="#555" text-anchor="middle">${esc(g.sub)}</text>`);
  });
  out.push(`<text x="${width / 2}" y="${top + plotH + 60}" font-size="13" text-anchor="middle">send size (k = 1024 bytes)</text>`);
  // Legend.
  const ly = top + plotH + 80;
  const lx0 = width / 2 - (perRow * colW) / 2;
  modes.forEach((m, i) => {
    const lx = lx0 + (i % perRow) * colW;
    const yy = ly + Math.floor(i / perRow) * 28;
    out.push(`<rect x="${lx}" y="${yy}" width="16" height="16" fill="${COLORS[m] ?? '#333'}"/>`);
    const cMode = (report.options as { cRefMode?: string }).cRefMode ?? 'zc';
    const label = m === 'c-ref' ? `C reference (${cMode === 'copy' ? 'SEND' : cMode === 'zc' ? 'SEND_ZC' : 'SEND_ZC + registered'})` : LABELS[m] ?? m;
    out.push(`<text x="${lx + 22}" y="${yy + 13}" font-size="13">${esc(label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
