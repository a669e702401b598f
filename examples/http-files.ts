/**
 * A static file server on node:http whose large bodies go from the page cache to the socket with
 * zs.sendFile(): Node parses the request and writes the headers, uring-zc sends the body
 * (io_uring IORING_OP_SPLICE, or sendfile(2) on the other backends), then Node finishes the
 * response, so keep-alive, pipelining and the next request work as usual.
 *
 * Run: node dist/examples/http-files.js [root directory] [port]     (default: the current
 * directory, port 8080), then: curl -o copy.bin http://127.0.0.1:8080/big.bin
 *
 * The order on the connection is the whole point: bytes written through Node (`res`) and bytes
 * sent by uring-zc are not ordered with each other, so each goes only when the other is done:
 * 1. res.writeHead() + res.flushHeaders(), then a zero-length write whose callback runs once the
 *    headers have gone to the kernel (Node's writes complete in order);
 * 2. zs.sendFile(): it resolves when the kernel has taken every byte of the body;
 * 3. res.end() with no body (the Content-Length header already framed it: Node adds no
 *    chunked encoding and, with strictContentLength off, its default, does not count the bytes
 *    that did not pass through it). Node writes a pipelined next response only after this one
 *    has ended, so it cannot overtake the body.
 * A body that fails half-way (the file was truncated, the peer reset) breaks the framing: the
 * connection is destroyed, never reused.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adopt, type AdoptOptions, type ZeroCopySocket } from 'uring-zc';

export interface FileServerOptions {
  /** The directory served (nothing outside it is). */
  root: string;
  port?: number;
  host?: string;
  /** Bodies of at least this many bytes go through sendFile (default 64 KiB); smaller ones through Node. */
  sendFileMin?: number;
  /** adopt() options for the connections (e.g. { backend: 'copy' }). */
  adoptOptions?: AdoptOptions;
}

export interface FileServer {
  readonly server: http.Server;
  readonly port: number;
  /** Responses whose body went through sendFile, through Node, and that failed. */
  readonly counts: { sendFile: number; node: number; failed: number };
  close(): Promise<void>;
}

const EMPTY = Buffer.alloc(0);

export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const root = path.resolve(options.root);
  const min = options.sendFileMin ?? 64 * 1024;
  const counts = { sendFile: 0, node: 0, failed: 0 };
  // One ZeroCopySocket per connection, adopted at its first large body; it closes itself when
  // Node closes the socket (its 'close' event).
  const adopted = new WeakMap<net.Socket, ZeroCopySocket>();
  const zsOf = (sock: net.Socket): ZeroCopySocket => {
    let zs = adopted.get(sock);
    if (zs === undefined || zs.closed) {
      zs = adopt(sock, options.adoptOptions);
      adopted.set(sock, zs);
    }
    return zs;
  };

  const server = http.createServer((req, res) => {
    void serve(req, res).catch((e: unknown) => {
      counts.failed++;
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end(String((e as Error).message ?? e));
      } else {
        res.destroy(e as Error); // the body is cut: the framing is broken, the connection goes
      }
    });
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const file = path.join(root, path.normalize(decodeURIComponent(url.pathname)));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    let st;
    try {
      st = await fsp.stat(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    if (!st.isFile()) {
      res.writeHead(404).end();
      return;
    }
    // One byte range (bytes=a-b, a-, -n), else the whole file.
    let offset = 0;
    let length = st.size;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range !== null && (range[1] !== '' || range[2] !== '')) {
      const a = range[1] === '' ? Math.max(0, st.size - Number(range[2])) : Number(range[1]);
      const b = range[1] === '' || range[2] === '' ? st.size - 1 : Math.min(Number(range[2]), st.size - 1);
      if (a > b || a >= st.size) {
        res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end();
        return;
      }
      offset = a;
      length = b - a + 1;
      status = 206;
      res.setHeader('content-range', `bytes ${a}-${b}/${st.size}`);
    }
    res.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': length,
      'accept-ranges': 'bytes',
      'last-modified': st.mtime.toUTCString(),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const sock = res.socket as net.Socket | null;
    if (length < min || sock === null) {
      counts.node++;
      const r = createReadStream(file, { start: offset, end: offset + length - 1 });
      r.on('error', (e) => res.destroy(e));
      r.pipe(res);
      return;
    }
    // 1. The headers to the kernel, through Node.
    res.flushHeaders();
    await new Promise<void>((resolve, reject) => sock.write(EMPTY, (e) => (e ? reject(e) : resolve())));
    // 2. The body, through uring-zc (rejects if the file was cut short or the peer went away).
    await zsOf(sock).sendFile(file, { offset, length });
    counts.sendFile++;
    // 3. Node ends the response: no bytes, keep-alive goes on.
    res.end();
  }

  server.keepAliveTimeout = 5_000;
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Run when executed, not when imported (the test imports startFileServer).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? process.cwd();
  const port = Number(process.argv[3] ?? 8080);
  const s = await startFileServer({ root, port });
  console.log(`serving ${path.resolve(root)} on http://127.0.0.1:${s.port}/ (files of 64 KiB and more through zs.sendFile)`);
  process.once('SIGINT', () => void s.close());
}
