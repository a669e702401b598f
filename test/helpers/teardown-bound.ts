/**
 * Child process for test/worker.test.ts, run inside a sink namespace whose device drains slowly
 * (tbf): a worker sends zero-copy datagrams to the sink and is terminated while they wait in the
 * qdisc, so their notifications come only as it drains, after the teardown bound
 * (URING_ZC_TEARDOWN_TIMEOUT_MS, set by the test). Prints one JSON line: what the worker had in
 * flight, how long terminate() took, descriptors left.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

const fds = (): number => readdirSync('/proc/self/fd').length;
const list = (): string[] => readdirSync('/proc/self/fd').map((fd) => {
  try {
    return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
  } catch {
    return `${fd} -> (gone)`;
  }
});
// A first worker opens what Node opens once for workers (e.g. /dev/null): not counted below.
await new Promise((r) => new Worker('', { eval: true }).once('exit', r));
const before = list();
const baseline = fds();
const w = new Worker(new URL('./teardown-udp-sender.js', import.meta.url), {
  workerData: { address: process.argv[2], count: 64, size: 16384 },
});
const stalled = await new Promise((r) => w.once('message', r));
const t0 = performance.now();
await w.terminate();
const terminateMs = Math.round(performance.now() - t0);
let fdsLeft = fds() - baseline;
for (let i = 0; i < 100 && fdsLeft > 0; i++) {
  await new Promise((r) => setTimeout(r, 20));
  fdsLeft = fds() - baseline;
}
const extra = fdsLeft > 0 ? list().filter((l) => !before.includes(l)) : [];
process.stdout.write(JSON.stringify({ stalled, terminateMs, fdsLeft, extra }) + '\n');
