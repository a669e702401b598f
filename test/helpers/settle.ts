/**
 * Bookkeeping of send outcomes for the teardown tests: each callback counted (twice is a defect,
 * recorded rather than thrown so that the test reports it), inFlight sampled at every callback.
 */
import assert from 'node:assert/strict';
import type { ZeroCopySocket } from '../../src/index.js';
import { codeOf } from './env.js';

export interface Settled {
  err: Error | null;
  bytes: number;
  zeroCopy: boolean;
}

export class Settles {
  /** Per send index: how many times its callback ran. */
  readonly calls: number[] = [];
  /** Per send index: its (first) outcome. */
  readonly outcomes: (Settled | undefined)[] = [];
  /** Lowest stats().inFlight seen in a callback. */
  minInFlight = Infinity;
  private waiters: { n: number; resolve: () => void }[] = [];
  private settledCount = 0;

  constructor(private readonly zs: ZeroCopySocket) {}

  /** A callback for send number `i`. */
  cb(i: number): (err: Error | null, bytes: number, zeroCopy: boolean) => void {
    this.calls[i] = 0;
    return (err, bytes, zeroCopy) => {
      this.calls[i] = (this.calls[i] ?? 0) + 1;
      if (this.calls[i] === 1) {
        this.outcomes[i] = { err, bytes, zeroCopy };
        this.settledCount++;
      }
      this.minInFlight = Math.min(this.minInFlight, this.zs.stats().inFlight);
      for (let k = this.waiters.length - 1; k >= 0; k--) {
        if (this.settledCount >= this.waiters[k]!.n) this.waiters.splice(k, 1)[0]!.resolve();
      }
    };
  }

  get settled(): number {
    return this.settledCount;
  }

  /** Resolves once `n` sends have settled; rejects after `ms` with how many did. */
  waitFor(n: number, ms: number, what: string): Promise<void> {
    if (this.settledCount >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: ${this.settledCount} of ${n} sends settled after ${ms} ms`)), ms);
      this.waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  /** Every send called back exactly once, and inFlight never went below 0. */
  assertOnce(what: string): void {
    const twice = this.calls.map((c, i) => [i, c] as const).filter(([, c]) => c !== 1);
    assert.deepEqual(twice, [], `${what}: sends whose callback did not run exactly once [index, calls]`);
    assert.ok(this.minInFlight >= 0, `${what}: stats().inFlight went to ${this.minInFlight}`);
  }

  /** The codes of the failed sends (null for a success), in send order. */
  codes(): (string | null)[] {
    return this.outcomes.map((o) => (o === undefined ? 'unsettled' : o.err === null ? null : codeOf(o.err) ?? 'no code'));
  }
}
