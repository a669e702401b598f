/**
 * Runs inside the IFB sink namespace (spawned by test/sendv.test.ts): sendv() of a 1 KiB header
 * and a 61440-byte body placed to span 16 pages, so the datagram needs 17 page fragments with the
 * header inside one page and 18 with a header straddling two (more than a zero-copy datagram may
 * have: the library then copies the header into a page of its own). Also 20 separately allocated
 * 1000-byte pieces (too many fragments, too much to copy: the whole datagram is copied), and the
 * 17-fragment case again through the msghdr path (SENDMSG_ZC, as kernels before 6.17 use).
 * Prints one JSON line: { name: { zeroCopy, bytes } | { code } }.
 *
 * argv: destination port
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { Ring } from '../../src/index.js';
import { childAdopt, childBackend } from './backends.js';
import { addressOf } from '../../src/buffers.js';

const PAGE = 4096;

/** `len` bytes of `fill` starting `inPage` bytes past a page boundary. */
function placed(len: number, inPage: number, fill: number): Buffer {
  const region = Buffer.allocUnsafeSlow(len + 2 * PAGE).fill(fill);
  const skip = (PAGE - (addressOf(region) % PAGE)) % PAGE;
  return region.subarray(skip + inPage, skip + inPage + len);
}

async function main(): Promise<void> {
  const [destination, portText] = process.argv.slice(2);
  const dest = { address: destination!, port: Number(portText) };
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '0.0.0.0');
  await once(sock, 'listening');
  // A Ring only for io_uring: the syscall backends never call io_uring_setup.
  const ring = childBackend() === 'io_uring' ? new Ring() : undefined;
  const zs = childAdopt(ring, sock, { autoDowngrade: false });
  const body = placed(61440, 1024, 0x42); // 16 pages
  const inPage = placed(1024, 0, 0x48); // 1 page: 17 fragments
  const straddling = placed(1024, PAGE - 512, 0x48); // 2 pages: 18 fragments
  const pieces = Array.from({ length: 20 }, (_, i) => placed(1000, 3500, i)); // 2 pages each
  const out: Record<string, unknown> = {};
  const run = async (name: string, chunks: Uint8Array[]): Promise<void> => {
    try {
      const r = await zs.sendv(chunks, dest);
      out[name] = { zeroCopy: r.zeroCopy, bytes: r.bytes };
    } catch (e) {
      out[name] = { code: String((e as { code?: unknown }).code) };
    }
  };
  await run('17 fragments', [inPage, body]);
  await run('18 fragments', [straddling, body]);
  // Many at once: the copies fill more than one slab of the socket.
  const many = await Promise.all(Array.from({ length: 200 }, () => zs.sendv([straddling, body], dest)));
  out['18 fragments x200'] = { zeroCopy: many.every((r) => r.zeroCopy), bytes: many.reduce((a, r) => a + r.bytes, 0) };
  await run('20 pieces', pieces);
  // The msghdr path (IORING_OP_SENDMSG_ZC), which kernels without IORING_SEND_VECTORIZED take.
  (zs as unknown as { vectorFlag: number }).vectorFlag = 0;
  await run('17 fragments, msghdr', [inPage, body]);
  await run('18 fragments, msghdr', [straddling, body]);
  out['stats'] = zs.stats();
  await zs.close();
  await ring?.close();
  sock.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`sendv-sink-sender: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 1;
});
