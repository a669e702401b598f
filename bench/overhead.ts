#!/usr/bin/env node
/**
 * `node dist/bench/overhead.js [--size N] [--windows N] [--pool]`: what the library's JavaScript
 * adds per send, measured in one process against a bare ring loop issuing the same SEND_ZC
 * requests on the same socket (the architecture's prototype). `--pool`: both send one registered
 * buffer (the library from a BufferPool, the bare loop with IORING_RECVSEND_FIXED_BUF). Windows of 250 ms alternate between the two, so
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
import { BareRing } from './bare.js';
import { intArg, middle as median, runChildInSink } from './tools.js';

const QD = 64;
const WINDOW_MS = 250;
const DEST = { address: '198.18.0.2', port: 9 };


/** One window: wall-clock and user-CPU nanoseconds per send. */
interface Window {
  ns: number;
  userNs: number;
}

/** Starts a window's clocks; the returned function ends it for `sends` sends. */
function clocks(): (sends: number) => Window {
  const t0 = performance.now();
  const u0 = process.cpuUsage();
  return (sends) => ({ ns: ((performance.now() - t0) * 1e6) / sends, userNs: (process.cpuUsage(u0).user * 1e3) / sends });
}

async function child(size: number, windows: number, usePool: boolean): Promise<void> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  const ring = new Ring();
  const zs = ring.adopt(sock, { zeroCopyThreshold: 0, autoDowngrade: false, receive: false });
  // --pool: one pool buffer, held (acquired) for the whole run and sent again and again.
  const pool = usePool ? ring.createBufferPool({ bufferSize: size, count: 1 }) : null;
  const buf = pool !== null ? pool.acquire()!.fill(1) : Buffer.alloc(size, 1);

  // One driver for both: QD sends in flight, each completion starts the next, for one window.
  const drive = (issue: (done: () => void) => void): Promise<Window> => new Promise((resolve) => {
    let sends = 0;
    let inFlight = 0;
    let stop = false;
    const end = performance.now() + WINDOW_MS;
    const finish = clocks();
    const next = (): void => {
      if (stop) {
        if (inFlight === 0) resolve(finish(sends));
        return;
      }
      inFlight++;
      issue(done);
    };
    const done = (): void => {
      sends++;
      inFlight--;
      if ((sends & 63) === 0 && performance.now() > end) stop = true;
      next();
    };
    for (let i = 0; i < QD; i++) next();
  });

  // The library, callback form, one options object: the fastest way to use it. A pool buffer
  // returns to its pool when its last send settles: take it back (as a sender reusing its buffers
  // does), a null pop while some send of it is still in flight.
  const library = (): Promise<Window> => drive((done) => {
    if (pool !== null) pool.acquire();
    zs.send(buf, DEST, done);
  });

  // The bare ring: the same requests on the same socket, written straight into a ring of its own.
  const addr = addressOf(buf);
  const sa = encodeSockaddr(DEST.address, DEST.port, 2);
  const saAddr = addressOf(sa);
  let bareDone = (): void => {};
  const bareRing = new BareRing(() => bareDone());
  if (usePool) bareRing.register(addr, size); // the same memory, fixed buffer 0 of this ring
  const bare = (): Promise<Window> => drive((done) => {
    bareDone = done;
    bareRing.send(zs.fd, addr, size, saAddr, sa.length, usePool);
  });

  const lib: number[] = [];
  const raw: number[] = [];
  const diff: number[] = [];
  const userDiff: number[] = [];
  for (let i = 0; i < windows + 2; i++) {
    const a = await library();
    const b = await bare();
    if (i < 2) continue; // warm-up
    lib.push(a.ns);
    raw.push(b.ns);
    diff.push(a.ns - b.ns);
    userDiff.push(a.userNs - b.userNs);
  }
  bareRing.close();
  await zs.close();
  if (pool !== null) {
    if (pool.stats().free === 0) pool.release(buf); // held since the last send settled
    await pool.close();
  }
  await ring.close();
  sock.close();
  process.stdout.write(JSON.stringify({
    size, windows, pool: usePool, libraryNsPerSend: Math.round(median(lib)), bareNsPerSend: Math.round(median(raw)),
    userOverheadNsPerSend: Math.round(median(userDiff)),
    overheadNsPerSend: Math.round(median(diff)), bareOverLibrary: Math.round((median(raw) / median(lib)) * 1000) / 1000,
    keep: sa.length,
  }) + '\n');
}

async function main(): Promise<void> {
  const size = intArg('--size', 16384);
  const windows = intArg('--windows', 10);
  const usePool = process.argv.includes('--pool');
  if (process.argv.includes('--child')) return child(size, windows, usePool);
  const json = await runChildInSink('overhead', fileURLToPath(import.meta.url),
    ['--size', String(size), '--windows', String(windows), ...(usePool ? ['--pool'] : [])]);
  if (json !== null) {
    const r = json as Record<string, number>;
    console.log(`size ${r['size']} B${usePool ? ', one registered buffer' : ''}, ${r['windows']} alternating windows of ${WINDOW_MS} ms, qd ${QD}:`);
    console.log(`  library ${r['libraryNsPerSend']} ns/send, bare ring ${r['bareNsPerSend']} ns/send`);
    console.log(`  the library adds ${r['overheadNsPerSend']} ns per send (bare/library = ${r['bareOverLibrary']}), ${r['userOverheadNsPerSend']} ns of it user CPU`);
  }
}

await main();
