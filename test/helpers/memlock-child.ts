/**
 * Spawned by test/memlock.test.ts as an unprivileged user (no CAP_IPC_LOCK) under a small
 * RLIMIT_MEMLOCK: creates a Ring, then a pool larger than the limit (registration must fail with
 * ENOMEM and a message that says what to do), then a pool within the limit, and sends one buffer
 * of it over UDP loopback. Prints one JSON line.
 *
 * argv: bigBytes smallBufferSize smallCount
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { capabilities, Ring } from '../../src/index.js';

interface ErrorInfo {
  name: string;
  code: string | undefined;
  errno: number | undefined;
  syscall: string | undefined;
  message: string;
}

function info(e: unknown): ErrorInfo {
  const x = e as { name?: string; code?: string; errno?: number; syscall?: string; message?: string };
  return { name: String(x.name), code: x.code, errno: x.errno, syscall: x.syscall, message: String(x.message ?? e) };
}

/**
 * The child starts with a soft RLIMIT_MEMLOCK of 0 and the test's limit as the hard one, and
 * raises the soft limit to the hard one here, before anything of uring-zc runs. Node >= 22's
 * libuv sets up an io_uring ring for each event loop at startup (three in a plain process:
 * the main loop, the tracing agent's, the delayed-task scheduler's), and since Linux 6.13 ring
 * memory counts against RLIMIT_MEMLOCK for a user without CAP_IPC_LOCK: under 64 KiB they took
 * 56 KiB before this code ran. Under a soft limit of 0 their setup fails (libuv goes on
 * without them), so the whole limit is left to what the test measures.
 */
function raiseSoftMemlock(): void {
  const m = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const hard = m?.[2];
  if (hard === undefined || hard === 'unlimited' || m?.[1] === hard) return;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--memlock=${hard}:${hard}`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit could not raise the soft RLIMIT_MEMLOCK to ${hard}: ${r.stderr || r.error?.message || String(r.status)}`);
}

async function main(): Promise<void> {
  raiseSoftMemlock();
  const [bigText, sizeText, countText] = process.argv.slice(2).map(Number);
  const caps = capabilities();
  const out: Record<string, unknown> = { uid: process.getuid?.(), memlockLimit: caps.memlockLimit, ioUring: caps.ioUring, reason: caps.reason ?? null };
  if (!caps.ioUring || !caps.sendZc) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const ring = new Ring();
  try {
    const pool = ring.createBufferPool({ bufferSize: bigText!, count: 1 });
    out.big = { created: true, registeredBytes: pool.stats().registeredBytes };
    await pool.close();
  } catch (e) {
    out.big = info(e);
  }
  try {
    const pool = ring.createBufferPool({ bufferSize: sizeText!, count: countText! });
    const rx = dgram.createSocket('udp4');
    rx.bind(0, '127.0.0.1');
    await once(rx, 'listening');
    const tx = dgram.createSocket('udp4');
    tx.bind(0, '127.0.0.1');
    await once(tx, 'listening');
    const zs = ring.adopt(tx);
    const buf = pool.acquire()!;
    for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
    const expected = Buffer.from(buf.subarray(0, 1000));
    const arrived = once(rx, 'message') as Promise<[Buffer]>;
    const r = await zs.send(buf.subarray(0, 1000), { address: '127.0.0.1', port: rx.address().port });
    const [msg] = await arrived;
    out.small = {
      registeredBytes: pool.stats().registeredBytes,
      bytes: r.bytes,
      fixed: zs.stats().fixed,
      intact: msg.equals(expected),
      free: pool.stats().free,
    };
    await zs.close();
    tx.close();
    rx.close();
    await pool.close();
  } catch (e) {
    out.small = { error: info(e) };
  }
  await ring.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`memlock-child: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
