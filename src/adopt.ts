/**
 * Adoption: adopt() and Ring#adopt() turn a Node socket (or a socket fd) into a ZeroCopySocket.
 * Validates the options, finds the descriptor behind the Node socket, picks the backend (the
 * io_uring Ring, or a syscall backend: AF_UNIX and libuv's draining of a read UDP socket's error
 * queue copy), duplicates and checks the descriptor, and stops Node's reading for
 * `receive: false`. Above src/socket.ts (which imports nothing from here).
 */
import dgram from 'node:dgram';
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { dgramFd, pauseReceiving, type UdpHandle } from './dgram-handle.js';
import { socketClosedError, UringZcArgumentError, UringZcStateError, UringZcSystemError, UringZcUnsupportedError } from './errors.js';
import { native } from './native.js';
import { validateBoolean, validateOptions, validateThreshold, validateUint } from './options.js';
import { capabilities, chooseBackend, validateBackendOption } from './probe.js';
import { defaultRing, Ring } from './ring.js';
import { type Adoptable, type AdoptOptions, ZeroCopySocket } from './socket.js';
import { syscallRing, type BackendName, type SyscallRing } from './syscall.js';
import { AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_STREAM } from './uapi.js';

const ADOPT_OPTION_NAMES = ['zeroCopyThreshold', 'autoDowngrade', 'receive', 'backend'] as const;

/**
 * Adopts a socket for zero-copy sends on this thread's default ring (see Ring#adopt).
 * @throws ERR_URING_ZC_UNSUPPORTED when io_uring is unavailable (with the reason).
 */
export function adopt(target: Adoptable, options?: AdoptOptions): ZeroCopySocket {
  return adoptOn(undefined, target, options);
}

declare module './ring.js' {
  interface Ring {
    /**
     * Adopts a socket for zero-copy sends on this ring: a connected net.Socket, a bound
     * dgram.Socket, or a socket fd. The descriptor is duplicated; see adopt().
     */
    adopt(target: Adoptable, options?: AdoptOptions): ZeroCopySocket;
  }
}

// A method of Ring defined here, where adoption is: ring.ts builds on nothing above it.
Ring.prototype.adopt = function adopt(this: Ring, target: Adoptable, options?: AdoptOptions): ZeroCopySocket {
  return adoptOn(this, target, options);
};

