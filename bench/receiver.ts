/**
 * The TCP receiver of the tcp-loopback and tcp-veth scenarios: a process of its own that accepts
 * connections, reads and discards every byte, and counts them.
 *
 *   node dist/bench/receiver.js --host 127.0.0.1 [--port 0]
 *
 * Prints `{"port":N}` once listening. On SIGTERM, SIGINT or end of stdin it prints
 * `{"bytes":N,"connections":M}` and exits. Reads go into one reused 256 KiB buffer (net.Socket's
 * `onread` option), so the receiver allocates nothing per read and stays out of the sender's way
 * as far as a Node process can.
 */
import net from 'node:net';

const READ_BUFFER = 256 * 1024;

function main(argv: readonly string[]): void {
  let host = '127.0.0.1';
  let port = 0;
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1];
    if (argv[i] === '--host' && v !== undefined) host = v;
    else if (argv[i] === '--port' && v !== undefined && /^\d+$/.test(v) && Number(v) <= 65535) port = Number(v);
    else {
      process.stderr.write(`receiver: bad arguments ${argv.join(' ')}\n`);
      process.exit(2);
    }
  }
  let bytes = 0;
  let connections = 0;
  const buf = Buffer.allocUnsafe(READ_BUFFER);
  const count = (n: number): boolean => {
    bytes += n;
    return true;
  };
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    connections++;
    const sock = discarding(accepted, buf, count);
    sock.on('error', () => sock.destroy());
    sock.on('end', () => sock.end());
  });
  server.on('error', (e) => {
    process.stderr.write(`receiver: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(port, host, () => {
    const addr = server.address() as net.AddressInfo;
    process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
  });
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    process.stdout.write(`${JSON.stringify({ bytes, connections })}\n`, () => process.exit(0));
  };
  process.on('SIGTERM', finish);
  process.on('SIGINT', finish);
  process.stdin.on('end', finish);
  process.stdin.on('error', finish);
  process.stdin.resume();
}

/**
 * The accepted socket re-wrapped with `onread` (net.Server has no such option): its handle moves
 * to a new net.Socket that reads into `buf`. Falls back to 'data' events where the handle is not
 * reachable.
 */
function discarding(accepted: net.Socket, buf: Buffer, count: (n: number) => boolean): net.Socket {
  const internal = accepted as unknown as { _handle: unknown };
  const handle = internal._handle;
  if (handle !== null && typeof handle === 'object') {
    internal._handle = null;
    const sock = new net.Socket({ handle, onread: { buffer: buf, callback: count } } as net.SocketConstructorOpts);
    sock.resume();
    return sock;
  }
  accepted.on('data', (d: Buffer) => count(d.length));
  accepted.resume();
  return accepted;
}

main(process.argv.slice(2));
