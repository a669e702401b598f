/**
 * What the library refuses, with a code, before anything can go wrong: a TLS socket (writing to
 * the TCP descriptor beneath TLS puts plaintext on the connection; an HTTPS server's res.socket
 * is one), and IORING_SETUP_DEFER_TASKRUN (its completions are invisible to the event loop).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { DEFAULT_SETUP_FLAGS, Ring, adopt } from '../src/index.js';
import { IORING_SETUP_DEFER_TASKRUN } from '../src/uapi.js';
import { throwsCode, within, zeroCopyUnavailableReason } from './helpers/env.js';
import { connectTcp, destroySocket, tcpReceiver } from './helpers/net.js';

const skipReason = zeroCopyUnavailableReason();
const opts = (timeout: number) => ({ timeout, skip: skipReason ?? false });

test('adopt() of a tls.TLSSocket throws ERR_URING_ZC_INVALID_ARG', opts(20_000), async () => {
  const rx = await tcpReceiver();
  const c = await connectTcp(rx.port);
  const t = tls.connect({ socket: c, rejectUnauthorized: false });
  t.on('error', () => {});
  try {
    throwsCode(() => adopt(t), 'ERR_URING_ZC_INVALID_ARG', 'adopt(tlsSocket)');
  } finally {
    t.destroy();
    await destroySocket(c);
    await rx.close();
  }
});

const openssl = spawnSync('openssl', ['version']).status === 0 ? null : 'openssl is not installed (a certificate for the HTTPS server)';

test('an HTTPS server cannot adopt res.socket: ERR_URING_ZC_INVALID_ARG, and the response goes out encrypted', { timeout: 30_000, skip: skipReason ?? openssl ?? false }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    let code: string | undefined;
    const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
      try {
        adopt(res.socket!);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      res.end('encrypted');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const body = await within(new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, rejectUnauthorized: false }, (res) => {
        let s = '';
        res.on('data', (d: Buffer) => (s += d.toString()));
        res.on('end', () => resolve(s));
      }).on('error', reject);
    }), 10_000, 'the HTTPS response');
    assert.equal(code, 'ERR_URING_ZC_INVALID_ARG');
    assert.equal(body, 'encrypted', 'the client read the response through TLS');
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('new Ring() with IORING_SETUP_DEFER_TASKRUN throws ERR_URING_ZC_INVALID_ARG (its completions would never reach the event loop)', opts(10_000), async () => {
  throwsCode(() => new Ring({ setupFlags: DEFAULT_SETUP_FLAGS | IORING_SETUP_DEFER_TASKRUN }), 'ERR_URING_ZC_INVALID_ARG', 'DEFER_TASKRUN');
  // Without it the same ring works.
  const r = new Ring({ setupFlags: DEFAULT_SETUP_FLAGS });
  await r.close();
});
