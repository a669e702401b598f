/**
 * Runs inside the IFB sink namespace (test/threads.test.ts): one dgram socket, bound here, sent on
 * by `workers` worker threads at once, each adopting the socket's descriptor on a ring of its own
 * and sending `count` datagrams of `size` bytes to `destination:9`. Prints one JSON line: each
 * worker's outcome and the namespace's UDP OutDatagrams before and after (the kernel's count).
 *
 * argv: destination workers count size [backend]
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { adopt } from '../../src/index.js';
import { dgramFd } from '../../src/dgram-handle.js';

interface Job {
  fd: number;
  backend: 'io_uring' | 'msg_zerocopy' | 'copy';
  destination: string;
  count: number;
  size: number;
}

export interface WorkerOutcome {
  sent: number;
  bytes: number;
  zeroCopied: number;
  errors: string[];
  ringBackend: string;
}

/**
 * Datagrams this network namespace's UDP sent: OutDatagrams plus SndbufErrors (/proc/net/snmp).
 * A datagram the device queue drops (the sink's qdisc holds 32; four threads can fill it) is
 * counted as SndbufErrors and its send still succeeds (udp_send_skb, no IP_RECVERR).
 */
function outDatagrams(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf('OutDatagrams')]) + Number(values[names.indexOf('SndbufErrors')]);
}

async function work(job: Job): Promise<WorkerOutcome> {
  const zs = adopt(job.fd, { zeroCopyThreshold: 0, backend: job.backend });
  // Adopting probed io_uring here (a 1-byte send of its own): the count starts after that.
  parentPort!.postMessage('ready');
  await once(parentPort!, 'message');
  const buf = Buffer.alloc(job.size, 0x5a);
  const out: WorkerOutcome = { sent: 0, bytes: 0, zeroCopied: 0, errors: [], ringBackend: zs.backend };
  const opts = { address: job.destination, port: 9 };
  // 64 in flight, bounded in count (and so in time).
  let next = 0;
  await new Promise<void>((resolve) => {
    let live = 0;
    const pump = (): void => {
      while (live < 64 && next < job.count) {
        next++;
        live++;
        zs.send(buf, opts, (err, bytes, zeroCopy) => {
          live--;
          if (err) out.errors.push(String((err as { code?: string }).code));
          else {
            out.sent++;
            out.bytes += bytes;
            if (zeroCopy) out.zeroCopied++;
          }
          if (next < job.count) pump();
          else if (live === 0) resolve();
        });
      }
    };
    pump();
  });
  await zs.close();
  return out;
}

if (!isMainThread) {
  void work(workerData as Job).then((o) => parentPort!.postMessage(o));
} else {
  const [destination, workersText, countText, sizeText, backendText] = process.argv.slice(2);
  const backend = (backendText ?? 'io_uring') as Job['backend'];
  const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 8 << 20 });
  sock.bind(0, '0.0.0.0');
  await once(sock, 'listening');
  const fd = dgramFd(sock)!;
  // Node reads this socket; libuv >= 1.52 (Node 24) then also drains its error queue, where the
  // workers' MSG_ZEROCOPY completions come. Adopted here with receive: false, Node stops reading
  // it while the workers send (a copy-backend adoption: it claims no error queue).
  const holder = adopt(sock, { receive: false, backend: 'copy' });
  const jobs = Array.from({ length: Number(workersText) }, () => new Worker(fileURLToPath(import.meta.url), {
    workerData: { fd, backend, destination: destination!, count: Number(countText), size: Number(sizeText) } satisfies Job,
  }));
  // Listened for from the start: a worker may be gone before its last message is handled here.
  const exited = jobs.map((w) => once(w, 'exit'));
  await Promise.all(jobs.map((w) => once(w, 'message')));
  const before = outDatagrams();
  const done = jobs.map((w) => once(w, 'message').then(([m]) => m as WorkerOutcome));
  for (const w of jobs) w.postMessage('go');
  const outcomes = await Promise.all(done);
  await Promise.all(exited);
  const after = outDatagrams();
  await holder.close();
  sock.close();
  process.stdout.write(`${JSON.stringify({ outcomes, before, after })}\n`);
}
