/**
 * Capability detection by probing the running kernel: set up a ring, ask for the opcode table
 * (IORING_REGISTER_PROBE), try each flag we use. Never from `uname`: distributions backport, and
 * seccomp or a sysctl can block what the version promises.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { errnoName, hasCapIpcLock, readMemlockLimit, UringZcArgumentError } from './errors.js';
import type { BackendName } from './syscall.js';
import { native } from './native.js';
import { CQ_PER_SQ, DEFAULT_ENTRIES, DEFAULT_SETUP_FLAGS, RingMemory, ringMemlockHint, setupFailureReason } from './ring-memory.js';
import { prepSend } from './sqe.js';
import {
  IORING_CQE_F_MORE,
  IORING_OP_SEND_ZC,
  IORING_OP_SENDMSG_ZC,
  IORING_RECVSEND_FIXED_BUF,
  IORING_REGISTER_BUFFERS,
  IORING_SEND_VECTORIZED,
  IORING_REGISTER_PROBE,
  IORING_SEND_ZC_REPORT_USAGE,
  IORING_UNREGISTER_BUFFERS,
  IO_URING_OP_SUPPORTED,
  IORING_SETUP_CQSIZE,
} from './uapi.js';
import { addressOf, writeU64 } from './buffers.js';

/** What this process can use, and why not where it cannot. */
export interface Capabilities {
  /** io_uring_setup works here. */
  ioUring: boolean;
  /** IORING_OP_SEND_ZC (6.0). */
  sendZc: boolean;
  /** IORING_OP_SENDMSG_ZC (6.1). */
  sendmsgZc: boolean;
  /** IORING_SEND_ZC_REPORT_USAGE (6.2): sends report whether the kernel copied. */
  reportUsage: boolean;
  /** IORING_OP_SENDMSG_ZC with IORING_RECVSEND_FIXED_BUF (6.15): vectored sends from a pool. */
  sendmsgZcFixed: boolean;
  /** IORING_OP_SEND_ZC with IORING_SEND_VECTORIZED (6.17): a datagram from an iovec, no msghdr. */
  sendZcVectorized: boolean;
  /** IORING_REGISTER_BUFFERS works within this process's RLIMIT_MEMLOCK. */
  fixedBuffers: boolean;
  /**
   * A ring of the default size (`new Ring()`, what adopt() uses) can be set up here. Since Linux
   * 6.13 a ring's memory counts against RLIMIT_MEMLOCK: under a small limit (or with Node >= 22's
   * own rings already counted) the probe's small ring may work while the default one fails with
   * ENOMEM; `reason` then says so, with the limit and the fix.
   */
  defaultRing: boolean;
  /** os.release(). */
  kernel: string;
  /** The soft RLIMIT_MEMLOCK in bytes (Infinity: unlimited; NaN: unknown). */
  memlockLimit: number;
  /** kernel.io_uring_disabled (0, 1, 2), or null where the sysctl does not exist (before 6.6). */
  ioUringDisabled: number | null;
  /** Why io_uring (or zero-copy send) is not available, when it is not. */
  reason?: string;
  /**
   * The backend adopt() uses here: URING_ZC_BACKEND when set, else the best that works —
   * 'io_uring' where a ring of the default size can be set up and a real SEND_ZC works,
   * else 'msg_zerocopy' where SO_ZEROCOPY works, else 'copy'.
   */
  backend: BackendName;
  /** Each backend: whether it works here and, where not, why (errno, sysctl, missing opcode, memlock). */
  backends: Record<BackendName, BackendStatus>;
}

/** Whether a backend works here, and why not. */
export interface BackendStatus {
  ok: boolean;
  reason?: string;
}

let cached: Capabilities | undefined;

/** user_data of the probe's requests: the Ring's internal one, so that should a CQE of them come late, the Ring that takes the probe's ring over ignores it. */
const PROBE_UD = 0xffffffff;

/**
 * Probes once per thread and caches. Never throws: where io_uring is blocked it returns
 * `ioUring: false` and the reason. With URING_ZC_BACKEND=msg_zerocopy or copy, io_uring is not
 * probed at all (some sandboxes kill a process that calls io_uring_setup).
 */