/** @internal Shared by adopt() and Ring#adopt(). */
export function adoptOn(ring: Ring | undefined, target: Adoptable, options: AdoptOptions = {}): ZeroCopySocket {
  validateOptions('adopt options', options, ADOPT_OPTION_NAMES);
  if (options.zeroCopyThreshold !== undefined) validateThreshold('zeroCopyThreshold', options.zeroCopyThreshold);
  if (options.autoDowngrade !== undefined) validateBoolean('autoDowngrade', options.autoDowngrade);
  if (options.receive !== undefined) {
    validateBoolean('receive', options.receive);
    if (options.receive === false && !(target instanceof dgram.Socket)) {
      throw new UringZcArgumentError('"receive: false" applies to a dgram.Socket (Node reads it); a descriptor or a net.Socket is not read by uring-zc');
    }
  }
  validateBackendOption(options.backend);
  if (ring !== undefined && options.backend !== undefined && options.backend !== 'io_uring' && options.backend !== 'auto') {
    throw new UringZcArgumentError(`ring.adopt() sends through that io_uring ring; for the ${options.backend} backend use adopt(socket, { backend: '${options.backend}' })`);
  }
  const { fd, node } = nodeFd(target);
  // The backend: an io_uring Ring given, or the option, URING_ZC_BACKEND, or what auto picks
  // here. Choosing a syscall backend never probes io_uring (some sandboxes kill the process for
  // io_uring_setup).
  const kind: BackendName = ring !== undefined ? 'io_uring' : chooseBackend(options.backend);
  let r: Ring | SyscallRing;
  if (kind === 'io_uring') {
    const caps = capabilities();
    if (!caps.ioUring || !caps.sendZc) {
      throw new UringZcUnsupportedError('zero-copy send is not available', caps.reason ?? 'unknown reason');
    }
    r = ring ?? defaultRing();
  } else {
    r = syscallRing(kind);
  }
  if (r.closing) throw new UringZcStateError('ERR_URING_ZC_RING_CLOSED', 'the ring is closed');
  const dup = native.dup(fd);
  if (dup < 0) throw new UringZcSystemError(dup, 'dup');
  const info = native.sockInfo(dup);
  if (typeof info === 'number') {
    native.close(dup);
    throw new UringZcSystemError(info, 'getsockopt');
  }
  const [domain, type, , connected, inode] = info;
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
    native.close(dup);
    throw new UringZcUnsupportedError('cannot adopt this socket', `socket type ${type} is neither SOCK_STREAM nor SOCK_DGRAM`);
  }
  if (type === SOCK_STREAM && connected === 0) {
    native.close(dup);
    throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'a stream socket must be connected before adopt()');
  }
  if (domain !== AF_INET && domain !== AF_INET6 && domain !== AF_UNIX) {
    native.close(dup);
    throw new UringZcUnsupportedError('cannot adopt this socket', `address family ${domain} is not supported`);
  }
  // Thread teardown (native/teardown.c) resets and closes it if JS cannot; close() forgets it.
  const tracked = native.trackSocket(dup, type === SOCK_STREAM, inode);
  if (tracked === -16 /* EBUSY */) {
    native.close(dup);
    throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE',
      'this stream socket is adopted already (by this thread or another): a byte stream has one writer, and two sets of sends would interleave in it; close() the first ZeroCopySocket first');
  }
  if (tracked < 0) {
    native.close(dup);
    throw new UringZcSystemError(tracked, 'trackSocket');
  }
  if (domain === AF_UNIX && r.backend !== 'copy') {
    // No zero-copy path for local sockets (EOPNOTSUPP from SEND_ZC): they get a copying send.
    r = syscallRing('copy');
  }
  if (r.backend === 'msg_zerocopy' && target instanceof dgram.Socket && options.receive !== false && LIBUV_DRAINS_UDP_ERRQUEUE) {
    // libuv >= 1.52 (Node 24) reads a UDP socket's error queue when it polls it for reading,
    // where MSG_ZEROCOPY completions arrive: they would be lost and the sends never settle.
    // So a dgram socket that Node reads copies; { receive: false } keeps MSG_ZEROCOPY.
    r = syscallRing('copy');
  }
  if (r.backend !== 'io_uring') {
    let a = (r as SyscallRing).attach(dup, inode, type === SOCK_DGRAM);
    if (a < 0 && r.backend === 'msg_zerocopy') {
      // SO_ZEROCOPY refused for this socket: it copies.
      r = syscallRing('copy');
      a = r.attach(dup, inode, type === SOCK_DGRAM);
    }
    if (a < 0) {
      native.close(dup);
      throw new UringZcSystemError(a, 'setsockopt');
    }
  }
  let paused: UdpHandle | null = null;
  if (options.receive === false) {
    const p = pauseReceiving(target as dgram.Socket);
    if (typeof p === 'number') {
      if (r.backend === 'io_uring') native.close(dup);
      else (r as SyscallRing).release(dup);
      throw new UringZcSystemError(p, 'recvStop');
    }
    paused = p;
  }
  return new ZeroCopySocket(r, dup, domain, type, node, options, paused);
}

/** Does this Node's libuv drain the error queue of a UDP socket it reads (1.52 does, 1.51 does not)? */
const LIBUV_DRAINS_UDP_ERRQUEUE = ((): boolean => {
  const [major = 0, minor = 0] = (process.versions.uv ?? '0.0').split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 52);
})();

/** The descriptor behind what adopt() was given, and the Node socket to watch for 'close'. */
function nodeFd(target: Adoptable): { fd: number; node: EventEmitter | undefined } {
  if (typeof target === 'number') {
    validateUint('fd', target, 0, 0x7fffffff);
    return { fd: target, node: undefined };
  }
  if (target instanceof net.Socket) {
    if (target instanceof tls.TLSSocket) {
      throw new UringZcArgumentError('a tls.TLSSocket cannot be adopted: uring-zc writes to the TCP descriptor beneath TLS, which would put plaintext on an encrypted connection');
    }
    const kind = (target as unknown as { _handle?: object | null })._handle?.constructor?.name;
    if (kind !== undefined && kind !== 'TCP' && kind !== 'Pipe') {
      throw new UringZcArgumentError(`this net.Socket is not a plain TCP or IPC socket (its handle is a ${kind}): bytes written to a descriptor beneath it would bypass its protocol`);
    }
    if (target.destroyed) throw socketClosedError();
    if (target.connecting) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the net.Socket is still connecting: adopt it after its \'connect\' event');
    }
    // net.Socket#_handle.fd is the libuv stream's descriptor (no deprecation warning, unlike dgram).
    const fd = (target as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the net.Socket has no descriptor (not connected, or not a TCP/IPC socket)');
    }
    return { fd, node: target };
  }
  if (target instanceof dgram.Socket) {
    const fd = dgramFd(target);
    if (fd === undefined) throw socketClosedError();
    if (fd < 0) {
      throw new UringZcStateError('ERR_URING_ZC_INVALID_STATE', 'the dgram.Socket is not bound yet: adopt it after its \'listening\' event (call bind() first)');
    }
    return { fd, node: target };
  }
  throw new UringZcArgumentError('adopt() expects a net.Socket, a dgram.Socket or a socket file descriptor');
}
