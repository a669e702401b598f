#!/usr/bin/env bash
# .ci/run part: the shipped .d.ts in a strict TypeScript project of a user, with TypeScript 6
# and the newest (7): installed from the tarball into an empty project (a clean HOME, so only
# what the package declares comes along, @types/node through its peer dependency), compiled
# with nothing but "strict" (TypeScript 6 defaults to "types": [], the cause of `Cannot find name
# 'Buffer'`), and again with "module": "nodenext". A @ts-expect-error line proves the types are
# real: were the package's types `any`, the unused directive would fail the compile.
CI_PART=types
source "$(dirname "$0")/ci-lib.sh"
t="$(tarball)"
home="$(scratch home)"
proj="$(scratch proj)"
cd "$proj"
printf '{ "name": "ts-user", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$PATH" npm install --no-audit --no-fund "$t" ts6@npm:typescript@6 ts-latest@npm:typescript@latest >install.log 2>&1 || { cat install.log >&2; die "npm install"; }
cat >index.ts <<'TS'
import net from 'node:net';
import dgram from 'node:dgram';
import { adopt, capabilities, Ring, UringZcError, type Capabilities, type SendResult, type ZeroCopySocket } from 'uring-zc';

const caps: Capabilities = capabilities();
const backend: string = caps.backend;
const ring = new Ring({ entries: 8 });
const pool = ring.createBufferPool({ bufferSize: 4096, count: 2 });
const b: Buffer | null = pool.acquire();
const tcp: ZeroCopySocket = ring.adopt(net.connect(9, '127.0.0.1'));
const r: Promise<SendResult> = tcp.send(b ?? Buffer.alloc(1));
const udp = adopt(dgram.createSocket('udp4'), { receive: false });
udp.send(Buffer.alloc(8), { address: '127.0.0.1', port: 9 }, (err: Error | null, bytes: number, zeroCopy: boolean) => {
  if (err instanceof UringZcError) console.log(err.code, bytes, zeroCopy);
});
// @ts-expect-error send() takes a Buffer, not a number
void tcp.send(42);
void r.then((x) => x.bytes + x.zeroCopy.toString().length + backend.length);
TS
printf '{ "compilerOptions": { "strict": true, "noEmit": true }, "files": ["index.ts"] }\n' >tsconfig.json
printf '{ "compilerOptions": { "strict": true, "noEmit": true, "module": "nodenext" }, "files": ["index.ts"] }\n' >tsconfig.nodenext.json
for ts in ts6 ts-latest; do
  v="$(node node_modules/$ts/bin/tsc --version)"
  for cfg in tsconfig.json tsconfig.nodenext.json; do
    node "node_modules/$ts/bin/tsc" -p "$cfg" || die "$v, $cfg: the package's types do not compile"
    log "$v, $cfg ($(tr -d '\n' <"$cfg" | sed 's/.*"compilerOptions": *//; s/, *"files".*//')): compiles"
  done
done
# The directive must be in the emitted entry point, or the check above proves nothing about it.
grep -q '^/// <reference types="node"' node_modules/uring-zc/dist/src/index.d.ts || die "index.d.ts lost its reference to @types/node"
