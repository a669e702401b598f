#!/usr/bin/env node
/**
 * `node dist/bench/vector.js [--body N] [--header N] [--windows N]`: what sendv([header, body])
 * costs against send(body) alone, in alternating windows of one process (so that all three see the
 * same machine speed; medians of per-window ratios). Needs root: it sends into an IFB sink
 * namespace it creates and removes.
 *
 * The body is placed to span 16 pages, as a 60 KiB body at an arbitrary address does. Two headers:
 * - "pinned": within one page, so the datagram needs 17 page fragments (net.core.max_skb_frags):
 *   the header is sent zero copy from its own page, as every chunk is;
 * - "copied": straddling a page boundary, 18 fragments, more than a zero-copy datagram may have:
 *   the library copies the header into a page of its own (ZeroCopySocket#copySmallChunks).
 * This is the measurement behind both choices: pin small chunks where the fragments fit (cheaper
 * than copying them), copy them only where they do not fit (far cheaper than copying the datagram).
 */
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { addressOf } from '../src/buffers.js';
import { Ring } from '../src/index.js';
import { intArg, middle as median, runChildInSink } from './tools.js';

const QD = 64;
const WINDOW_MS = 100;
const DEST = { address: '198.18.0.2', port: 9 };
const PAGE = 4096;


/** `len` bytes at `inPage` bytes past a page boundary of fresh memory. */
function placed(len: number, inPage: number, fill: number): Buffer {
  const region = Buffer.allocUnsafeSlow(len + 2 * PAGE).fill(fill);
  const skip = (PAGE - (addressOf(region) % PAGE)) % PAGE;
  return region.subarray(skip + inPage, skip + inPage + len);
}

async function child(bodyLen: number, headerLen: number, windows: number): Promise<void> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  const ring = new Ring();
  const zs = ring.adopt(sock, { zeroCopyThreshold: 0, autoDowngrade: false, receive: false });
  // 16 pages for a body of up to 15 pages and a byte: start it 1 KiB into a page.
  const body = placed(bodyLen, 1024, 0x42);
  const pinned = placed(headerLen, 0, 0x48);
  const straddling = placed(headerLen, PAGE - (headerLen >> 1), 0x48);
  const kinds: Array<{ name: string; issue: (done: () => void) => void }> = [
    { name: 'send(body)', issue: (done) => zs.send(body, DEST, done) },
    { name: 'sendv, header pinned', issue: (done) => zs.sendv([pinned, body], DEST, done) },
    { name: 'sendv, header copied', issue: (done) => zs.sendv([straddling, body], DEST, done) },
  ];
  let zeroCopied = 0;
  let settled = 0;
  const drive = (issue: (done: () => void) => void): Promise<[number, number]> => new Promise((resolve) => {
    let sends = 0;
    let inFlight = 0;
    let stop = false;
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    const next = (): void => {
      if (stop) {
        if (inFlight === 0) resolve([((performance.now() - t0) * 1e6) / sends, (process.cpuUsage(u0).user * 1e3) / sends]);
        return;
      }
      inFlight++;
      issue(done);
    };
    const done = (err?: Error | null, _bytes?: number, zeroCopy?: boolean): void => {
      if (err) throw err;
      settled++;
      if (zeroCopy === true) zeroCopied++;
      sends++;
      inFlight--;
      if ((sends & 63) === 0 && performance.now() > t0 + WINDOW_MS) stop = true;
      next();
    };
    for (let i = 0; i < QD; i++) next();
  });
  const ns: number[][] = kinds.map(() => []);
  const user: number[][] = kinds.map(() => []);
  for (let w = 0; w < windows + 3; w++) {
    for (let k = 0; k < kinds.length; k++) {
      const [v, u] = await drive(kinds[k]!.issue);
      if (w >= 3) {
        // the first windows warm up
        ns[k]!.push(v);
        user[k]!.push(u);
      }
    }
  }
  await zs.close();
  await ring.close();
  sock.close();
  process.stdout.write(JSON.stringify({
    body: bodyLen, header: headerLen, windows, zeroCopyShare: zeroCopied / settled,
    rows: kinds.map((k, i) => ({
      name: k.name,
      nsPerSend: Math.round(median(ns[i]!)),
      userNsPerSend: Math.round(median(user[i]!)),
      // GB/s of the sendv (header + body bytes) over GB/s of send(body), per window pair.
      gbpsVsBody: Math.round(median(ns[i]!.map((v, j) => (ns[0]![j]! / v) * ((i === 0 ? bodyLen : bodyLen + headerLen) / bodyLen))) * 1000) / 1000,
    })),
  }) + '\n');
}

async function main(): Promise<void> {
  const bodyLen = intArg('--body', 61440);
  const headerLen = intArg('--header', 1024);
  const windows = intArg('--windows', 30);
  if (bodyLen > 15 * PAGE + 1 || headerLen > 2048 || bodyLen + headerLen > 65507) {
    throw new Error('--body at most 61441 (16 pages from 1 KiB into a page), --header at most 2048');
  }
  if (process.argv.includes('--child')) return child(bodyLen, headerLen, windows);
  const json = await runChildInSink('vector', fileURLToPath(import.meta.url),
    ['--body', String(bodyLen), '--header', String(headerLen), '--windows', String(windows)]);
  if (json !== null) {
    const r = json as unknown as { body: number; header: number; windows: number; zeroCopyShare: number; rows: Array<{ name: string; nsPerSend: number; userNsPerSend: number; gbpsVsBody: number }> };
    console.log(`body ${r.body} B (16 pages), header ${r.header} B, ${r.windows} alternating windows of ${WINDOW_MS} ms, qd ${QD}, UDP into the sink:`);
    for (const row of r.rows) {
      console.log(`  ${row.name.padEnd(22)} ${String(row.nsPerSend).padStart(6)} ns/send (${String(row.userNsPerSend).padStart(4)} of it user CPU)   GB/s vs send(body) ${row.gbpsVsBody.toFixed(3)}`);
    }
    console.log(`  zero copy: ${(r.zeroCopyShare * 100).toFixed(1)} % of all sends`);
  }
}

await main();
