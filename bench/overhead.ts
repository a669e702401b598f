#!/usr/bin/env node
/**
 * `node dist/bench/overhead.js [--size N] [--windows N]`: what the library's JavaScript adds per
 * send, measured in one process against a bare ring loop issuing the same SEND_ZC requests on the
 * same socket (the architecture's prototype). Windows of 250 ms alternate between the two, so
 * both see the same machine speed; the report is the median of the per-window differences. On a
 * VM whose speed drifts, this is a far steadier number than comparing throughputs of separate
 * runs: it is what to optimise the send path against.
 *
 * Needs root (it sends into an IFB sink namespace it creates and removes).
 */
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { encodeSockaddr } from '../src/address.js';
import { addressOf } from '../src/buffers.js';
import { Ring } from '../src/index.js';
import { native } from '../src/native.js';
import { DEFAULT_SETUP_FLAGS, RingMemory } from '../src/ring.js';
import { prepSend } from '../src/sqe.js';
import { IORING_CQE_F_MORE, IORING_CQE_F_NOTIF, IORING_OP_SEND_ZC, IORING_SEND_ZC_REPORT_USAGE } from '../src/uapi.js';
import { createSink, netnsUnavailableReason } from './netns.js';

const QD = 64;
const WINDOW_MS = 250;
const DEST = { address: '198.18.0.2', port: 9 };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function child(size: number, windows: number): Promise<void> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  const buf = Buffer.alloc(size, 1);
  const ring = new Ring();
  const zs = ring.adopt(sock, { zeroCopyThreshold: 0, autoDowngrade: false });

  // The library, callback form, one options object: the fastest way to use it.
  const library = (): Promise<number> => new Promise((resolve) => {
    let sends = 0;
    let inFlight = 0;
    let stop = false;
    const t0 = performance.now();
    const end = t0 + WINDOW_MS;
    const next = (): void => {
      if (stop) {
        if (inFlight === 0) resolve(((performance.now() - t0) * 1e6) / sends);
        return;
      }
      inFlight++;
      zs.send(buf, DEST, done);
    };
    const done = (): void => {
      sends++;
      inFlight--;
      if ((sends & 63) === 0 && performance.now() > end) stop = true;
      next();
    };
    for (let i = 0; i < QD; i++) next();
  });

  // The bare loop: the same requests written straight into a ring of its own, driven the same way.
  const mem = RingMemory.create(256, DEFAULT_SETUP_FLAGS, 1024);
  if (typeof mem === 'number') throw new Error(`io_uring_setup: ${mem}`);
  const addr = addressOf(buf);
  const sa = encodeSockaddr(DEST.address, DEST.port, 2);
  const saAddr = addressOf(sa);
  const bare = (): Promise<number> => new Promise((resolve) => {
    let sends = 0;
    let inFlight = 0;
    let stop = false;
    const t0 = performance.now();
    const end = t0 + WINDOW_MS;
    const fill = (): void => {
      while (inFlight < QD && !stop) {
        prepSend(mem.sqes, mem.nextSqe(), IORING_OP_SEND_ZC, 0, IORING_SEND_ZC_REPORT_USAGE, zs.fd, addr, size, 0, saAddr, sa.length, 0, 1);
        mem.advance();
        inFlight++;
      }
    };
    const sink = {
      onCqe: (_ud: number, _res: number, flags: number): void => {
        if ((flags & IORING_CQE_F_NOTIF) !== 0 || (flags & IORING_CQE_F_MORE) === 0) {
          inFlight--;
          sends++;
        }
      },
    };
    const poll = native.pollStart(mem.fd, () => {
      for (let r = 0; r < 8; r++) {
        if (mem.reap(sink) === 0 && r > 0) break;
        if ((sends & 63) === 0 && performance.now() > end) stop = true;
        fill();
        mem.enter(0, false);
      }
      if (stop && inFlight === 0) {
        native.pollStop(poll);
        resolve(((performance.now() - t0) * 1e6) / sends);
      }
    });
    native.pollRef(poll, true);
    fill();
    mem.enter(0, false);
  });

  const lib: number[] = [];
  const raw: number[] = [];
  const diff: number[] = [];
  for (let i = 0; i < windows + 2; i++) {
    const a = await library();
    const b = await bare();
    if (i < 2) continue; // warm-up
    lib.push(a);
    raw.push(b);
    diff.push(a - b);
  }
  mem.destroy();
  await zs.close();
  await ring.close();
  sock.close();
  process.stdout.write(JSON.stringify({
    size, windows, libraryNsPerSend: Math.round(median(lib)), bareNsPerSend: Math.round(median(raw)),
    overheadNsPerSend: Math.round(median(diff)), bareOverLibrary: Math.round((median(raw) / median(lib)) * 1000) / 1000,
    keep: sa.length,
  }) + '\n');
}

async function main(): Promise<void> {
  const size = arg('--size', 16384);
  const windows = arg('--windows', 10);
  if (process.argv.includes('--child')) return child(size, windows);
  const why = netnsUnavailableReason();
  if (why !== null) {
    console.error(`overhead: cannot create the sink namespace: ${why}`);
    process.exitCode = 2;
    return;
  }
  const sink = createSink();
  try {
    const self = fileURLToPath(import.meta.url);
    const p = sink.spawn([process.execPath, self, '--child', '--size', String(size), '--windows', String(windows)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    if (code !== 0) throw new Error(`overhead child exited with ${code}`);
    const r = JSON.parse(out.trim()) as Record<string, number>;
    console.log(`size ${r['size']} B, ${r['windows']} alternating windows of ${WINDOW_MS} ms, qd ${QD}:`);
    console.log(`  library ${r['libraryNsPerSend']} ns/send, bare ring ${r['bareNsPerSend']} ns/send`);
    console.log(`  the library adds ${r['overheadNsPerSend']} ns per send (bare/library = ${r['bareOverLibrary']})`);
  } finally {
    sink.dispose();
  }
}

await main();