export function capabilities(): Capabilities {
  if (cached === undefined) cached = Object.freeze(probe()) as Capabilities;
  return cached;
}

const BACKENDS: readonly BackendName[] = ['io_uring', 'msg_zerocopy', 'copy'];

/**
 * The backend URING_ZC_BACKEND asks for ('auto' or unset: undefined).
 * @throws ERR_URING_ZC_INVALID_ARG for another value.
 */
export function requestedBackend(): BackendName | undefined {
  const v = process.env['URING_ZC_BACKEND'];
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new UringZcArgumentError(`URING_ZC_BACKEND must be one of auto, ${BACKENDS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as BackendName;
}

/** Throws ERR_URING_ZC_INVALID_ARG unless the option `backend` is undefined, 'auto' or a backend's name. */
export function validateBackendOption(choice: unknown): void {
  if (choice !== undefined && choice !== 'auto' && !(BACKENDS as readonly unknown[]).includes(choice)) {
    throw new UringZcArgumentError(`"backend" must be one of auto, ${BACKENDS.join(', ')}, got ${JSON.stringify(choice)}`);
  }
}

/**
 * The backend for a socket or pool: the option `choice`; unset, the one URING_ZC_BACKEND names
 * (read at each call; a bad value throws ERR_URING_ZC_INVALID_ARG); for 'auto', the one
 * capabilities() names.
 */
export function chooseBackend(choice: 'auto' | BackendName | undefined): BackendName {
  const c = choice ?? requestedBackend() ?? 'auto';
  return c === 'auto' ? capabilities().backend : c;
}

function probe(): Capabilities {
  let forced: BackendName | undefined;
  try {
    forced = requestedBackend();
  } catch {
    forced = undefined; // adopt() reports the bad value; capabilities() never throws
  }
  const caps = forced === 'msg_zerocopy' || forced === 'copy' ? notProbed(forced) : probeIoUring();
  caps.backends.msg_zerocopy = probeMsgZerocopy();
  caps.backend = forced ?? (caps.backends.io_uring.ok ? 'io_uring' : caps.backends.msg_zerocopy.ok ? 'msg_zerocopy' : 'copy');
  return caps;
}

/** The fields before any probe: nothing known to work but copying sends. */
function unknown(): Capabilities {
  return {
    ioUring: false,
    sendZc: false,
    sendmsgZc: false,
    reportUsage: false,
    sendmsgZcFixed: false,
    sendZcVectorized: false,
    fixedBuffers: false,
    defaultRing: false,
    kernel: os.release(),
    memlockLimit: readMemlockLimit(),
    ioUringDisabled: readDisabledSysctl(),
    backend: 'copy',
    backends: { io_uring: { ok: false }, msg_zerocopy: { ok: false }, copy: { ok: true } },
  };
}

function notProbed(forced: BackendName): Capabilities {
  const caps = unknown();
  caps.reason = `io_uring not probed: URING_ZC_BACKEND=${forced}`;
  caps.backends.io_uring = { ok: false, reason: caps.reason };
  return caps;
}

/** SO_ZEROCOPY on a UDP socket: the kernel has MSG_ZEROCOPY for it (4.14+ TCP, 5.0+ UDP). */
function probeMsgZerocopy(): BackendStatus {
  const fd = native.probeSocket();
  if (fd < 0) return { ok: false, reason: `no UDP socket for the probe: ${errnoName(fd)}` };
  const r = native.setSockOpt(fd, 1 /* SOL_SOCKET */, 60 /* SO_ZEROCOPY */, 1);
  native.close(fd);
  return r === 0 ? { ok: true } : { ok: false, reason: `setsockopt(SO_ZEROCOPY) failed with ${errnoName(r)}` };
}

/**
 * A real IORING_OP_SEND_ZC of one byte on a UDP socket connected to itself (loopback): gVisor
 * sets up rings and lists the opcode but fails every send with -EINVAL, which only a send shows.
 */
function probeRealSend(mem: RingMemory): BackendStatus {
  const fd = native.probeSocket();
  if (fd < 0) return { ok: false, reason: `no UDP socket for the probe: ${errnoName(fd)}` };
  const byte = Buffer.alloc(1, 0x5a);
  let result: number | undefined;
  try {
    result = runOne(mem, (w, o) => prepSend(w, o, IORING_OP_SEND_ZC, 0, 0, fd, addressOf(byte), 1, 0, 0, 0, 0, PROBE_UD));
  } finally {
    native.close(fd);
  }
  // ENOMEM: the kernel would not pin the byte's page within RLIMIT_MEMLOCK (spent by rings: ours,
  // and Node >= 22's libuv's). The opcode works; such sends are copied (stats().pinFallbacks),
  // as they would be on msg_zerocopy, whose pinning is charged to the same limit.
  if (result === 1 || result === -12 /* ENOMEM */) return { ok: true };
  return { ok: false, reason: `IORING_OP_SEND_ZC on a real socket ${result === undefined ? 'did not complete' : `failed with ${errnoName(result)}`} (gVisor implements io_uring_setup but not the send opcodes)` };
}

/**
 * The ring of the default size the probe set up and probed on, kept for the first `new Ring()`
 * of that size (the default ring adopt() uses): since Linux 6.13 a ring's memory counts against
 * RLIMIT_MEMLOCK, and the kernel gives a closed ring's back only later (its teardown runs
 * asynchronously), so closing it and setting up another at once could fail where it just worked.
 */
let spare: RingMemory | undefined;

/** The probe's ring, when it has the size and flags asked for (once). @internal */
export function takeSpareRing(entries: number, flags: number, cqEntries: number): RingMemory | undefined {
  const s = spare;
  if (s === undefined || s.sqEntries !== entries || s.cqEntries !== cqEntries || (s.flags & ~IORING_SETUP_CQSIZE) !== flags) return undefined;
  spare = undefined;
  return s;
}

function probeIoUring(): Capabilities {
  const caps = unknown();
  let mem: RingMemory | number;
  let full = false;
  try {
    // The ring adopt() would use; a small one when that fails (ENOMEM under a small memlock
    // limit), to tell what else there is.
    mem = RingMemory.create(DEFAULT_ENTRIES, DEFAULT_SETUP_FLAGS, DEFAULT_ENTRIES * CQ_PER_SQ);
    if (typeof mem !== 'number') {
      full = true;
    } else {
      const why = mem;
      mem = RingMemory.create(8, 0, 0);
      if (typeof mem !== 'number') {
        caps.reason = `a ring of the default size (${DEFAULT_ENTRIES} entries) cannot be set up here: io_uring_setup failed with ${errnoName(why)}` +
          (why === -12 ? `; ${ringMemlockHint()}` : '');
      }
    }
  } catch (e) {
    caps.reason = `the native addon failed: ${(e as Error).message}`;
    caps.backends.io_uring = { ok: false, reason: caps.reason };
    return caps;
  }
  if (typeof mem === 'number') {
    caps.reason = mem === -1 || mem === -38 ? setupFailureReason(mem) : `io_uring_setup failed: ${errnoName(mem)}`;
    caps.backends.io_uring = { ok: false, reason: caps.reason };
    return caps;
  }
  let keep = false;
  try {
    caps.ioUring = true;
    caps.defaultRing = full;
    const ops = probeOps(mem.fd);
    caps.sendZc = ops.has(IORING_OP_SEND_ZC);
    caps.sendmsgZc = ops.has(IORING_OP_SENDMSG_ZC);
    if (caps.sendZc) caps.reportUsage = probeFlags(mem, IORING_OP_SEND_ZC, IORING_SEND_ZC_REPORT_USAGE);
    if (caps.reportUsage) {
      // One iovec at address 0: a kernel with the flag fails to read it (EFAULT), one without
      // rejects the flag (EINVAL).
      caps.sendZcVectorized = probeFlags(mem, IORING_OP_SEND_ZC, IORING_SEND_ZC_REPORT_USAGE | IORING_SEND_VECTORIZED, 1);
    }
    if (caps.sendmsgZc) {
      caps.sendmsgZcFixed = probeFlags(mem, IORING_OP_SENDMSG_ZC, IORING_SEND_ZC_REPORT_USAGE | IORING_RECVSEND_FIXED_BUF);
    }
    caps.fixedBuffers = probeFixedBuffers(mem.fd);
    if (!caps.sendZc) caps.reason = `IORING_OP_SEND_ZC is not supported by kernel ${caps.kernel} (needs Linux 6.0+)`;
    const send = caps.sendZc ? probeRealSend(mem) : { ok: false };
    if (!send.ok && send.reason !== undefined) caps.reason ??= send.reason;
    caps.backends.io_uring = caps.sendZc && caps.defaultRing && send.ok ? { ok: true } : { ok: false, reason: caps.reason ?? 'unknown' };
    keep = full && caps.backends.io_uring.ok;
  } finally {
    // Kept only where the ring's memory is charged to RLIMIT_MEMLOCK at all (no CAP_IPC_LOCK,
    // a finite limit): elsewhere closing it costs nothing later.
    if (keep && caps.memlockLimit !== Infinity && !hasCapIpcLock()) spare = mem;
    else mem.destroy();
  }
  return caps;
}

function readDisabledSysctl(): number | null {
  try {
    return Number(readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim());
  } catch {
    return null;
  }
}

/** The opcodes the kernel supports (struct io_uring_probe: 16-byte header, then 8 bytes per op). */
function probeOps(fd: number): Set<number> {
  const n = 256;
  const p = Buffer.alloc(16 + n * 8);
  const out = new Set<number>();
  if (native.register(fd, IORING_REGISTER_PROBE, p, n) < 0) return out;
  const opsLen = p[1]!;
  for (let i = 0; i < opsLen; i++) {
    const at = 16 + i * 8;
    if ((p.readUInt16LE(at + 2) & IO_URING_OP_SUPPORTED) !== 0) out.add(p[at]!);
  }
  return out;
}

/**
 * A request with `ioprio` flags on a descriptor that is not a socket (the ring's own fd) and no
 * buffer: a kernel that does not know the flags rejects it in prep with EINVAL; one that does
 * gets further and fails otherwise (ENOTSOCK, EFAULT). No packet is sent.
 */
function probeFlags(mem: RingMemory, opcode: number, ioprio: number, len = opcode === IORING_OP_SEND_ZC ? 0 : 1): boolean {
  const result = runOne(mem, (w, o) => prepSend(w, o, opcode, 0, ioprio, mem.fd, 0, len, 0, 0, 0, 0, PROBE_UD));
  return result !== undefined && result !== -22 /* EINVAL */;
}

/**
 * Submits the one request `prep` writes and waits for its result CQE and, when that has
 * IORING_CQE_F_MORE, its notification; returns the result's res (undefined if none came).
 */
function runOne(mem: RingMemory, prep: (w: Uint32Array, o: number) => void): number | undefined {
  prep(mem.sqes, mem.nextSqe());
  mem.advance();
  let result: number | undefined;
  let more = false;
  let notified = false;
  // Bounded: each enter waits at most 1 s, and at most two CQEs can come.
  for (let tries = 0; tries < 3 && (result === undefined || (more && !notified)); tries++) {
    mem.enter(1, true);
    mem.reap({
      onCqe: (_ud, res, flags) => {
        if (result === undefined) {
          result = res;
          more = (flags & IORING_CQE_F_MORE) !== 0;
        } else {
          notified = true;
        }
      },
    });
  }
  return result;
}

/** Registers and unregisters one page: fails with ENOMEM when RLIMIT_MEMLOCK is too low. */
function probeFixedBuffers(fd: number): boolean {
  const page = Buffer.allocUnsafeSlow(4096);
  const iov = Buffer.alloc(16); // struct iovec
  writeU64(iov, 0, addressOf(page));
  writeU64(iov, 8, page.length);
  if (native.register(fd, IORING_REGISTER_BUFFERS, iov, 1) < 0) return false;
  native.register(fd, IORING_UNREGISTER_BUFFERS, null, 0);
  return true;
}
