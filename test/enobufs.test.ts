/**
 * ENOBUFS on the msg_zerocopy backend: with net.core.optmem_max used up by completions not yet
 * read, sendmsg(MSG_ZEROCOPY) fails with ENOBUFS. The backend must neither fail the send nor wait
 * for a notification that cannot come (gRPC's deadlock): it resends by copying when none is
 * outstanding on the socket, and otherwise waits for the next completion. Run in a namespace of
 * its own with optmem_max = 1 KiB (the host's setting is not touched).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capabilities } from '../src/index.js';
import { createLoopbackNamespace, leftoverNamespaces, netnsUnavailableReason } from '../bench/netns.js';
import { collectChild } from './helpers/pool-helpers.js';

const mzc = capabilities().backends.msg_zerocopy;
const skip = netnsUnavailableReason() ?? (mzc.ok ? null : `MSG_ZEROCOPY is not available here: ${mzc.reason}`);

test('msg_zerocopy with a tiny optmem_max: a long TCP stream and a UDP burst complete, intact, every send once', { timeout: 90_000, skip: skip ?? false }, async () => {
  const ns = createLoopbackNamespace();
  try {
    ns.sysctl('net.core.optmem_max', '1024');
    const child = ns.spawn([process.execPath, 'dist/test/helpers/enobufs-child.js', '3000', String(64 << 10)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { code, out, err } = await collectChild(child, 70_000);
    assert.equal(code, 0, `enobufs-child exited with ${code}: ${err}`);
    const r = JSON.parse(out.trim()) as {
      tcp: { sentBytes: number; receivedBytes: number; intact: boolean; errors: string[]; calledOnce: boolean };
      udp: { ok: number; failed: string[] };
    };
    assert.deepEqual(r.tcp.errors, [], 'no TCP send failed');
    assert.ok(r.tcp.calledOnce, 'every TCP callback ran once');
    assert.equal(r.tcp.receivedBytes, r.tcp.sentBytes);
    assert.ok(r.tcp.intact, 'the stream arrived intact');
    assert.deepEqual(r.udp.failed, [], 'no datagram send failed');
    assert.equal(r.udp.ok, 3000);
  } finally {
    ns.dispose();
  }
  assert.deepEqual(leftoverNamespaces(), []);
});
