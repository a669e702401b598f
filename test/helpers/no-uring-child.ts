/**
 * Run by test/seccomp.test.ts under build/Release/uzc_no_uring (io_uring refused by seccomp):
 * reports what the library does there as one JSON line. Every step catches its own error, so
 * the report is complete even where a step fails.
 *
 * argv: [raw] — "raw" only calls io_uring_enter and io_uring_register on a bad descriptor
 * through the addon (their errno tells a filter's refusal from the kernel's EBADF) and prints.
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
  const raw = { enter: native.enter(NO_FD, 0, 0, 0), register: native.register(NO_FD, 0, null, 0) };
  if (process.argv[2] === 'raw') {
    process.stdout.write(`${JSON.stringify({ raw })}\n`);
    return;
  }
  // Imported after the raw calls, so that "raw" never runs the library's probe.
  const { adopt, capabilities, Ring, UringZcError } = await import('../../src/index.js');
  const caps = capabilities();
  const out: Record<string, unknown> = { raw, ioUring: caps.ioUring, sendZc: caps.sendZc, fixedBuffers: caps.fixedBuffers, reason: caps.reason ?? null };

  const attempt = (what: string, fn: () => unknown): void => {
    try {
      const r = fn() as { close?: () => unknown } | undefined;
      out[what] = { ok: true };
      void r?.close?.();
    } catch (e) {
      out[what] = { ...info(e), isUringZcError: e instanceof UringZcError };
    }
  };

  attempt('ring', () => new Ring());

  const udp = dgram.createSocket('udp4');
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  attempt('adoptDgram', () => adopt(udp));

  const server = net.createServer((s) => s.resume());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const tcp = net.connect(port, '127.0.0.1');
  await once(tcp, 'connect');
  attempt('adoptNet', () => adopt(tcp));
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
