/**
 * Loopback peers for the tests: a TCP receiver (port 0) that verifies or counts the bytes it gets,
 * a UDP receiver that keeps every datagram, and a count of this process's open descriptors.
 * Everything binds 127.0.0.1 or ::1 only.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import type { ZeroCopySocket } from '../../src/index.js';
import { firstDifference } from './data.js';

/** Checks a byte stream against the buffers that were sent, in send order, byte by byte. */
export class StreamVerifier {
  private readonly pending: Uint8Array[] = [];
  private head = 0;
  private offsetInHead = 0;
  /** Bytes announced with expect(). */
  expected = 0;
  /** Bytes received that matched. */
  verified = 0;
  /** Stream offset of the first wrong byte, or -1. */
  mismatchAt = -1;
  /** Bytes received beyond what was expected. */
  extra = 0;

  /** Announces the next sent buffer (call before send(), and do not change it afterwards). */
  expect(buf: Uint8Array): void {
    if (buf.byteLength === 0) return;
    this.pending.push(buf);
    this.expected += buf.byteLength;
  }

  /** Feeds received bytes. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.mismatchAt >= 0) return;
      const want = this.pending[this.head];
      if (want === undefined) {
        this.extra += chunk.length - at;
        if (this.mismatchAt < 0) this.mismatchAt = this.verified;
        return;
      }
      const n = Math.min(want.byteLength - this.offsetInHead, chunk.length - at);
      const a = Buffer.from(want.buffer, want.byteOffset + this.offsetInHead, n);
      const b = chunk.subarray(at, at + n);
      if (!a.equals(b)) {
        this.mismatchAt = this.verified + firstDifference(a, b);
        return;
      }
      this.verified += n;
      at += n;
      this.offsetInHead += n;
      if (this.offsetInHead === want.byteLength) {
        this.pending[this.head++] = undefined as unknown as Uint8Array;
        this.offsetInHead = 0;
      }
    }
  }

  /** True when everything expected arrived intact and nothing else. */
  get complete(): boolean {
    return this.mismatchAt < 0 && this.extra === 0 && this.verified === this.expected;
  }
}

export interface TcpReceiverOptions {
  host?: string;
  /** Do not read at all until resume() (the peer's receive buffer fills up, sends stall). */
  paused?: boolean;
  /** Called with every chunk, in arrival order. */
  onData?: (chunk: Buffer, socket: net.Socket) => void;
}

export interface TcpReceiver {
  readonly port: number;
  readonly host: string;
  /** The first accepted connection. */
  readonly peer: Promise<net.Socket>;
  /** Bytes read so far (all connections). */
  bytes(): number;
  /** Accepted connections not closed yet. */
  openConnections(): number;
  /** Starts reading on a receiver created with `paused: true`. */
  resume(): void;
  /** Resolves (with the bytes read) when `n` bytes have been read; rejects after `ms`. */
  waitForBytes(n: number, ms: number): Promise<number>;
  /** Destroys every connection and closes the server. */
  close(): Promise<void>;
}

/** A TCP server on `host` (default 127.0.0.1), port 0. */
export async function tcpReceiver(options: TcpReceiverOptions = {}): Promise<TcpReceiver> {
  const host = options.host ?? '127.0.0.1';
  const conns = new Set<net.Socket>();
  let total = 0;
  let reading = options.paused !== true;
  const waiters: { n: number; resolve: (v: number) => void }[] = [];
  let resolvePeer!: (s: net.Socket) => void;
  const peer = new Promise<net.Socket>((r) => {
    resolvePeer = r;
  });
  const startReading = (s: net.Socket): void => {
    s.on('data', (chunk: Buffer) => {
      total += chunk.length;
      options.onData?.(chunk, s);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (total >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve(total);
      }
    });
  };
  // pauseOnCreate: the accepted socket does not read before a 'data' listener is attached.
  let closing = false;
  const server = net.createServer({ pauseOnCreate: true } as net.ServerOpts, (s) => {
    if (closing) {
      // Accepted while close() runs (it was still in the listen backlog): it goes too.
      s.destroy();
      return;
    }
    conns.add(s);
    s.on('error', () => {
      // A reset by the test's own client; the test asserts on the sender side.
    });
    s.on('close', () => conns.delete(s));
    if (reading) startReading(s);
    resolvePeer(s);
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    host,
    peer,
    bytes: () => total,
    openConnections: () => conns.size,
    resume: () => {
      if (reading) return;
      reading = true;
      for (const s of conns) startReading(s);
    },
    waitForBytes: (n, ms) => {
      if (total >= n) return Promise.resolve(total);
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`TCP receiver: ${total} of ${n} bytes after ${ms} ms`));
        }, ms);
        const w = {
          n,
          resolve: (v: number) => {
            clearTimeout(timer);
            resolve(v);
          },
        };
        waiters.push(w);
      });
    },
    close: async () => {
      closing = true;
      const closed = [...conns].map((s) => (s.destroyed && s.closed ? Promise.resolve() : once(s, 'close').then(() => undefined)));
      for (const s of conns) s.destroy();
      await Promise.all(closed);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A connected TCP client (after 'connect'). Errors (a reset peer) are swallowed: tests check the ZeroCopySocket. */
export async function connectTcp(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ port, host });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Destroys a Node socket and waits for its 'close'. */
export async function destroySocket(s: net.Socket): Promise<void> {
  if (s.closed) return;
  const closed = once(s, 'close');
  s.destroy();
  await closed;
}

