/**
 * zs.sendFile(): file to socket on every backend (io_uring: IORING_OP_SPLICE through the socket's
 * pipe; msg_zerocopy and copy: sendfile(2) on the threadpool), to a TCP receiver that checks every
 * byte. Sizes 0 B, 1 B, 4095 B, a few MiB and 1 GiB, offsets and lengths, path and descriptor,
 * order with send(), a file truncated mid-send, destroy mid-file, bad input, and AbortSignal
 * before and after the start, ring.close() and a worker terminated mid-file. Descriptors (the
 * file, the pipe) are back to the baseline after each.
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { adopt, capabilities, UringZcAbortError, type ZeroCopySocket } from '../src/index.js';
import { Prng } from './helpers/data.js';
import { codeOf, throwsCode, turns, within, zeroCopyUnavailableReason, loadTestSkip } from './helpers/env.js';
import { StreamVerifier, boundUdp, closeDgram, connectTcp, countFds, destroySocket, listFds, tcpReceiver, type TcpReceiver } from './helpers/net.js';
import { fillPattern, PatternVerifier } from './helpers/stream-pattern.js';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Ring } from '../src/index.js';

const BACKENDS = ['io_uring', 'msg_zerocopy', 'copy'] as const;
type Kind = (typeof BACKENDS)[number];

function skipReason(kind: Kind): string | false {
  if (kind === 'io_uring') {
    const z = zeroCopyUnavailableReason();
    if (z !== null) return z;
    return false;
  }
  if (kind === 'msg_zerocopy' && !capabilities().backends.msg_zerocopy.ok) {
    return `MSG_ZEROCOPY is not available here: ${capabilities().backends.msg_zerocopy.reason}`;
  }
  return false;
}

let dir = '';
/** Files of these sizes, random bytes, kept in memory to check against. */
const SIZES = [0, 1, 4095, (3 << 20) + 7] as const;
const files = new Map<number, { path: string; data: Buffer }>();

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-sendfile-'));
  const prng = new Prng(0xf11e);
  for (const size of SIZES) {
    const data = Buffer.from(prng.bytes(size));
    const p = path.join(dir, `f${size}.bin`);
    writeFileSync(p, data);
    files.set(size, { path: p, data });
  }
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A file of random bytes of its own (for tests that change it). */
function ownFile(name: string, size: number, seed: number): { path: string; data: Buffer } {
  const data = Buffer.from(new Prng(seed).bytes(size));
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return { path: p, data };
}

interface Pair {
  rx: TcpReceiver;
  client: net.Socket;
  zs: ZeroCopySocket;
  verifier: StreamVerifier;
  /** Every chunk received, for streams whose expected content is known only at the end. */
  chunks: Buffer[];
}

/** Makes this thread's backend of `kind` (its epoll set or ring is a descriptor kept for the thread). */
async function warm(kind: Kind): Promise<void> {
  const rx = await tcpReceiver();
  const c = await connectTcp(rx.port);
  const zs = adopt(c, { backend: kind });
  await zs.close();
  await destroySocket(c);
  await rx.close();
}

async function pair(kind: Kind, paused = false, collect = false): Promise<Pair> {
  const verifier = new StreamVerifier();
  const chunks: Buffer[] = [];
  const rx = await tcpReceiver({ paused, onData: (c) => {
    verifier.push(c);
    if (collect) chunks.push(c);
  } });
  const client = await connectTcp(rx.port);
  const zs = adopt(client, { backend: kind });
  assert.equal(zs.backend, kind);
  return { rx, client, zs, verifier, chunks };
}

async function done(p: Pair): Promise<void> {
  await p.zs.close();
  await destroySocket(p.client);
  await p.rx.close();
}

