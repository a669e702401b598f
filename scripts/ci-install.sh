#!/usr/bin/env bash
# .ci/run part: the packed tarball as a new user gets it. An empty project, a HOME without npm
# config, a PATH with node/npm/npx only (no cc, gcc, make, python3), the registry as the only
# network. The install must use the prebuild (no build/ appears), then: 64 MiB intact over TCP
# loopback through `import { adopt } from 'uring-zc'`, `npx uring-zc capabilities` and
# `--version`, the examples from the installed package; the same without install scripts. Last, where no prebuild may be used
# (--build-from-source) the install must fail with the message that says what to install.
CI_PART=install
source "$(dirname "$0")/ci-lib.sh"
t="$(tarball)"
nodebin="$(dirname "$(command -v node)")"
bp="$(bare_path "$nodebin")"
for tool in cc gcc make python3 c++; do
  if PATH="$bp" command -v "$tool" >/dev/null 2>&1; then die "$tool is on the bare PATH $bp"; fi
done
home="$(scratch home)"
proj="$(scratch proj)"
cd "$proj"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$bp" npm install --no-audit --no-fund "$t" >install.log 2>&1 || { cat install.log >&2; die "npm install of the tarball without a compiler"; }
pkg="$proj/node_modules/uring-zc"
[[ ! -e "$pkg/build" ]] || die "the install built from source ($pkg/build exists)"
[[ -d "$proj/node_modules/@types/node" ]] || die "the peer dependency @types/node was not installed"
log "installed from $(basename "$t") without a compiler (prebuild used; no build/)"

cp "$ROOT/scripts/ci-smoke.mjs" "$proj/smoke.mjs"
out="$(as_user "$home" "$bp" node smoke.mjs 64)" || die "smoke: $out"
log "smoke: $out"
[[ "$out" == *'"addon":"prebuilds/linux-x64/uring-zc.glibc.node"'* ]] || die "the addon was not the prebuild: $out"

caps="$(as_user "$home" "$bp" npx --no-install uring-zc capabilities --json)" || die "npx uring-zc capabilities"
printf '%s\n' "$caps" | node -e 'const c = JSON.parse(require("node:fs").readFileSync(0, "utf8")); if (typeof c.backend !== "string" || !c.cRefSender?.includes("prebuilds/linux-x64/uzc_ref_sender")) { console.error(c); process.exit(1); } console.error(`install: npx uring-zc capabilities: backend ${c.backend}, C sender ${c.cRefSender}`)' || die "capabilities JSON"
ver="$(as_user "$home" "$bp" npx --no-install uring-zc --version)"
want="$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")"
[[ "$ver" == "$want" ]] || die "uring-zc --version printed '$ver', package.json says $want"
log "npx uring-zc --version: $ver"

# The README's runnable example from the installed package: 64 MiB from a registered pool.
ex="$(as_user "$home" "$bp" node node_modules/uring-zc/dist/examples/tcp-pool.js 2>&1)" || die "examples/tcp-pool: $ex"
s="$(printf '%s\n' "$ex" | sed -n 's/^sent \([0-9]*\) bytes, sha256 \([0-9a-f]*\).*/\1 \2/p')"
r="$(printf '%s\n' "$ex" | sed -n 's/^received \([0-9]*\) bytes, sha256 \([0-9a-f]*\).*/\1 \2/p')"
[[ -n "$s" && "$s" == "$r" ]] || die "examples/tcp-pool: sent '$s', received '$r'"
log "examples/tcp-pool.js from the installed package: $r (sent = received)"
ex="$(as_user "$home" "$bp" node node_modules/uring-zc/dist/examples/udp-send.js 2>&1)" || die "examples/udp-send: $ex"
log "examples/udp-send.js: $(printf '%s' "$ex" | tail -1)"

# Where install scripts do not run (npm install --ignore-scripts; npm 11 warns about packages
# not in allowScripts), the prebuild still loads: node-gyp-build finds it at run time.
proj3="$(scratch proj)"
cd "$proj3"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$bp" npm install --no-audit --no-fund --ignore-scripts "$t" >install.log 2>&1 || { cat install.log >&2; die "npm install --ignore-scripts"; }
cp "$ROOT/scripts/ci-smoke.mjs" smoke.mjs
out="$(as_user "$home" "$bp" node smoke.mjs 8)" || die "smoke after --ignore-scripts: $out"
[[ "$out" == *'"addon":"prebuilds/linux-x64/uring-zc.glibc.node"'* ]] || die "after --ignore-scripts, not the prebuild: $out"
log "with --ignore-scripts: the prebuild loads all the same (8 MiB intact)"

# No prebuild allowed and no compiler: the install fails, saying what to install.
proj2="$(scratch proj)"
cd "$proj2"
printf '{ "name": "user-app", "version": "1.0.0", "private": true }\n' >package.json
if as_user "$home" "$bp" npm install --no-audit --no-fund --build-from-source "$t" >install.log 2>&1; then
  die "--build-from-source without a compiler succeeded?"
fi
grep -q "uring-zc: a build from source was asked for; building it from source needs python3, make, a C compiler (cc), not found on PATH." install.log || { cat install.log >&2; die "the failed install did not say what is missing"; }
grep -q "apt-get install python3 make gcc" install.log || die "the failed install did not say how to install the tools"
log "--build-from-source without a compiler fails with: $(grep -m1 'uring-zc: a build' install.log)"