export interface ReceivedDatagram {
  data: Buffer;
  address: string;
  port: number;
}

export interface UdpReceiver {
  readonly socket: dgram.Socket;
  readonly port: number;
  readonly host: string;
  readonly messages: ReceivedDatagram[];
  /** Resolves when at least `n` datagrams arrived; rejects after `ms`. */
  waitFor(n: number, ms: number): Promise<void>;
  close(): Promise<void>;
}

/** A UDP receiver on `host` (default 127.0.0.1 for udp4, ::1 for udp6), port 0, 4 MiB receive buffer. */
export async function udpReceiver(type: 'udp4' | 'udp6' = 'udp4', host?: string): Promise<UdpReceiver> {
  const h = host ?? (type === 'udp4' ? '127.0.0.1' : '::1');
  // The kernel caps the size at net.core.rmem_max; that is enough for the batches the tests send.
  const socket = dgram.createSocket({ type, recvBufferSize: 4 << 20 });
  const messages: ReceivedDatagram[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  socket.on('message', (data, rinfo) => {
    messages.push({ data, address: rinfo.address, port: rinfo.port });
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (messages.length >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
    }
  });
  socket.bind(0, h);
  await once(socket, 'listening');
  return {
    socket,
    port: socket.address().port,
    host: h,
    messages,
    waitFor: (n, ms) => {
      if (messages.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`UDP receiver: ${messages.length} of ${n} datagrams after ${ms} ms`));
        }, ms);
        const w = {
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.push(w);
      });
    },
    close: () => closeDgram(socket),
  };
}

/** A dgram socket bound to `host` port 0 (after 'listening'). */
export async function boundUdp(type: 'udp4' | 'udp6' = 'udp4', host?: string): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type, sendBufferSize: 4 << 20 });
  s.bind(0, host ?? (type === 'udp4' ? '127.0.0.1' : '::1'));
  await once(s, 'listening');
  return s;
}

/** Closes a dgram socket once (ignores an already closed one). */
export async function closeDgram(s: dgram.Socket): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // ERR_SOCKET_DGRAM_NOT_RUNNING: already closed
    }
  });
}

/** A TCP and a UDP socket, each to a loopback receiver of its own, both adopted. */
export interface TcpAndUdp {
  readonly trx: TcpReceiver;
  readonly client: net.Socket;
  readonly tzs: ZeroCopySocket;
  readonly urx: UdpReceiver;
  readonly usock: dgram.Socket;
  readonly uzs: ZeroCopySocket;
  /** Closes both ZeroCopySockets, then the Node sockets, then the receivers. */
  close(): Promise<void>;
}

/** Opens a TcpAndUdp (IPv4), adopting each socket with `adoptOn`; `tcp` as for tcpReceiver(). */
export async function tcpAndUdp(adoptOn: (sock: net.Socket | dgram.Socket) => ZeroCopySocket, tcp?: TcpReceiverOptions): Promise<TcpAndUdp> {
  const trx = await tcpReceiver(tcp);
  const client = await connectTcp(trx.port);
  const tzs = adoptOn(client);
  const urx = await udpReceiver('udp4');
  const usock = await boundUdp('udp4');
  const uzs = adoptOn(usock);
  return {
    trx, client, tzs, urx, usock, uzs,
    close: async () => {
      await tzs.close();
      await uzs.close();
      await destroySocket(client);
      await closeDgram(usock);
      await trx.close();
      await urx.close();
    },
  };
}

/**
 * Open descriptors of this process of the kinds the library and the tests make (sockets, epoll
 * sets, io_uring rings, eventfds, pipes), for leak checks. Files are left out: Node 24 opens and
 * closes some of its own from background threads at any time (/etc/ssl/certs/ca-certificates.crt,
 * /dev/null), which made a count taken mid-read one off. The readdir's own descriptor is never
 * one of these kinds.
 */
export function countFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/^(socket|pipe|anon_inode):/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // Closed between readdir and readlink (the readdir's own, or a file of Node's).
    }
  }
  return n;
}

/** What each open descriptor is, for failure messages. */
export function listFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      out.push(`${fd} -> (gone)`);
    }
  }
  return out;
}
