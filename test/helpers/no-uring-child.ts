/**
 * Run by test/seccomp.test.ts under build/Release/uzc_no_uring (io_uring refused by seccomp):
 * reports what the library does there as one JSON line. Every step catches its own error, so
 * the report is complete even where a step fails.
 *
 * argv: [raw|forced] — "raw" only calls io_uring_enter and io_uring_register on a bad descriptor
 * through the addon (their errno tells a filter's refusal from the kernel's EBADF) and prints;
 * "forced" makes neither those calls nor a Ring (a backend forced by URING_ZC_BACKEND: under the
 * launcher's --kill, any io_uring call the library made would kill the process).
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { native } from '../../src/native.js';

interface ErrorInfo {
  name: string;
  code: string | undefined;
  message: string;
}

function info(e: unknown): ErrorInfo {
  const x = e as { name?: string; code?: string; message?: string };
  return { name: String(x.name), code: x.code, message: String(x.message ?? e) };
}

async function main(): Promise<void> {
  // No such descriptor (not -1, which io_uring_register takes as "no ring"): the kernel says
  // EBADF (-9); a seccomp filter refuses before the kernel looks.
  const NO_FD = 999_999;
  const forced = process.argv[2] === 'forced';
  const raw = forced ? null : { enter: native.enter(NO_FD, 0, 0, 0), register: native.register(NO_FD, 0, null, 0) };
  if (process.argv[2] === 'raw') {
    process.stdout.write(`${JSON.stringify({ raw })}\n`);
    return;
  }
  // Imported after the raw calls, so that "raw" never runs the library's probe.
  const { adopt, capabilities, createBufferPool, Ring, UringZcError } = await import('../../src/index.js');
  const caps = capabilities();
  const out: Record<string, unknown> = { raw, ioUring: caps.ioUring, sendZc: caps.sendZc, fixedBuffers: caps.fixedBuffers, reason: caps.reason ?? null, backend: caps.backend };

  const attempt = (what: string, fn: () => unknown): unknown => {
    try {
      const r = fn() as { close?: () => unknown; backend?: string } | undefined;
      out[what] = { ok: true, backend: r?.backend };
      return r;
    } catch (e) {
      out[what] = { ...info(e), isUringZcError: e instanceof UringZcError };
      return undefined;
    }
  };

  if (!forced) void (attempt('ring', () => new Ring()) as { close?: () => unknown } | undefined)?.close?.();

  const udp = dgram.createSocket('udp4');
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  // Send-only (receive: false): on Node >= 24 a dgram socket that Node reads copies instead (libuv reads its error queue).
  void (attempt('adoptDgram', () => adopt(udp, { receive: false })) as { close?: () => unknown } | undefined)?.close?.();

  // A TCP stream through whatever adopt() picked: 4 MiB, checked by the receiver.
  let received = 0;
  let intact = true;
  const server = net.createServer((s) => s.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length; i++) if (d[i] !== ((received + i) * 7) % 251) intact = false;
    received += d.length;
  }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const tcp = net.connect(port, '127.0.0.1');
  await once(tcp, 'connect');
  const zs = attempt('adoptNet', () => adopt(tcp)) as import('../../src/index.js').ZeroCopySocket | undefined;
  if (zs !== undefined) {
    const payload = Buffer.alloc(4 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 251;
    // The first MiB from a pool of createBufferPool() (plain memory where io_uring is refused).
    const pool = attempt('pool', () => createBufferPool({ bufferSize: 1 << 20, count: 1 })) as import('../../src/index.js').BufferPool | undefined;
    const sends = [];
    for (let at = 0; at < payload.length; at += 1 << 20) {
      const piece = payload.subarray(at, at + (1 << 20));
      const b = at === 0 ? pool?.acquire() : undefined;
      if (b) b.set(piece);
      sends.push(zs.send(b ?? piece));
    }
    await Promise.all(sends);
    if (pool !== undefined) {
      out.pool = { ring: pool.ring === null ? null : 'a Ring', registeredBytes: pool.stats().registeredBytes, free: pool.stats().free };
      await pool.close();
    }
    for (let i = 0; i < 500 && received < payload.length; i++) await new Promise((r) => setTimeout(r, 10));
    out.tcpStream = { received, intact: intact && received === payload.length };
    await zs.close();
  }
  // Node's own sockets still work: only io_uring is refused.
  const echoed = new Promise<boolean>((resolve) => {
    const rx = dgram.createSocket('udp4');
    rx.bind(0, '127.0.0.1', () => {
      rx.once('message', (m) => {
        rx.close();
        resolve(m.toString() === 'still works');
      });
      udp.send('still works', rx.address().port, '127.0.0.1');
    });
  });
  out.nodeSendWorks = await echoed;

  tcp.destroy();
  server.close();
  udp.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`no-uring-child: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