async function assertFds(fds: number, what: string): Promise<void> {
  // Up to 2 s: Node 24 opens and closes descriptors of its own from background threads (libuv's
  // rings, eventfds), which a single look can catch mid-way; a leak of ours stays.
  for (let i = 0; i < 40 && countFds() !== fds; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(countFds(), fds, `${what}: descriptors back to the baseline\n${listFds().join('\n')}`);
}

/** The bytes received equal `parts`, concatenated. */
function assertReceived(p: Pair, parts: Uint8Array[], what: string): void {
  const got = Buffer.concat(p.chunks);
  const want = Buffer.concat(parts);
  assert.equal(got.length, want.length, `${what}: length`);
  const at = got.findIndex((v, i) => v !== want[i]);
  assert.equal(at, -1, `${what}: first wrong byte`);
}

/** Polls `cond` every few ms, up to `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not reached after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves once `value()` has not changed for `quietMs`; throws after `ms`. */
async function quiet(value: () => number, quietMs: number, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  let last = value();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > end) throw new Error(`${what}: still moving after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** The most a loopback TCP connection buffers: the receiver's tcp_rmem maximum and the sender's tcp_wmem maximum. */
function tcpBufferMax(): number {
  const max = (name: string): number => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
  return max('tcp_rmem') + max('tcp_wmem');
}

for (const kind of BACKENDS) {
  const skip = skipReason(kind);

  test(`${kind}: files of 0 B, 1 B, 4095 B and 3 MiB, whole and in ranges, by path and by fd, arrive intact and in order`, { timeout: 60_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const p = await pair(kind);
    const big = files.get((3 << 20) + 7)!;
    const callerFd = openSync(big.path, 'r');
    try {
      const sends: Promise<{ bytes: number; zeroCopy: boolean }>[] = [];
      const expect: number[] = [];
      for (const size of SIZES) {
        const f = files.get(size)!;
        p.verifier.expect(f.data);
        expect.push(size);
        sends.push(p.zs.sendFile(f.path));
      }
      // Ranges: offsets inside pages and across them, lengths to the end and short of it.
      const ranges: [number, number | undefined][] = [[0, 1], [1, 4094], [4095, 4097], [123457, undefined], [big.data.length - 1, 1], [big.data.length, 0], [big.data.length, undefined], [65536, 1 << 20]];
      for (const [offset, length] of ranges) {
        const slice = big.data.subarray(offset, length === undefined ? undefined : offset + length);
        p.verifier.expect(slice);
        expect.push(slice.length);
        sends.push(p.zs.sendFile(callerFd, length === undefined ? { offset } : { offset, length }));
      }
      const results = await within(Promise.all(sends), 40_000, 'the sendFiles');
      assert.deepEqual(results.map((r) => r.bytes), expect);
      assert.ok(results.every((r) => r.zeroCopy === true));
      const total = expect.reduce((a, b) => a + b, 0);
      await p.rx.waitForBytes(total, 20_000);
      assert.ok(p.verifier.complete, `intact (mismatch at ${p.verifier.mismatchAt}, extra ${p.verifier.extra})`);
      assert.equal(p.zs.bytesWritten, total);
      const st = p.zs.stats();
      assert.equal(st.sends, sends.length);
      assert.equal(st.bytes, total);
      assert.equal(st.errors, 0);
      assert.equal(st.inFlight, 0);
      // The caller's descriptor is open, its file position untouched (offsets are explicit).
      const b = Buffer.alloc(4);
      assert.equal(readSync(callerFd, b, 0, 4, null), 4);
      assert.ok(b.equals(big.data.subarray(0, 4)), 'the caller\'s fd still reads from position 0');
    } finally {
      closeSync(callerFd);
      await done(p);
    }
    await assertFds(fds, 'sizes');
  });

  test(`${kind}: sendFile interleaved with send() keeps the order of the calls; callbacks run once`, { timeout: 60_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const p = await pair(kind);
    const prng = new Prng(77);
    const big = files.get((3 << 20) + 7)!;
    try {
      const calls: number[] = [];
      const all: Promise<void>[] = [];
      let total = 0;
      for (let i = 0; i < 24; i++) {
        const cb = (resolve: () => void, reject: (e: unknown) => void) => (err: Error | null, bytes: number) => {
          calls[i] = (calls[i] ?? 0) + 1;
          if (err) reject(err);
          else resolve();
          void bytes;
        };
        if (i % 3 === 1) {
          const off = prng.int(0, big.data.length - 1);
          const len = Math.min(prng.logSize(1, 1 << 20), big.data.length - off);
          p.verifier.expect(big.data.subarray(off, off + len));
          total += len;
          all.push(new Promise<void>((res, rej) => p.zs.sendFile(big.path, { offset: off, length: len }, cb(res, rej))));
        } else {
          const b = prng.bytes(prng.logSize(1, 256 << 10));
          p.verifier.expect(b);
          total += b.length;
          all.push(new Promise<void>((res, rej) => p.zs.send(b, undefined, cb(res, rej))));
        }
      }
      await within(Promise.all(all), 40_000, 'the sends');
      await p.rx.waitForBytes(total, 20_000);
      assert.ok(p.verifier.complete, `intact and in order (mismatch at ${p.verifier.mismatchAt})`);
      await turns(3);
      assert.deepEqual(calls, new Array(24).fill(1), 'every callback exactly once');
      assert.equal(p.zs.bytesWritten, total);
    } finally {
      await done(p);
    }
    await assertFds(fds, 'interleaved');
  });

  test(`${kind}: a file truncated mid-send rejects ERR_URING_ZC_FILE_TRUNCATED with the bytes that went, those before the cut arrive intact, and the stream is cut there (later sends ECANCELED)`, { timeout: 60_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const f = ownFile(`trunc-${kind}.bin`, 64 << 20, 0x7a);
    const p = await pair(kind, true, true);
    try {
      const head = Buffer.from('head');
      void p.zs.send(head);
      const sf = p.zs.sendFile(f.path).then((r) => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }));
      const tail = Buffer.from('tail after the file');
      const tailSent = p.zs.send(tail).then(() => null, (e: unknown) => e);
      // The peer does not read: the send stalls with part of the file in the kernel. Cut the file
      // at a page boundary below what went (no partial page is zeroed), then let the peer read.
      await until(() => p.zs.bytesWritten > 4 + (1 << 20), 10_000, 'some of the file in the kernel');
      const fd = openSync(f.path, 'r+');
      ftruncateSync(fd, 1 << 20);
      closeSync(fd);
      p.rx.resume();
      const out = await within(sf, 30_000, 'the truncated sendFile');
      assert.equal(out.ok, false, 'a truncated file does not resolve as if whole');
      const e = (out as { e: Error & { bytes?: number } }).e;
      assert.equal(codeOf(e), 'ERR_URING_ZC_FILE_TRUNCATED', String(e));
      assert.ok(typeof e.bytes === 'number' && e.bytes > (1 << 20) && e.bytes < f.data.length, `bytes: ${e.bytes}`);
      assert.match(e.message, /cut/);
      assert.equal(codeOf(await within(tailSent, 10_000, 'the send after it')), 'ECANCELED', 'the send behind a cut file');
      await assert.rejects(p.zs.send(Buffer.from('later')), (x: unknown) => codeOf(x) === 'ECANCELED');
      const total = 4 + e.bytes!;
      await p.rx.waitForBytes(total, 20_000);
      await turns(3);
      await turns(10);
      // Up to the cut: the file as it was. Beyond it, what was in the kernel already went, its
      // pages as the truncation left them (a large folio straddling the new end is zeroed in
      // place when it cannot be split): the old bytes or zeros; and nothing after them.
      const got = Buffer.concat(p.chunks);
      assert.equal(got.length, total, 'head + the bytes that went, nothing more');
      const cut = 4 + (1 << 20);
      assertReceived({ ...p, chunks: [got.subarray(0, cut)] }, [head, f.data.subarray(0, 1 << 20)], 'before the cut');
      for (let i = cut; i < 4 + e.bytes!; i++) {
        if (got[i] !== 0 && got[i] !== f.data[i - 4]) assert.fail(`byte ${i - 4} of the file is neither the old one nor 0`);
      }

      assert.equal(p.zs.bytesWritten, total);
    } finally {
      await done(p);
    }
    await assertFds(fds, 'truncated');
  });

  test(`${kind}: destroy() mid-file settles the sendFile once (ECANCELED, with bytes) and the sends behind it (SOCKET_CLOSED); descriptors back to baseline`, { timeout: 60_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const big = files.get((3 << 20) + 7)!;
    const f = ownFile(`destroy-${kind}.bin`, 32 << 20, 0xde);
    const p = await pair(kind, true);
    const calls = [0, 0, 0];
    const errs: (Error | null)[] = [null, null, null];
    const bytes = [0, 0, 0];
    const cb = (i: number) => (err: Error | null, n: number) => {
      calls[i]!++;
      errs[i] = err;
      bytes[i] = n;
    };
    try {
      p.zs.sendFile(f.path, undefined, cb(0));
      p.zs.sendFile(big.path, undefined, cb(1));
      p.zs.send(Buffer.alloc(1000, 1), undefined, cb(2));
      await until(() => p.zs.bytesWritten > 0, 10_000, 'the file started');
      await new Promise((r) => setTimeout(r, 50)); // stalled on the peer's full buffer
      await within(p.zs.destroy(), 10_000, 'destroy()');
      await turns(3);
      assert.deepEqual(calls, [1, 1, 1], 'every callback exactly once');
      assert.equal(codeOf(errs[0]), 'ECANCELED', String(errs[0]));
      const cut = (errs[0] as Error & { bytes?: number }).bytes;
      assert.ok(typeof cut === 'number' && cut > 0 && cut < f.data.length, `bytes went: ${cut}`);
      assert.equal(codeOf(errs[1]), 'ERR_URING_ZC_SOCKET_CLOSED');
      assert.equal(codeOf(errs[2]), 'ERR_URING_ZC_SOCKET_CLOSED');
      assert.equal(p.zs.stats().inFlight, 0);
      assert.equal(p.zs.closed, true);
      // What the peer gets is a prefix of the file, nothing more.
      p.verifier.expect(f.data.subarray(0, cut));
      p.rx.resume();
      await turns(10);
      assert.ok(p.verifier.mismatchAt < 0 && p.verifier.extra === 0, `a prefix of the file (mismatch at ${p.verifier.mismatchAt})`);
      // Sends after destroy are refused.
      await assert.rejects(p.zs.sendFile(big.path), (e: unknown) => codeOf(e) === 'ERR_URING_ZC_SOCKET_CLOSED');
    } finally {
      await destroySocket(p.client);
      await p.rx.close();
    }
    await assertFds(fds, 'destroy');
  });

  test(`${kind}: an AbortSignal aborted before the start rejects ABORT_ERR with its reason and leaves the stream intact; one aborted mid-file cuts it at a known byte (later sends ECANCELED)`, { timeout: 60_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const big = files.get((3 << 20) + 7)!;
    // Larger than all the peer's receive buffer and our send buffer can hold once it stops
    // reading (autotuning grows them to tcp_rmem's and tcp_wmem's maximum): the file stalls.
    const f = ownFile(`abort-${kind}.bin`, Math.max(32 << 20, tcpBufferMax() + (8 << 20)), 0xab);
    const p = await pair(kind, true, true);
    try {
      // Aborted already: rejects at once, nothing queued.
      const reason = new Error('no thanks');
      await assert.rejects(p.zs.sendFile(big.path, { signal: AbortSignal.abort(reason) }), (e: unknown) => {
        assert.equal(codeOf(e), 'ABORT_ERR');
        assert.equal((e as Error).name, 'AbortError');
        assert.equal((e as Error).cause, reason);
        return true;
      });
      assert.equal(p.zs.stats().inFlight, 0);
      // Nothing is opened then: a missing file aborts the same way (no ENOENT).
      await assert.rejects(p.zs.sendFile(path.join(dir, 'nope'), { signal: AbortSignal.abort(reason) }), (e: unknown) => codeOf(e) === 'ABORT_ERR');
      // Aborted while it waits behind a send the peer does not read: it leaves the queue at once.
      const a = Buffer.from(new Prng(5).bytes(8 << 20));
      const sa = p.zs.send(a);
      const ac = new AbortController();
      const queued = p.zs.sendFile(big.path, { signal: ac.signal });
      const b = Buffer.from('after the aborted one');
      const sb = p.zs.send(b);
      await turns(3);
      const why = new Error('changed my mind');
      ac.abort(why);
      await assert.rejects(within(queued, 2_000, 'the queued sendFile'), (e: unknown) => codeOf(e) === 'ABORT_ERR' && (e as Error).cause === why);
      // Mid-file: the first part of the file goes, then the abort; the stream goes on after the bytes that went.
      const mid = new AbortController();
      const started = p.zs.sendFile(f.path, { signal: mid.signal }).then((r) => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }));
      const c = Buffer.from('after the cut');
      const sc = p.zs.send(c).then(() => null, (x: unknown) => x);
      // The peer stops reading in its data handler once it has the sends and 2 MiB of the file:
      // what more of the file goes is what the buffers hold (a stop from the test's own timer
      // raced the file's end: sendfile moves up to 16 MiB per call while the peer reads).
      const stopAt = a.length + b.length + (2 << 20);
      p.rx.resume();
      const peer = await p.rx.peer;
      let stopped = false;
      peer.on('data', () => {
        if (stopped || p.rx.bytes() < stopAt) return;
        stopped = true;
        peer.pause();
      });
      await within(Promise.all([sa, sb]), 20_000, 'the sends before the file');
      await p.rx.waitForBytes(stopAt, 20_000);
      // Stalled: no byte of the file taken for 200 ms (a sendfile call in progress reports its
      // bytes only when it returns, so one look between two polls is not enough).
      await quiet(() => p.zs.bytesWritten, 200, 20_000, 'the file stalled');
      mid.abort('stop');
      setTimeout(() => peer.resume(), 20);
      const out = await within(started, 20_000, 'the aborted sendFile');
      assert.equal(out.ok, false, `a ${f.data.length >> 20} MiB file aborted after 2 MiB does not resolve`);
      const e = (out as { e: Error & { bytes?: number } }).e;
      assert.equal(codeOf(e), 'ABORT_ERR', String(e));
      assert.equal(e.cause, 'stop');
      assert.ok(e instanceof UringZcAbortError);
      const went = e.bytes!;
      assert.ok(went >= (2 << 20) && went < f.data.length, `bytes: ${went}`);
      assert.equal(codeOf(await within(sc, 10_000, 'the send after the cut')), 'ECANCELED', 'the send behind the cut');
      await assert.rejects(p.zs.sendFile(big.path), (x: unknown) => codeOf(x) === 'ECANCELED');
      const total = a.length + b.length + went;
      await p.rx.waitForBytes(total, 20_000);
      await turns(10);
      assertReceived(p, [a, b, f.data.subarray(0, went)], `a, b, the file's first ${went} bytes, nothing more`);
    } finally {
      await done(p);
    }
    await assertFds(fds, 'abort');
  });

  test(`${kind}: an abort while the file's last request is in the kernel and takes the rest resolves the sendFile whole and cuts nothing`, { timeout: 30_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const f = files.get(4095)!;
    const p = await pair(kind, false, true);
    try {
      // The stream is idle: the sendFile starts at once (its request is queued), and the abort
      // comes before that request's result. On msg_zerocopy and copy that request is a sendfile
      // job on the threadpool, which cannot be called back: it moves the whole 4095 B (the
      // socket has room), so the kernel has the file. Before the fix that ended as ABORT_ERR
      // with bytes 4095 and cut the stream: the send behind it was refused with ECANCELED.
      // io_uring cancels its fill of the pipe, or the fill ends first and no drain follows:
      // then nothing of the file went, ABORT_ERR with bytes 0, and the stream goes on.
      const ac = new AbortController();
      const sent = p.zs.sendFile(f.path, { signal: ac.signal }).then((r) => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }));
      ac.abort('late');
      const after = Buffer.from('the send after the late abort');
      const sa = p.zs.send(after);
      const out = await within(sent, 10_000, 'the sendFile');
      let fileBytes: number;
      if (out.ok) {
        assert.equal(out.r.bytes, f.data.length);
        fileBytes = f.data.length;
      } else {
        const e = out.e as Error & { bytes?: number };
        assert.equal(codeOf(e), 'ABORT_ERR', String(e));
        assert.equal(e.bytes, 0, `an aborted sendFile that cut nothing (${String(e)})`);
        fileBytes = 0;
      }
      if (kind !== 'io_uring') assert.equal(out.ok, true, 'a sendfile job that took the whole file resolves');
      assert.equal((await within(sa, 10_000, 'the send after')).bytes, after.length);
      await p.rx.waitForBytes(fileBytes + after.length, 10_000);
      await turns(10);
      assertReceived(p, [f.data.subarray(0, fileBytes), after], 'the file (when it resolved), then the send after it');
    } finally {
      await done(p);
    }
    await assertFds(fds, 'late abort');
  });

  test(`${kind}: bad input throws ERR_URING_ZC_INVALID_ARG (or the errno of open) synchronously and queues nothing`, { timeout: 30_000, skip }, async () => {
    await warm(kind);
    const fds = countFds();
    const p = await pair(kind);
    const f = files.get(4095)!;
    try {
      const bad: [string, () => unknown, string][] = [
        ['negative offset', () => p.zs.sendFile(f.path, { offset: -1 }), 'ERR_URING_ZC_INVALID_ARG'],
        ['fractional length', () => p.zs.sendFile(f.path, { length: 1.5 }), 'ERR_URING_ZC_INVALID_ARG'],
        ['string offset', () => p.zs.sendFile(f.path, { offset: '1' as unknown as number }), 'ERR_URING_ZC_INVALID_ARG'],
        ['unsafe length', () => p.zs.sendFile(f.path, { length: 2 ** 53 }), 'ERR_URING_ZC_INVALID_ARG'],
        ['unknown option', () => p.zs.sendFile(f.path, { start: 0 } as never), 'ERR_URING_ZC_INVALID_ARG'],
        ['options not an object', () => p.zs.sendFile(f.path, 5 as never), 'ERR_URING_ZC_INVALID_ARG'],
        ['signal not an AbortSignal', () => p.zs.sendFile(f.path, { signal: {} as AbortSignal }), 'ERR_URING_ZC_INVALID_ARG'],
        ['file an object', () => p.zs.sendFile({} as never), 'ERR_URING_ZC_INVALID_ARG'],
        ['empty path', () => p.zs.sendFile(''), 'ERR_URING_ZC_INVALID_ARG'],
        ['negative fd', () => p.zs.sendFile(-1), 'ERR_URING_ZC_INVALID_ARG'],
        ['missing file', () => p.zs.sendFile(path.join(dir, 'nope')), 'ENOENT'],
        ['a directory', () => p.zs.sendFile(dir), 'ERR_URING_ZC_INVALID_ARG'],
        ['a socket fd', () => p.zs.sendFile(p.zs.fd), 'ERR_URING_ZC_INVALID_ARG'],
        ['a closed fd', () => p.zs.sendFile(987654), 'EBADF'],
        ['callback not a function', () => p.zs.sendFile(f.path, undefined, 5 as never), 'ERR_URING_ZC_INVALID_ARG'],
      ];
      for (const [what, fn, code] of bad) throwsCode(fn, code, what);
      assert.equal(p.zs.stats().inFlight, 0);
      // UDP: no file sends.
      const u = await boundUdp('udp4');
      // receive: false: a dgram socket Node reads gets the copy backend on Node >= 24 (libuv drains
      // its error queue), whose first use would open that backend's epoll set mid-test.
      const zu = adopt(u, { backend: kind, receive: false });
      throwsCode(() => zu.sendFile(f.path), 'ERR_URING_ZC_INVALID_ARG', 'a UDP socket');
      await zu.close();
      await closeDgram(u);
      // A length past the end with nothing to send: FILE_TRUNCATED with bytes 0, the stream goes on.
      await assert.rejects(p.zs.sendFile(f.path, { offset: f.data.length, length: 1 }), (e: unknown) => {
        assert.equal(codeOf(e), 'ERR_URING_ZC_FILE_TRUNCATED');
        assert.equal((e as { bytes?: number }).bytes, 0);
        return true;
      });
      // The socket is untouched: a file still goes.
      p.verifier.expect(f.data);
      await within(p.zs.sendFile(f.path), 10_000, 'a good sendFile after the bad ones');
      await p.rx.waitForBytes(f.data.length, 10_000);
      assert.ok(p.verifier.complete);
    } finally {
      await done(p);
    }
    await assertFds(fds, 'bad input');
  });
}

