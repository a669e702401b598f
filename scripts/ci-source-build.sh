#!/usr/bin/env bash
# .ci/run part: the fallback where no prebuild may be used (npm install --build-from-source, as
# on musl or another architecture), on the registry's Node MAJOR (default 24) with its own
# headers, a clean HOME (no nodedir in ~/.npmrc) and no network but the registry: the install
# must build the addon (only the addon: not the bench's sender, not the test launcher) against
# that Node's include/node without downloading headers, and the built addon must send 64 MiB intact.
CI_PART=source-build
source "$(dirname "$0")/ci-lib.sh"
major="${1:-24}"
t="$(tarball)"
nd="$(node_dir x64 "$major")"
home="$(scratch home)"
proj="$(scratch proj)"
cd "$proj"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$nd/bin:$PATH" npm install --no-audit --no-fund --build-from-source --foreground-scripts "$t" >install.log 2>&1 || { cat install.log >&2; die "npm install --build-from-source on Node $major"; }
pkg="$proj/node_modules/uring-zc"
grep -q "uring-zc: a build from source was asked for; building it from source against $nd" install.log || { cat install.log >&2; die "the install did not say it built against $nd"; }
if grep -q "gyp http GET" install.log; then die "node-gyp downloaded headers"; fi
[[ -f "$pkg/build/Release/uring_zc.node" ]] || die "no build/Release/uring_zc.node"
for tool in uzc_ref_sender uzc_no_uring; do [[ ! -e "$pkg/build/Release/$tool" ]] || die "the user's build compiled $tool"; done
grep -q "\"nodedir\": \"$nd\"" "$pkg/build/config.gypi" || die "build/config.gypi does not name $nd as nodedir"
log "Node $("$nd/bin/node" --version): built from source against $nd/include/node (no download; addon only)"
cp "$ROOT/scripts/ci-smoke.mjs" smoke.mjs
out="$(as_user "$home" "$nd/bin:$PATH" node smoke.mjs 64)" || die "smoke: $out"
[[ "$out" == *'"addon":"build/Release/uring_zc.node"'* ]] || die "the smoke did not use the source build: $out"
log "smoke: $out"
