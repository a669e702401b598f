/**
 * Child of test/batch.test.ts: `node batch-child.js KIND PORT N` sends N datagrams of 1200 B
 * (numbered) in one tick on the KIND backend to 127.0.0.1:PORT, then again N after the first
 * settled, and prints one JSON line: { sent, errors, codes }.
 */
import { adopt } from '../../src/index.js';
import { boundUdp, closeDgram } from './net.js';

const [kind, portS, nS] = process.argv.slice(2);
const port = Number(portS);
const n = Number(nS);
const tx = await boundUdp();
const zs = adopt(tx, { backend: kind as 'msg_zerocopy' | 'copy', receive: false, zeroCopyThreshold: 0, autoDowngrade: false });
let sent = 0;
let errors = 0;
const codes: string[] = [];
for (let round = 0; round < 2; round++) {
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(1200, i & 0xff);
    b.writeUInt32BE(round * n + i, 0);
    all.push(zs.send(b, { address: '127.0.0.1', port }).then(() => {
      sent++;
    }, (e: { code?: string }) => {
      errors++;
      codes.push(String(e.code));
    }));
  }
  await Promise.all(all);
}
await zs.close();
await closeDgram(tx);
process.stdout.write(`${JSON.stringify({ sent, errors, codes, backend: zs.backend })}\n`);
