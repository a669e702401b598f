/**
 * pipeline(file -> zs.createWriteStream()) against a hand-written send() loop of the same chunks
 * and against Node's own `fs.createReadStream(file).pipe(net.Socket)`, in one process, in
 * alternating rounds (the order rotates each round), to a receiver process that counts and
 * discards (bench/receiver.ts). Each run is a fresh TCP connection and ends when the receiver has
 * read every byte (it closes after our FIN), so the three are timed end to end alike.
 *
 *   node dist/bench/stream.js [--size 1073741824] [--rounds 5] [--chunk 65536] [--backend io_uring] [--veth]
 *
 * --veth: the sender runs in one namespace and the receiver in another, joined by a veth pair
 * (bench/netns.ts; root only; the namespaces are deleted afterwards). Prints one line per run and
 * a summary: median GB/s and sender CPU s/GB per mode, and the ratios the issue asks about.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import readline from 'node:readline';
import { adopt, type ZeroCopySocket } from '../src/index.js';
import { createVethPair } from './netns.js';

type Mode = 'stream' | 'sendloop' | 'node-pipe';
const MODES: readonly Mode[] = ['stream', 'sendloop', 'node-pipe'];
const here = path.dirname(fileURLToPath(import.meta.url));

interface Args {
  size: number;
  rounds: number;
  chunk: number;
  backend: 'io_uring' | 'msg_zerocopy' | 'copy';
  veth: boolean;
  host: string | null;
  port: number;
  file: string | null;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { size: 1 << 30, rounds: 5, chunk: 64 << 10, backend: 'io_uring', veth: false, host: null, port: 0, file: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    const num = (lo: number, hi: number): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${k} must be an integer in [${lo}, ${hi}]`);
      i++;
      return n;
    };
    if (k === '--size') a.size = num(1 << 20, 2 ** 34);
    else if (k === '--rounds') a.rounds = num(1, 50);
    else if (k === '--chunk') a.chunk = num(4096, 16 << 20);
    else if (k === '--backend' && (v === 'io_uring' || v === 'msg_zerocopy' || v === 'copy')) {
      a.backend = v;
      i++;
    } else if (k === '--veth') a.veth = true;
    else if (k === '--host' && v !== undefined) {
      a.host = v;
      i++;
    } else if (k === '--port') a.port = num(1, 65535);
    else if (k === '--file' && v !== undefined) {
      a.file = v;
      i++;
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

/** Starts bench/receiver.js (in a namespace through `wrap`), resolves with it and its port. */
async function startReceiver(host: string, wrap: (argv: string[]) => ChildProcess): Promise<{ child: ChildProcess; port: number }> {
  const child = wrap([process.execPath, path.join(here, 'receiver.js'), '--host', host]);
  const rl = readline.createInterface({ input: child.stdout! });
  const [line] = (await once(rl, 'line')) as [string];
  rl.close();
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

async function connect(host: string, port: number): Promise<net.Socket> {
  const s = net.connect({ host, port });
  await once(s, 'connect');
  return s;
}

/** Half-closes after our bytes and waits for the receiver's close: it has read everything. */
async function endAndWait(s: net.Socket): Promise<void> {
  const closed = once(s, 'close');
  s.resume(); // the receiver's FIN reaches 'end' only when the socket reads
  s.end();
  await closed;
}

/**
 * The hand-written loop: each chunk of the same read stream goes through zs.send(), keeping at
 * most `budget` bytes unreleased (the stream's own budget: maxUnreleased + highWaterMark).
 */
async function sendLoop(zs: ZeroCopySocket, file: string, chunk: number, budget: number): Promise<void> {
  let unreleased = 0;
  let wake: (() => void) | null = null;
  let failed: Error | null = null;
  const done = (err: Error | null, bytes: number): void => {
    if (err !== null) failed ??= err;
    unreleased -= bytes === 0 && err !== null ? 0 : bytes;
    const w = wake;
    wake = null;
    w?.();
  };
  let total = 0;
  for await (const c of fs.createReadStream(file, { highWaterMark: chunk })) {
    const b = c as Buffer;
    if (failed !== null) throw failed;
    unreleased += b.length;
    total += b.length;
    zs.send(b, undefined, (err, bytes) => done(err, err === null ? bytes : b.length));
    while (unreleased > budget) await new Promise<void>((r) => (wake = r));
  }
  while (unreleased > 0) await new Promise<void>((r) => (wake = r));
  if (failed !== null) throw failed;
  void total;
}

async function runOne(mode: Mode, a: Args, file: string, host: string, port: number): Promise<{ gbps: number; cpuPerGb: number }> {
  const s = await connect(host, port);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  if (mode === 'node-pipe') {
    await pipeline(fs.createReadStream(file, { highWaterMark: a.chunk }), s, { end: false });
    await endAndWait(s);
  } else {
    const zs = adopt(s, { backend: a.backend });
    if (mode === 'stream') {
      // The bench CLI's `stream` row uses this call shape.
      await pipeline(fs.createReadStream(file, { highWaterMark: a.chunk }), zs.createWriteStream({ highWaterMark: 4 << 20 }));
    } else {
      await sendLoop(zs, file, a.chunk, 8 << 20);
    }
    await zs.close();
    await endAndWait(s);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  const gb = a.size / 1e9;
  return { gbps: gb / secs, cpuPerGb: (c.user + c.system) / 1e6 / gb };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function bench(a: Args, host: string, port: number): Promise<void> {
  let file = a.file;
  let made = false;
  if (file === null) {
    file = path.join(os.tmpdir(), `uzc-stream-bench-${process.pid}.bin`);
    const fd = fs.openSync(file, 'w');
    const b = Buffer.alloc(4 << 20, 0x5a);
    for (let off = 0; off < a.size; off += b.length) fs.writeSync(fd, b, 0, Math.min(b.length, a.size - off));
    fs.closeSync(fd);
    made = true;
  }
  try {
    // Warm the page cache (the file is far larger than the CPU caches, and in memory).
    for await (const _ of fs.createReadStream(file, { highWaterMark: 4 << 20 })) void _;
    const res: Record<Mode, { gbps: number[]; cpu: number[] }> = { stream: { gbps: [], cpu: [] }, sendloop: { gbps: [], cpu: [] }, 'node-pipe': { gbps: [], cpu: [] } };
    for (let r = 0; r < a.rounds; r++) {
      for (let i = 0; i < MODES.length; i++) {
        const mode = MODES[(i + r) % MODES.length]!;
        const o = await runOne(mode, a, file, host, port);
        res[mode].gbps.push(o.gbps);
        res[mode].cpu.push(o.cpuPerGb);
        console.log(`round ${r + 1} ${mode.padEnd(9)} ${o.gbps.toFixed(2)} GB/s  ${o.cpuPerGb.toFixed(3)} CPU s/GB`);
      }
    }
    const med = (m: Mode): { gbps: number; cpu: number } => ({ gbps: median(res[m].gbps), cpu: median(res[m].cpu) });
    const s = med('stream');
    const l = med('sendloop');
    const n = med('node-pipe');
    console.log(`summary (${a.host !== null ? 'veth' : 'loopback'}, backend ${a.backend}, ${a.size} B, chunk ${a.chunk}, ${a.rounds} rounds, medians):`);
    for (const m of MODES) console.log(`  ${m.padEnd(9)} ${med(m).gbps.toFixed(2)} GB/s  ${med(m).cpu.toFixed(3)} CPU s/GB`);
    console.log(`  stream / sendloop  = ${(s.gbps / l.gbps).toFixed(2)}x GB/s (target >= 0.9)`);
    console.log(`  stream / node-pipe = ${(s.gbps / n.gbps).toFixed(2)}x GB/s (target >= 1.3), CPU/GB ${(s.cpu / n.cpu).toFixed(2)}x`);
    console.log(JSON.stringify({ veth: a.host !== null, backend: a.backend, size: a.size, chunk: a.chunk, rounds: a.rounds, stream: s, sendloop: l, nodePipe: n }));
  } finally {
    if (made) fs.rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  if (a.host !== null) {
    // The sender side of --veth, inside namespace a.
    await bench(a, a.host, a.port);
    return;
  }
  if (!a.veth) {
    const rx = await startReceiver('127.0.0.1', (argv) => spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] }));
    try {
      await bench(a, '127.0.0.1', rx.port);
    } finally {
      rx.child.kill('SIGTERM');
    }
    return;
  }
  const pair = createVethPair();
  try {
    const rx = await startReceiver(pair.addressB, (argv) => pair.spawnIn('b', argv, { stdio: ['pipe', 'pipe', 'inherit'] }));
    try {
      const args = process.argv.slice(2).filter((x) => x !== '--veth');
      const child = pair.spawnIn('a', [process.execPath, fileURLToPath(import.meta.url), ...args, '--host', pair.addressB, '--port', String(rx.port)],
        { stdio: 'inherit' });
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) process.exitCode = 1;
    } finally {
      rx.child.kill('SIGTERM');
      await once(rx.child, 'exit').catch(() => {});
    }
  } finally {
    pair.dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
