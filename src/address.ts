/**
 * Destination addresses: IP literal + port -> struct sockaddr_in / sockaddr_in6 bytes, as the
 * kernel reads them from a send's addr2. Only IP literals: resolving names is the caller's job
 * (dns.lookup), so that a send never waits on DNS.
 */
import net from 'node:net';
import { UringZcArgumentError } from './errors.js';
import { AF_INET, AF_INET6 } from './uapi.js';

/**
 * Encodes `address:port` for a socket of `domain`. An IPv4 address on an AF_INET6 socket becomes
 * the v4-mapped IPv6 address (::ffff:a.b.c.d), as Node's dgram does.
 */
export function encodeSockaddr(address: string, port: number, domain: number): Buffer {
  const family = net.isIP(address);
  if (family === 0) {
    throw new UringZcArgumentError(`"address" must be an IPv4 or IPv6 literal, got ${JSON.stringify(address)} (resolve names with dns.lookup first)`);
  }
  if (domain === AF_INET) {
    if (family !== 4) throw new UringZcArgumentError(`"address" ${address} is IPv6 but the socket is IPv4 (udp4)`);
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    writeIPv4(b, 4, address);
    return b;
  }
  if (domain !== AF_INET6) throw new UringZcArgumentError('"address" is only allowed on IPv4 and IPv6 sockets');
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  if (family === 4) {
    b[18] = 0xff;
    b[19] = 0xff;
    writeIPv4(b, 20, address);
  } else {
    const pct = address.indexOf('%');
    const text = pct < 0 ? address : address.slice(0, pct);
    writeIPv6(b, 8, text);
    if (pct >= 0) {
      const scope = Number(address.slice(pct + 1));
      if (!Number.isInteger(scope) || scope < 0 || scope > 0xffffffff) {
        throw new UringZcArgumentError(`"address" scope id must be numeric, got ${JSON.stringify(address.slice(pct + 1))}`);
      }
      b.writeUInt32LE(scope, 24);
    }
  }
  return b;
}

function writeIPv4(b: Buffer, at: number, text: string): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) b[at + i] = Number(parts[i]);
}

function writeIPv6(b: Buffer, at: number, text: string): void {
  // net.isIP accepted it, so the shape is valid: groups, one optional '::', an optional IPv4 tail.
  let groups: number[] = [];
  const expand = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const dbl = text.indexOf('::');
  if (dbl < 0) {
    groups = expand(text);
  } else {
    const head = expand(text.slice(0, dbl));
    const tail = expand(text.slice(dbl + 2));
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  for (let i = 0; i < 8; i++) b.writeUInt16BE(groups[i]!, at + 2 * i);
}
