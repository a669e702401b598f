# Shared by the scripts/ci-*.sh parts of .ci/run (sourced, not run).
#
# CACHE (default .ci-cache/ in the checkout, git-ignored; URING_ZC_CI_CACHE overrides) keeps what
# can be reused within a run and across runs: the Node binaries from the registry, the packed
# tarball.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${URING_ZC_CI_CACHE:-$ROOT/.ci-cache}"
mkdir -p "$CACHE/node"

log() { printf '%s: %s\n' "${CI_PART:-ci}" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# Scratch directories (scratch NAME prints a new one) live under one directory of this part,
# removed when the part exits, however it exits. It is outside the checkout (the system temp
# dir): a user's project inside it would resolve what it lacks from the checkout's node_modules
# (typescript, @types/node) and prove nothing.
PART_TMP="$(mktemp -d "${TMPDIR:-/tmp}/uzc-ci-${CI_PART:-ci}.XXXXXX")"
trap 'rm -rf "$PART_TMP"' EXIT
# Mode 755 (mktemp makes 700): the suite's unprivileged children (memlock, pinning) run node and
# read their files as another uid from where the matrix stages the checkout.
chmod 755 "$PART_TMP"
scratch() { local d; d="$(mktemp -d "$PART_TMP/${1:-s}.XXXXXX")"; chmod 755 "$d"; printf '%s\n' "$d"; }

# node_dir ARCH MAJOR -> the directory of the registry's node-linux-ARCH@MAJOR package (bin/node,
# include/node), fetched once with `npm pack` into CACHE/node.
node_dir() {
  local arch="$1" major="$2" dir="$CACHE/node/$1-$2"
  if [[ ! -x "$dir/bin/node" ]]; then
    local dl; dl="$(scratch dl)"
    log "fetching node-linux-$arch@$major from the registry"
    (cd "$dl" && npm pack --silent "node-linux-$arch@$major" >/dev/null) || die "npm pack node-linux-$arch@$major"
    rm -rf "$dir.part" && mkdir -p "$dir.part"
    tar xzf "$dl"/node-linux-"$arch"-*.tgz -C "$dir.part" --strip-components=1
    rm -rf "$dir" && mv "$dir.part" "$dir"
  fi
  printf '%s\n' "$dir"
}

# The tarball scripts/ci-pack.sh made.
tarball() {
  local t; t="$(ls "$CACHE"/pack/uring-zc-*.tgz 2>/dev/null | head -1)"
  [[ -n "$t" ]] || die "no tarball in $CACHE/pack: run scripts/ci-pack.sh first"
  printf '%s\n' "$t"
}

# A PATH directory with node, npm and npx from NODE_BIN (a directory) and sh (npm runs scripts
# with it), nothing else: no cc, gcc, make, python3 (Debian's /bin is /usr/bin, so no system
# directory may be on it).
bare_path() {
  local nodebin="$1" d; d="$(scratch path)"
  ln -s "$(command -v sh)" "$d/sh"
  ln -s "$nodebin/node" "$d/node"
  ln -s "$(command -v npm)" "$d/npm"
  ln -s "$(command -v npx)" "$d/npx"
  printf '%s\n' "$d"
}

# Runs "$@" like a new user: an empty HOME (no ~/.npmrc, so no nodedir=/usr), no npm_config_*
# inherited from a surrounding npm, the given PATH. npm's cache goes to the run's cache dir so a
# second install in the same run does not download again.
# NODE_EXTRA_CA_CERTS: the registry's Node binaries trust only their bundled CA list, while this
# machine may reach the registry through a proxy its own CA store trusts (Debian's Node uses that
# store); without it npm under such a Node retried every request for minutes.
as_user() {
  local home="$1" path="$2" ca=(); shift 2
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
  env -i HOME="$home" PATH="$path" TERM=dumb LANG=C.UTF-8 "${ca[@]}" \
    npm_config_cache="$CACHE/npm-cache" npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
    "$@"
}
