/**
 * TCP over loopback: many sends of mixed sizes in flight on one adopted socket arrive intact and
 * in call order, and the per-send results and the socket's counters agree. Loopback always copies
 * (the receiver gets the data by copy), so every send reports `zeroCopy: false`. Once per backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type net from 'node:net';
import { type SendResult, type ZeroCopySocket } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { zeroCopyUnavailableReason, fileRing } from './helpers/env.js';
import { StreamVerifier, connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';
import { BACKENDS, adopterFor, gatedOn, type Backend } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();
const ring = fileRing(skipReason);
/** The file's ring and a window of 48 zero-copy sends of up to 1 MiB in flight. */
const opts = (backend: Backend, timeout: number) => gatedOn(backend, timeout, skipReason, { rings: [256], zeroCopy: [[48, 1 << 20]] });

interface RunResult {
  results: SendResult[];
  sizes: number[];
  maxInFlight: number;
  stats: ReturnType<ZeroCopySocket['stats']>;
  verifier: StreamVerifier;
}

/**
 * Sends at least `totalBytes` in sends of seeded sizes (1 B .. 1 MiB), keeping `window` sends in
 * flight: send() is called again as soon as one settles, never awaited one by one. The payloads
 * are a mix of fresh Buffers, plain Uint8Arrays and views into a shared pool at odd offsets (the
 * library must send from the view's byteOffset).
 */
async function sendMixed(
  zs: ZeroCopySocket,
  verifier: StreamVerifier,
  seed: number,
  totalBytes: number,
  window: number,
): Promise<Omit<RunResult, 'stats' | 'verifier'>> {
  const prng = new Prng(seed);
  const pool = prng.bytes(3 << 20);
  const sizes: number[] = [];
  const results: SendResult[] = new Array<SendResult>();
  let queued = 0;
  let maxInFlight = 0;
  // Fixed extremes first, then seeded sizes.
  const fixed = [1, 1 << 20, 2, 65536, 1 << 20, 3];
  const nextPayload = (): Uint8Array => {
    const size = fixed[sizes.length] ?? prng.logSize(1, 1 << 20);
    sizes.push(size);
    switch (sizes.length % 3) {
      case 0:
        return prng.bytes(size);
      case 1: {
        const off = prng.int(0, pool.length - size);
        return pool.subarray(off, off + size);
      }
      default:
        return prng.fill(new Uint8Array(size));
    }
  };
  await new Promise<void>((resolve, reject) => {
    let active = 0;
    let failed = false;
    const pump = (): void => {
      // Bounded: at most totalBytes / 1 + window iterations overall; each call adds >= 1 byte.
      while (!failed && active < window && queued < totalBytes) {
        const buf = nextPayload();
        const index = sizes.length - 1;
        verifier.expect(buf);
        queued += buf.byteLength;
        active++;
        zs.send(buf).then(
          (r) => {
            results[index] = r;
            active--;
            if (queued >= totalBytes && active === 0) resolve();
            else pump();
          },
          (e: unknown) => {
            failed = true;
            reject(e instanceof Error ? e : new Error(String(e)));
          },
        );
      }
      maxInFlight = Math.max(maxInFlight, zs.stats().inFlight);
    };
    pump();
  });
  return { results, sizes, maxInFlight };
}

async function run(backend: Backend, options: { slowReader: boolean; totalBytes: number; seed: number }): Promise<RunResult> {
  const verifier = new StreamVerifier();
  let chunks = 0;
  const rx = await tcpReceiver({
    onData: (chunk, s) => {
      verifier.push(chunk);
      if (options.slowReader && ++chunks % 8 === 0) {
        // Stop reading for a moment: the sender's requests stall in the kernel, then go on.
        s.pause();
        setTimeout(() => s.resume(), 2);
      }
    },
  });
  const client = await connectTcp(rx.port);
  const zs = adopterFor(backend, ring)(client);
  try {
    const sent = await sendMixed(zs, verifier, options.seed, options.totalBytes, 48);
    await rx.waitForBytes(verifier.expected, 60_000);
    return { ...sent, stats: zs.stats(), verifier };
  } finally {
    await zs.close();
    await destroySocket(client as net.Socket);
    await rx.close();
  }
}

function checkRun(r: RunResult, minBytes: number): void {
  const { results, sizes, stats, verifier } = r;
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.ok(total >= minBytes, `sent ${total} bytes, wanted at least ${minBytes}`);
  assert.ok(sizes.includes(1) && sizes.includes(1 << 20), 'sizes cover 1 B and 1 MiB');
  assert.equal(results.length, sizes.length);
  for (let i = 0; i < sizes.length; i++) {
    assert.deepEqual(results[i], { bytes: sizes[i], zeroCopy: false }, `send #${i} (${sizes[i]} bytes)`);
  }
  assert.equal(verifier.mismatchAt, -1, `received stream differs from the sent one at byte ${verifier.mismatchAt}`);
  assert.equal(verifier.extra, 0, 'no bytes beyond what was sent');
  assert.equal(verifier.verified, total, 'every sent byte arrived');
  assert.ok(r.maxInFlight >= 32, `at most ${r.maxInFlight} sends were in flight; the test wants >= 32`);
  const { sends, bytes, zeroCopied, copied, errors, inFlight } = stats;
  assert.deepEqual(
    { sends, bytes, zeroCopied, copied, errors, inFlight },
    { sends: sizes.length, bytes: total, zeroCopied: 0, copied: sizes.length, errors: 0, inFlight: 0 },
  );
}

for (const backend of BACKENDS) {
  test(`${backend}: 64 MiB in mixed sizes with >= 32 sends in flight arrives intact and in order`, opts(backend, 90_000), async () => {
    const r = await run(backend, { slowReader: false, totalBytes: 64 << 20, seed: 0x7c9 });
    checkRun(r, 64 << 20);
  });

  test(`${backend}: a receiver that keeps pausing still gets every byte intact and in order`, opts(backend, 90_000), async () => {
    const r = await run(backend, { slowReader: true, totalBytes: 16 << 20, seed: 0x5103 });
    checkRun(r, 16 << 20);
  });
}
