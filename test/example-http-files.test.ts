/**
 * examples/http-files.ts as a user runs it: 256 requests for a 64 MiB file from 32 concurrent
 * keep-alive clients, every body checked byte for byte against the file, on io_uring and on the
 * copy backend; range requests and small files through Node; curl against it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startFileServer } from '../examples/http-files.js';
import { Prng } from './helpers/data.js';
import { loadTestSkip, within, zeroCopyUnavailableReason } from './helpers/env.js';

let dir = '';
let big: Buffer;
let small: Buffer;
const BIG = 64 << 20;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-http-'));
  big = Buffer.from(new Prng(0x4774).bytes(BIG));
  small = Buffer.from(new Prng(0x5111).bytes(5000));
  writeFileSync(path.join(dir, 'big.bin'), big);
  writeFileSync(path.join(dir, 'small.bin'), small);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** First offset where the body differs from `want` (or -1), and its length. */
  mismatch: number;
  length: number;
}

/** GET `p`, comparing the body with `want` as it streams in (nothing of it is kept). */
function get(agent: http.Agent, port: number, p: string, want: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers }, (res) => {
      let at = 0;
      let mismatch = -1;
      res.on('data', (c: Buffer) => {
        if (mismatch < 0) {
          const w = want.subarray(at, at + c.length);
          if (w.length !== c.length || !w.equals(c)) {
            let i = 0;
            while (i < w.length && w[i] === c[i]) i++;
            mismatch = at + i;
          }
        }
        at += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, mismatch, length: at }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

for (const backend of ['io_uring', 'copy'] as const) {
  const skip = loadTestSkip() || (backend === 'io_uring' ? zeroCopyUnavailableReason() ?? false : false);
  test(`http-files (${backend}): 256 requests for a 64 MiB file from 32 concurrent keep-alive clients, every body intact`, { timeout: 240_000, skip }, async () => {
    const s = await startFileServer({ root: dir, adoptOptions: { backend } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    try {
      let next = 0;
      const results: Got[] = [];
      const client = async (): Promise<void> => {
        while (next < 256) {
          next++;
          results.push(await get(agent, s.port, '/big.bin', big));
        }
      };
      await within(Promise.all(Array.from({ length: 32 }, client)), 200_000, '256 requests');
      assert.equal(results.length, 256);
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, 200, `response ${i}`);
        assert.equal(r.length, BIG, `response ${i}: length`);
        assert.equal(r.mismatch, -1, `response ${i}: first wrong byte`);
        assert.equal(r.headers['content-length'], String(BIG));
      }
      // The server counts a body when its sendFile resolves, which may come after the client read it.
      for (let i = 0; i < 200 && s.counts.sendFile < 256; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.counts.sendFile, 256, 'every body went through sendFile');
      assert.equal(s.counts.failed, 0);
      // Ranges, a small file (through Node) and a missing one, on the same kept-alive connections.
      const r1 = await get(agent, s.port, '/big.bin', big.subarray(1000, 1000 + (3 << 20)), { range: `bytes=1000-${1000 + (3 << 20) - 1}` });
      assert.equal(r1.status, 206);
      assert.equal(r1.length, 3 << 20);
      assert.equal(r1.mismatch, -1);
      const r2 = await get(agent, s.port, '/big.bin', big.subarray(BIG - 100), { range: 'bytes=-100' });
      assert.equal(r2.status, 206);
      assert.equal(r2.length, 100);
      assert.equal(r2.mismatch, -1);
      const r3 = await get(agent, s.port, '/small.bin', small);
      assert.equal(r3.status, 200);
      assert.equal(r3.mismatch, -1);
      assert.equal(r3.length, small.length);
      const r4 = await get(agent, s.port, '/nope', Buffer.alloc(0));
      assert.equal(r4.status, 404);
      const r5 = await get(agent, s.port, '/../../etc/passwd', Buffer.alloc(0));
      assert.ok(r5.status === 403 || r5.status === 404, `outside the root: ${r5.status}`);
      assert.equal(s.counts.failed, 0);
    } finally {
      agent.destroy();
      await s.close();
    }
  });
}

test('http-files: curl downloads the 64 MiB file intact (and a range)', { timeout: 60_000, skip: existsSync('/usr/bin/curl') ? false : 'curl is not installed' }, async () => {
  const s = await startFileServer({ root: dir });
  const out = path.join(dir, 'curl.out');
  try {
    const curl = (args: string[]): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile('curl', ['-sS', '--max-time', '30', ...args], (e, stdout, stderr) => (e ? reject(new Error(`${e.message}: ${stderr}`)) : resolve(stdout)));
      });
    const code = await within(curl(['-o', out, '-w', '%{http_code}', `http://127.0.0.1:${s.port}/big.bin`]), 40_000, 'curl');
    assert.equal(code, '200');
    assert.ok(readFileSync(out).equals(big), 'curl got the file intact');
    // Two URLs on one connection (curl reuses it): keep-alive after a sendFile body.
    const two = await within(curl(['-o', out, '-o', `${out}.2`, '-w', '%{http_code} %{num_connects}\\n', `http://127.0.0.1:${s.port}/big.bin`, `http://127.0.0.1:${s.port}/small.bin`]), 40_000, 'curl twice');
    assert.deepEqual(two.trim().split('\n'), ['200 1', '200 0'], 'the second request reused the connection');
    assert.ok(readFileSync(`${out}.2`).equals(small));
    const part = await within(curl(['-r', '10-19', `http://127.0.0.1:${s.port}/big.bin`, '-o', out, '-w', '%{http_code}']), 20_000, 'curl -r');
    assert.equal(part, '206');
    assert.ok(readFileSync(out).equals(big.subarray(10, 20)));
  } finally {
    await s.close();
  }
});
