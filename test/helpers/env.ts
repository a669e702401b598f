/** Capability gates and small async utilities shared by the test files. */
import assert from 'node:assert/strict';
import { after, before, type TestContext } from 'node:test';
import { memlockShortfallReason, poolMemlockBytes, ringMemlockBytes, zeroCopySendMemlockBytes } from '../../bench/memlock.js';
import { createSink, leftoverNamespaces, netnsUnavailableReason, type SinkNamespace } from '../../bench/netns.js';
import { capabilities, Ring, UringZcError } from '../../src/index.js';
import { defaultRing } from '../../src/ring.js';

/**
 * Why zero-copy sends cannot be tested here (io_uring blocked, kernel too old), or null.
 * Tests skip with this reason; they never skip because a send failed.
 */
/**
 * Why a load test (minutes of sending, nothing version-specific) does not run here, or false:
 * .ci/run's matrix (scripts/ci-matrix.sh) runs the suite again on Node 22, 24 and 26 with
 * URING_ZC_CI_MATRIX=1, after the same load tests ran on the main Node in that CI run.
 */
export function loadTestSkip(): string | false {
  return process.env['URING_ZC_CI_MATRIX'] === '1' ? 'load test: run once per CI, on the main Node (npm test), not again in the Node matrix' : false;
}

export function zeroCopyUnavailableReason(): string | null {
  const caps = capabilities();
  if (!caps.ioUring || !caps.sendZc) return caps.reason ?? 'io_uring SEND_ZC is not available';
  if (!caps.reportUsage) return 'IORING_SEND_ZC_REPORT_USAGE is not available (Linux 6.2+): zeroCopy cannot be reported';
  return null;
}

/** Why registered-buffer pools cannot be tested here (zero copy unavailable, or registration refused), or null. */
export function poolUnavailableReason(): string | null {
  const z = zeroCopyUnavailableReason();
  if (z !== null) return z;
  if (!capabilities().fixedBuffers) return 'registered buffers are not available here (IORING_REGISTER_BUFFERS failed, RLIMIT_MEMLOCK?)';
  return null;
}

/**
 * The most locked memory a test holds at once, by what the kernel counts (bench/memlock.ts):
 * - rings: the SQ entries of each ring open at the same time (the file's ring included; 256 is
 *   the default);
 * - zeroCopy: the sizes of the zero-copy sends of ordinary memory in flight at once (copying
 *   sends count nothing; each size may be given as [count, bytes] for `count` equal sends);
 * - pools: registered pool bytes (bufferSize x count, summed) at once.
 * Children of the test count too: the kernel sums every process of the user. A ring closed a
 * moment ago may still count: the kernel frees it (and its count) from a work queue shortly after
 * close() or the process's exit.
 */
export interface LockedNeed {
  rings?: readonly number[];
  zeroCopy?: ReadonlyArray<number | readonly [number, number]>;
  pools?: readonly number[];
}

/** The bytes of RLIMIT_MEMLOCK `need` takes. */
export function lockedBytes(need: LockedNeed): number {
  let n = 0;
  for (const e of need.rings ?? []) n += ringMemlockBytes(e);
  for (const z of need.zeroCopy ?? []) n += typeof z === 'number' ? zeroCopySendMemlockBytes(z) : z[0] * zeroCopySendMemlockBytes(z[1]);
  for (const p of need.pools ?? []) n += poolMemlockBytes(p, 1);
  return n;
}

/**
 * Why a test that locks `need` cannot run here, or null: computed from RLIMIT_MEMLOCK and
 * CAP_IPC_LOCK (root is not limited), never learnt from a failed send.
 */
export function memlockUnavailableReason(need: LockedNeed): string | null {
  return memlockShortfallReason(lockedBytes(need), 'the test');
}

/**
 * Node test options for a test that needs zero copy (`skipReason`) and `need` locked memory.
 */
export function gated(timeout: number, skipReason: string | null, need: LockedNeed): { timeout: number; skip: string | false } {
  return { timeout, skip: skipReason ?? memlockUnavailableReason(need) ?? false };
}

/** Lets the event loop run `n` times (I/O callbacks included). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/** `p`, or a rejection after `ms` naming `what`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a promise settled, without throwing. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export function outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The `code` of an error-like value (undefined when there is none). */
export function codeOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** Why vectored zero-copy sends cannot be tested here, or null. */
export function sendmsgZcUnavailableReason(): string | null {
  const z = zeroCopyUnavailableReason();
  if (z !== null) return z;
  if (!capabilities().sendmsgZc) return 'IORING_OP_SENDMSG_ZC is not available (Linux 6.1+)';
  return null;
}

/** Asserts that `fn` throws synchronously a UringZcError with `code` (a returned promise is not enough). */
export function throwsCode(fn: () => unknown, code: string, what: string): void {
  let returned: unknown;
  try {
    returned = fn();
  } catch (e) {
    assert.ok(e instanceof UringZcError, `${what}: threw a UringZcError (got ${String(e)})`);
    assert.equal(codeOf(e), code, `${what}: code`);
    return;
  }
  if (returned instanceof Promise) returned.catch(() => {});
  assert.fail(`${what}: did not throw ${code} synchronously (returned ${String(returned)})`);
}

/**
 * One Ring for a test file: made before its tests (unless they skip for `skipReason`), closed
 * after them. Returns its getter.
 */
export function fileRing(skipReason: string | null): () => Ring {
  let ring: Ring | undefined;
  before(() => {
    // Not where one ring does not fit: its tests all skip for that (their needs count it).
    if (skipReason === null && memlockUnavailableReason({ rings: [256] }) === null) ring = new Ring();
  });
  after(async () => {
    await ring?.close();
  });
  return () => ring!;
}

/**
 * Makes this thread's default ring (the one adopt() uses) before the file's tests, unless they
 * skip for `skipReason` or it does not fit in RLIMIT_MEMLOCK next to the file's other rings
 * (`alsoOpen`: a fileRing() is [256]; the tests that need it skip then). A ring the kernel
 * refuses fails this hook, not the first adopt() inside a test whose sockets are already open
 * (open sockets keep the file's process alive until the runner's 120 s timeout).
 */
export function fileDefaultRing(skipReason: string | null, alsoOpen: readonly number[] = []): void {
  before(() => {
    if (skipReason === null && memlockUnavailableReason({ rings: [256, ...alsoOpen] }) === null) defaultRing();
  });
}

/**
 * Runs `fn` with an IFB sink namespace of its own, removed afterwards (and checked gone); skips
 * `t` where namespaces cannot be made here, or for `skipReason` (zero copy unavailable).
 */
export async function withSink(t: TestContext, skipReason: string | null, fn: (sink: SinkNamespace) => Promise<void>): Promise<void> {
  const why = netnsUnavailableReason() ?? skipReason;
  if (why !== null) {
    t.skip(why);
    return;
  }
  const sink = createSink();
  try {
    await fn(sink);
  } finally {
    sink.dispose();
  }
  assert.deepEqual(leftoverNamespaces(), []);
}
