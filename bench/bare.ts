/**
 * The bare ring: SEND_ZC requests written straight into an io_uring by a minimal event-loop loop,
 * without the library (no request objects, no validation, no lifetime bookkeeping beyond a slot
 * per request). It is the architecture's prototype (architecture.md): the ceiling of any
 * TypeScript ring driven from the Node event loop on this machine, measured next to the library
 * (bench/overhead.ts) and next to the C sender (the `bare` and `bare-pool` rows of uring-zc bench).
 */
import { native, type PollHandle } from '../src/native.js';
import { DEFAULT_SETUP_FLAGS, RingMemory, type CqeSink } from '../src/ring-memory.js';
import { prepSend } from '../src/sqe.js';
import {
  IORING_CQE_F_MORE,
  IORING_CQE_F_NOTIF,
  IORING_NOTIF_USAGE_ZC_COPIED,
  IORING_OP_SEND_ZC,
  IORING_RECVSEND_FIXED_BUF,
  IORING_REGISTER_BUFFERS,
  IORING_SEND_ZC_REPORT_USAGE,
} from '../src/uapi.js';

/** Most sends in flight (slots). */
const SLOTS = 1024;
/** Reap/submit rounds per poll callback, as the library's Ring. */
const PUMP_ROUNDS = 8;

/** Called once per send, when its last CQE came: bytes sent (or -errno) and whether it was not copied. */
export type BareDone = (res: number, zeroCopy: boolean) => void;

export class BareRing implements CqeSink {
  private readonly mem: RingMemory;
  private readonly poll: PollHandle;
  private readonly free = new Int32Array(SLOTS);
  private nFree = SLOTS;
  private readonly res = new Int32Array(SLOTS);
  /** Per slot: 1 = result seen, 2 = notification due, 4 = notification seen, 8 = copied. */
  private readonly state = new Uint8Array(SLOTS);
  private inFlight = 0;
  private inPump = false;
  private flushQueued = false;
  private readonly flushBound = (): void => {
    this.flushQueued = false;
    this.mem.enter(0, false);
  };

  constructor(private readonly done: BareDone) {
    const mem = RingMemory.create(256, DEFAULT_SETUP_FLAGS, 1024);
    if (typeof mem === 'number') throw new Error(`bare ring: io_uring_setup failed (${mem})`);
    this.mem = mem;
    for (let i = 0; i < SLOTS; i++) this.free[i] = SLOTS - 1 - i;
    this.poll = native.pollStart(mem.fd, () => this.pump());
  }

  /** Registers [addr, addr + len) as fixed buffer 0 (IORING_REGISTER_BUFFERS). */
  register(addr: number, len: number): void {
    const iov = Buffer.alloc(16);
    iov.writeBigUInt64LE(BigInt(addr), 0);
    iov.writeBigUInt64LE(BigInt(len), 8);
    const r = native.register(this.mem.fd, IORING_REGISTER_BUFFERS, iov, 1);
    if (r < 0) throw new Error(`bare ring: IORING_REGISTER_BUFFERS failed (${r})`);
  }

  /**
   * One SEND_ZC of [addr, addr + len) on `fd` to the sockaddr at `dest` (`destLen` bytes), from
   * fixed buffer 0 when `fixed`. Submitted at the end of the tick (or by the running pump).
   */
  send(fd: number, addr: number, len: number, dest: number, destLen: number, fixed: boolean): void {
    let o = this.mem.nextSqe();
    if (o < 0) {
      this.mem.enter(0, false);
      o = this.mem.nextSqe();
    }
    if (o < 0 || this.nFree === 0) throw new Error('bare ring: more sends than slots or SQEs');
    const slot = this.free[--this.nFree]!;
    this.state[slot] = 0;
    prepSend(this.mem.sqes, o, IORING_OP_SEND_ZC, 0, IORING_SEND_ZC_REPORT_USAGE | (fixed ? IORING_RECVSEND_FIXED_BUF : 0),
      fd, addr, len, 0, dest, destLen, 0, slot);
    this.mem.advance();
    if (this.inFlight++ === 0) native.pollRef(this.poll, true);
    if (!this.inPump && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushBound);
    }
  }

  /** @internal RingMemory#reap. */
  onCqe(slot: number, res: number, flags: number): void {
    let s = this.state[slot]!;
    if ((flags & IORING_CQE_F_NOTIF) !== 0) {
      s |= (res & IORING_NOTIF_USAGE_ZC_COPIED) !== 0 ? 12 : 4;
    } else {
      this.res[slot] = res;
      s |= (flags & IORING_CQE_F_MORE) !== 0 ? 3 : 1;
    }
    this.state[slot] = s;
    if ((s & 1) === 0 || ((s & 2) !== 0 && (s & 4) === 0)) return;
    this.free[this.nFree++] = slot;
    if (--this.inFlight === 0) native.pollRef(this.poll, false);
    this.done(this.res[slot]!, (s & 12) === 4);
  }

  private pump(): void {
    this.inPump = true;
    try {
      for (let r = 0; r < PUMP_ROUNDS; r++) {
        if (this.mem.reap(this) === 0 && r > 0) break;
        this.mem.enter(0, false);
      }
    } finally {
      this.inPump = false;
    }
  }

  /** Stops polling and unmaps the ring (call with nothing in flight). */
  close(): void {
    native.pollStop(this.poll);
    this.mem.destroy();
  }
}
