#!/usr/bin/env bash
# .ci/run part: installs that do not come from the npm tarball, as a user (clean HOME, compilers
# on PATH). An unbuilt checkout installed as a directory (npm links it and runs its prepare
# without its devDependencies) must stop with what to do, not `tsc: not found`; a git URL
# (npm clones, installs the devDependencies, runs prepare) must install and send intact, the
# addon built from source (a git install carries no prebuilds).
CI_PART=git-install
source "$(dirname "$0")/ci-lib.sh"
home="$(scratch home)"
clone="$(scratch clone)/uring-zc"
git clone -q --no-local "$ROOT" "$clone"
rev="$(git -C "$clone" rev-parse --short HEAD)"

proj="$(scratch proj)"
cd "$proj"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
if as_user "$home" "$PATH" npm install --no-audit --no-fund "$clone" >install.log 2>&1; then
  die "installing the unbuilt checkout $clone succeeded without building it?"
fi
grep -q "uring-zc: .* is an unbuilt checkout (no dist/) and TypeScript, a devDependency, is not installed there." install.log || { cat install.log >&2; die "the unbuilt checkout's install did not say what to do"; }
if grep -q "tsc: not found" install.log; then die "tsc: not found"; fi
log "unbuilt checkout ($rev) as a directory: fails with: $(grep -m1 'is an unbuilt checkout' install.log | sed 's/^npm error //')"

proj2="$(scratch proj)"
cd "$proj2"
printf '{ "name": "user-app", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
as_user "$home" "$PATH" npm install --no-audit --no-fund "git+file://$clone" >install.log 2>&1 || { cat install.log >&2; die "npm install git+file://$clone"; }
cp "$ROOT/scripts/ci-smoke.mjs" smoke.mjs
out="$(as_user "$home" "$PATH" node smoke.mjs 16)" || die "smoke: $out"
log "git URL ($rev): installs; smoke: $out"
