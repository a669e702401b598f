/**
 * A dgram.Socket's libuv handle, reached without Node's deprecated `_handle` getter: its
 * descriptor (for adopt()), and stopping and restarting Node's reading of it for
 * `receive: false` (adopt() stops it, the last ZeroCopySocket to close starts it again). Below
 * both src/adopt.ts and src/socket.ts.
 */
import type dgram from 'node:dgram';
import { UringZcUnsupportedError } from './errors.js';

/** How many open ZeroCopySockets adopted each dgram.Socket with `receive: false`. */
const pausers = new WeakMap<dgram.Socket, number>();

/**
 * @internal Stops Node reading `sock` for a ZeroCopySocket adopted with `receive: false`: returns
 * the handle to give resumeReceiving() at close (null when another ZeroCopySocket stopped it
 * already and it is gone), or -errno.
 */
export function pauseReceiving(sock: dgram.Socket): UdpHandle | null | number {
  const handle = dgramHandle(sock) ?? null;
  // Several ZeroCopySockets may stop one dgram socket's reading: it starts again with the last.
  const n = pausers.get(sock) ?? 0;
  const e = n > 0 ? 0 : handle?.recvStop() ?? -9; /* EBADF */
  if (e !== 0) return e;
  pausers.set(sock, n + 1);
  return handle;
}

/** @internal A ZeroCopySocket that stopped `sock`'s reading has closed: the last one starts it again. */
export function resumeReceiving(sock: dgram.Socket, handle: UdpHandle): void {
  const n = (pausers.get(sock) ?? 1) - 1;
  if (n > 0) {
    pausers.set(sock, n);
    return;
  }
  pausers.delete(sock);
  // Unless the dgram socket was closed meanwhile (its handle is gone).
  if (dgramHandle(sock) === handle) handle.recvStart();
}

/**
 * The descriptor of a dgram.Socket. `socket._handle` warns (DEP0112), so read the handle from
 * the socket's internal state object, found by its shape; undefined when the socket is closed.
 */
/** @internal Exported for the tests (Node 26 has no dgram `_handle` any more). */
export function dgramFd(sock: dgram.Socket): number | undefined {
  const h = dgramHandle(sock);
  return h === undefined ? undefined : typeof h.fd === 'number' ? h.fd : -1;
}

/** @internal What uring-zc uses of a dgram.Socket's libuv handle (UDPWrap). */
export interface UdpHandle {
  fd?: number;
  recvStart(): number;
  recvStop(): number;
}

/**
 * The libuv handle of a dgram.Socket (in its internal state object, reached by symbol: the public
 * `_handle` getter is deprecated, DEP0112), or undefined once the socket is closed.
 */
function dgramHandle(sock: dgram.Socket): UdpHandle | undefined {
  const s = sock as unknown as Record<symbol, unknown>;
  for (const sym of Object.getOwnPropertySymbols(sock)) {
    const state = s[sym] as { handle?: UdpHandle | null } | undefined;
    if (state !== null && typeof state === 'object' && 'handle' in state) return state.handle ?? undefined;
  }
  throw new UringZcUnsupportedError('cannot adopt this dgram.Socket', 'its descriptor is not reachable in this Node version; pass the fd instead');
}