/** The 1 GiB case: on io_uring and copy (msg_zerocopy's sendfile path is copy's: one test of it is enough). */
for (const kind of ['io_uring', 'copy'] as const) {
  test(`${kind}: a 1 GiB file arrives intact, every byte checked`, { timeout: 180_000, skip: loadTestSkip() || skipReason(kind) }, async () => {
    await warm(kind);
    const fds = countFds();
    const GIB = 1 << 30;
    const p1 = path.join(os.tmpdir(), `uzc-sendfile-1g-${process.pid}.bin`);
    try {
      const fd = openSync(p1, 'w');
      const chunk = Buffer.allocUnsafe(4 << 20);
      for (let off = 0; off < GIB; off += chunk.length) {
        fillPattern(chunk, off);
        writeSync(fd, chunk, 0, chunk.length, off);
      }
      closeSync(fd);
      const pv = new PatternVerifier();
      const rx = await tcpReceiver({ onData: (c) => pv.push(c) });
      const client = await connectTcp(rx.port);
      const zs = adopt(client, { backend: kind });
      try {
        const r = await within(zs.sendFile(p1), 150_000, 'the 1 GiB sendFile');
        assert.equal(r.bytes, GIB);
        await rx.waitForBytes(GIB, 30_000);
        await turns(3);
        assert.equal(pv.mismatchAt, -1, pv.describe());
        assert.equal(pv.received, GIB);
        assert.equal(zs.bytesWritten, GIB);
      } finally {
        await zs.close();
        await destroySocket(client);
        await rx.close();
      }
    } finally {
      rmSync(p1, { force: true });
    }
    await assertFds(fds, '1 GiB');
  });
}

