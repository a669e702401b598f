/**
 * examples/udp-stream.ts as a user runs it: paced GSO batches to its own receiver on loopback for
 * one second. The rate it reports is the one asked for, every datagram is numbered and they
 * arrive in order, with (next to) none lost, and no send failed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { collectChild } from './helpers/pool-helpers.js';

test('examples/udp-stream: paced GSO datagrams arrive in order at the asked rate', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, ['dist/examples/udp-stream.js', '--seconds', '1', '--rate', '100', '--segment', '1200'], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { code, out, err } = await collectChild(child, 20_000);
  assert.equal(code, 0, `exit ${code}: ${err}`);
  const r = JSON.parse(out.trim()) as { backend: string; datagrams: number; batches: number; mbitPerSecond: number; error: string | null; received: number; lost: number; outOfOrder: number };
  assert.equal(r.error, null);
  assert.ok(r.mbitPerSecond > 75 && r.mbitPerSecond < 125, `paced near 100 Mbit/s: ${r.mbitPerSecond}`);
  assert.equal(r.datagrams, r.batches * 54, '54 datagrams of 1200 bytes per GSO batch');
  assert.equal(r.outOfOrder, 0);
  assert.ok(r.lost <= r.datagrams * 0.005, `lost ${r.lost} of ${r.datagrams}`);
  assert.equal(r.received + r.lost, r.datagrams);
});
