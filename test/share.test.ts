/**
 * Sharing a socket with Node: the library's stream sends restart Node's idle timer as they make
 * progress (Node cannot see them), and zs.bytesWritten counts what Node's bytesWritten does not.
 * Once per backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ring } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { zeroCopyUnavailableReason } from './helpers/env.js';
import { StreamVerifier, connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';
import { BACKENDS, adopterFor, backendUnavailableReason } from './helpers/backends.js';

const skipReason = zeroCopyUnavailableReason();

for (const backend of BACKENDS) {
  test(`${backend}: stream sends restart the Node socket's idle timer at every result, and zs.bytesWritten counts their bytes`, { timeout: 30_000, skip: backendUnavailableReason(backend, skipReason) ?? false }, async () => {
    const ring = backend === 'io_uring' ? new Ring() : undefined;
    const verifier = new StreamVerifier();
    const rx = await tcpReceiver({ onData: (c) => verifier.push(c) });
    const client = await connectTcp(rx.port);
    // Node's own refresh of the idle timer (net.Socket#_unrefTimer), counted.
    const own = (client as unknown as { _unrefTimer: () => void })._unrefTimer;
    assert.equal(typeof own, 'function', 'this Node has net.Socket#_unrefTimer');
    let refreshed = 0;
    (client as unknown as { _unrefTimer: () => void })._unrefTimer = function (this: unknown) {
      refreshed++;
      own.call(this);
    };
    const zs = adopterFor(backend, ring && (() => ring))(client);
    try {
      const big = new Prng(21).bytes(24 << 20); // six stream requests of 4 MiB, one after the other
      verifier.expect(big);
      await zs.send(big, { zeroCopy: true });
      const small: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        const b = new Prng(30 + i).bytes(1000);
        verifier.expect(b);
        small.push(zs.send(b));
      }
      await Promise.all(small);
      await rx.waitForBytes(verifier.expected, 10_000);
      assert.ok(verifier.complete, 'every byte arrived intact');
      // io_uring: six 4 MiB requests and ten small ones; the other backends' sendmsg results are
      // at least as many (a full socket buffer splits a request).
      assert.ok(refreshed >= 7, `the idle timer was restarted at each result (${refreshed} times)`);
      assert.equal(zs.bytesWritten, verifier.expected, 'zs.bytesWritten');
      assert.equal(client.bytesWritten, 0, 'Node\'s own counter does not see the library\'s sends');
    } finally {
      await zs.close();
      await destroySocket(client);
      await rx.close();
      await ring?.close();
    }
  });
}