test('io_uring: ring.close() mid-file settles the sendFile once with ECANCELED; its pipe and the file are closed', { timeout: 60_000, skip: skipReason('io_uring') }, async () => {
  const fds = countFds();
  const f = ownFile('ringclose.bin', 32 << 20, 0xc1);
  const rx = await tcpReceiver({ paused: true });
  const client = await connectTcp(rx.port);
  const ring = new Ring();
  const zs = ring.adopt(client);
  let calls = 0;
  let err: (Error & { bytes?: number }) | null = null;
  zs.sendFile(f.path, undefined, (e) => {
    calls++;
    err = e;
  });
  await until(() => zs.bytesWritten > 0, 10_000, 'the file started');
  await new Promise((r) => setTimeout(r, 50));
  await within(ring.close(), 10_000, 'ring.close()');
  await turns(3);
  assert.equal(calls, 1);
  assert.equal(codeOf(err), 'ECANCELED', String(err));
  assert.ok((err as unknown as { bytes: number }).bytes > 0);
  await destroySocket(client);
  await rx.close();
  await assertFds(fds, 'ring.close()');
});

for (const kind of ['io_uring', 'copy'] as const) test(`${kind}: a worker terminated mid-sendFile leaves no descriptor behind (socket, pipe, file) and does not crash`, { timeout: 60_000, skip: skipReason(kind) }, async () => {
  const f = ownFile(`worker-${kind}.bin`, 64 << 20, 0x3e);
  const fds = countFds();
  const rx = await tcpReceiver({ paused: true });
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    import(workerData.index).then(({ adopt }) => {
      const c = net.connect(workerData.port, '127.0.0.1', () => {
        const zs = adopt(c, { backend: workerData.kind });
        zs.sendFile(workerData.file).catch(() => {});
        const t = setInterval(() => {
          if (zs.bytesWritten > 0) { clearInterval(t); parentPort.postMessage('started'); }
        }, 5);
      });
    });`;
  const w = new Worker(code, { eval: true, workerData: { index, port: rx.port, file: f.path, kind } });
  try {
    await within(new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    }), 20_000, 'the worker started its sendFile');
    assert.ok(countFds() > fds + 2, 'the worker holds descriptors while sending');
    await new Promise((r) => setTimeout(r, 50));
    await w.terminate();
  } finally {
    await w.terminate();
  }
  // Left: the receiver's listening socket and its side of the connection.
  await until(() => countFds() <= fds + 2, 10_000, `descriptors released\n${listFds().join('\n')}`);
  await rx.close();
  await assertFds(fds, 'worker terminated');
});
