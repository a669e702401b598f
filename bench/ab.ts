/**
 * `node dist/bench/ab.js --a DIR --b DIR [--size N] [--windows N] [--pool | --backend msg_zerocopy|copy]`: two builds of the
 * library (two checkouts, each built: `npm ci`) against each other, in one process, in
 * alternating windows of 250 ms, UDP into an IFB sink namespace it creates and removes (root).
 * Each build gets its own ring and socket and sends the same datagrams the same way (callback
 * form, 64 in flight; `--pool`: one registered buffer); the report is the median of the
 * per-window ratios, b's speed over a's. The tool for "the hot path stays >= 0.98x of before"
 * when restructuring: run it both ways (a/b and b/a), since the build loaded second may pay a
 * little for it.
 */
import dgram from 'node:dgram';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { intArg, middle, runChildInSink } from './tools.js';

const QD = 64;
const WINDOW_MS = 250;
const DEST = { address: '198.18.0.2', port: 9 };

interface Lib {
  adopt(s: dgram.Socket, o: object): Sender;
  Ring: new () => { adopt(s: dgram.Socket, o: object): Sender; createBufferPool(o: object): Pool; close(): Promise<void> };
}
interface Sender {
  send(b: Buffer, o: object, cb: () => void): void;
  close(): Promise<void>;
}
interface Pool {
  acquire(): Buffer | null;
  close(): Promise<void>;
}

function stringArg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`${name} DIR is required (a checkout of uring-zc, built)`);
  return path.resolve(v);
}

async function setup(dir: string, size: number, usePool: boolean, backend: string | undefined): Promise<{ send: (done: () => void) => void; close(): Promise<void> }> {
  const lib = (await import(pathToFileURL(path.join(dir, 'dist/src/index.js')).href)) as Lib;
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  if (backend !== undefined) {
    // A backend without io_uring: each build's own (one per library instance and thread).
    const zs = lib.adopt(sock, { zeroCopyThreshold: 0, autoDowngrade: false, receive: false, backend });
    const buf = Buffer.alloc(size, 1);
    return {
      send: (done) => zs.send(buf, DEST, done),
      close: async () => {
        await zs.close();
        sock.close();
      },
    };
  }
  const ring = new lib.Ring();
  const zs = ring.adopt(sock, { zeroCopyThreshold: 0, autoDowngrade: false, receive: false });
  const pool = usePool ? ring.createBufferPool({ bufferSize: size, count: 1 }) : null;
  const buf = pool !== null ? pool.acquire()!.fill(1) : Buffer.alloc(size, 1);
  return {
    // A pool buffer returns to its pool when its last send settles: take it back before each send.
    send: (done) => {
      if (pool !== null) pool.acquire();
      zs.send(buf, DEST, done);
    },
    close: async () => {
      await zs.close();
      await ring.close();
      sock.close();
    },
  };
}

/** ns per send over one window, QD sends in flight. */
function drive(send: (done: () => void) => void): Promise<number> {
  return new Promise((resolve) => {
    let sends = 0;
    let inFlight = 0;
    let stop = false;
    const end = performance.now() + WINDOW_MS;
    const t0 = process.hrtime.bigint();
    const done = (): void => {
      sends++;
      inFlight--;
      if ((sends & 63) === 0 && performance.now() > end) stop = true;
      next();
    };
    const next = (): void => {
      if (stop) {
        if (inFlight === 0) resolve(Number(process.hrtime.bigint() - t0) / sends);
        return;
      }
      inFlight++;
      send(done);
    };
    for (let i = 0; i < QD; i++) next();
  });
}

async function child(a: string, b: string, size: number, windows: number, usePool: boolean, backend: string | undefined): Promise<void> {
  const A = await setup(a, size, usePool, backend);
  const B = await setup(b, size, usePool, backend);
  const ratios: number[] = [];
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < windows + 2; i++) {
    // Alternate which goes first, so neither always follows the other.
    const x = i % 2 === 0 ? await drive(A.send) : -1;
    const y = await drive(B.send);
    const x2 = x >= 0 ? x : await drive(A.send);
    if (i < 2) continue; // warm-up
    as.push(x2);
    bs.push(y);
    ratios.push(x2 / y);
  }
  await A.close();
  await B.close();
  process.stdout.write(`${JSON.stringify({ size, windows, pool: usePool, backend: backend ?? 'io_uring', aNsPerSend: Math.round(middle(as)), bNsPerSend: Math.round(middle(bs)), bSpeedOverA: Math.round(middle(ratios) * 1000) / 1000 })}\n`);
}

async function main(): Promise<void> {
  const a = stringArg('--a');
  const b = stringArg('--b');
  const size = intArg('--size', 16384);
  const windows = intArg('--windows', 20);
  const usePool = process.argv.includes('--pool');
  const bi = process.argv.indexOf('--backend');
  const backend = bi >= 0 ? process.argv[bi + 1] : undefined;
  if (backend !== undefined && backend !== 'msg_zerocopy' && backend !== 'copy') throw new Error('--backend is msg_zerocopy or copy');
  if (backend !== undefined && usePool) throw new Error('--pool is for the io_uring backend');
  if (process.argv.includes('--child')) return child(a, b, size, windows, usePool, backend);
  const json = await runChildInSink('ab', fileURLToPath(import.meta.url),
    ['--a', a, '--b', b, '--size', String(size), '--windows', String(windows), ...(usePool ? ['--pool'] : []), ...(backend ? ['--backend', backend] : [])]);
  if (json !== null) {
    const r = json as Record<string, number>;
    console.log(`size ${r['size']} B${usePool ? ', one registered buffer' : ''}${backend ? `, backend ${backend}` : ''}, ${r['windows']} alternating windows of ${WINDOW_MS} ms, qd ${QD}:`);
    console.log(`  a ${r['aNsPerSend']} ns/send, b ${r['bNsPerSend']} ns/send; b's speed over a's: ${r['bSpeedOverA']}x (median of per-window ratios)`);
  }
}

await main();
