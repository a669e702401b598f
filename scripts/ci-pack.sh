#!/usr/bin/env bash
# .ci/run part: `npm pack` (prepack builds prebuilds/ for linux-x64 and linux-arm64, prepare
# compiles the TypeScript), then checks the tarball carries what a user needs and nothing else.
CI_PART=pack
source "$(dirname "$0")/ci-lib.sh"
rm -rf "$CACHE/pack" && mkdir -p "$CACHE/pack"
(cd "$ROOT" && npm pack --pack-destination "$CACHE/pack" --json >"$CACHE/pack/contents.json") || die "npm pack"
t="$(tarball)"
log "$(basename "$t"): $(du -k "$t" | cut -f1) KiB"
node - "$CACHE/pack/contents.json" <<'JS'
const [info] = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
const files = info.files.map((f) => f.path);
const must = [
  'LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'binding.gyp', 'scripts/install.mjs',
  'dist/src/index.js', 'dist/src/index.d.ts', 'dist/bench/cli.js', 'dist/examples/tcp-pool.js', 'examples/tcp-pool.ts',
  'prebuilds/linux-x64/uring-zc.glibc.node', 'prebuilds/linux-x64/uzc_ref_sender',
  'prebuilds/linux-arm64/uring-zc.glibc.node', 'prebuilds/linux-arm64/uzc_ref_sender',
  'src/native/addon.c', 'src/native/uzc.h',
];
const missing = must.filter((f) => !files.includes(f));
// Nothing of the repository's own: tests, test tools, TypeScript sources of the library, CI, maps.
const forbidden = files.filter((f) => /^(test|dist\/test|\.ci|build)\/|\.map$|^src\/[^/]+\.ts$|^bench\/|no-uring|tsconfig|^scripts\/(ci-|prebuild|prepare)/.test(f));
console.error(`pack: ${files.length} files, ${info.size} bytes packed, ${info.unpackedSize} unpacked`);
if (missing.length || forbidden.length) {
  console.error(`pack: FAILED: missing ${JSON.stringify(missing)}, not for users ${JSON.stringify(forbidden)}`);
  process.exit(1);
}
JS
