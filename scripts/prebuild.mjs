#!/usr/bin/env node
/**
 * Builds the npm package's prebuilt binaries into prebuilds/ (run by `prepack`, so `npm pack` and
 * `npm publish` carry them; prebuilds/ is not in git):
 *
 *   prebuilds/linux-x64/uring-zc.glibc.node     the addon (Node-API: one file for every Node >= 20)
 *   prebuilds/linux-x64/uzc_ref_sender          the bench's C reference sender
 *   prebuilds/linux-arm64/…                     the same, cross-compiled with Debian's gcc-aarch64-linux-gnu
 *
 * prebuildify runs node-gyp in a staging copy of the native sources, so a contributor's
 * build/Release (which node-gyp-build prefers) is left as it was. Headers: the running Node's own
 * (include/node next to its binary) or npm_config_nodedir; nothing is downloaded. A missing cross
 * compiler is installed with apt-get where that is possible (root on Debian), else the script
 * stops and says what to install. URING_ZC_PREBUILD_ARCHS=x64 (comma-separated) builds fewer; a
 * git-URL install (npm runs prepack then) builds only this machine's architecture.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = path.join(ROOT, 'prebuilds');

/** Per architecture: the compilers to use and the ELF e_machine its files must have. */
const ARCHS = {
  // libc6-dev-*-cross: the C library's headers for the target (the cross gcc only recommends
  // them, and --no-install-recommends leaves them out).
  x64: { triplet: 'x86_64-linux-gnu', machine: 62, apt: ['gcc-x86-64-linux-gnu', 'libc6-dev-amd64-cross'] },
  arm64: { triplet: 'aarch64-linux-gnu', machine: 183, apt: ['gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross'] },
};

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

// Children write to our stderr: prepack's stdout is the output of `npm pack --json`, which
// scripts/ci-pack.sh (and any caller) parses.
const TO_STDERR = [0, 2, 2];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: TO_STDERR, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

/** Is `cmd` an executable in a PATH directory? (No shell: PATH may not have one.) */
function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir || '.', cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The Node headers to build against, without downloading: the running Node's, or npm_config_nodedir. */
function nodeDir() {
  const own = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(own, 'include', 'node', 'node_api.h'))) return own;
  const cfg = process.env.npm_config_nodedir;
  if (cfg && existsSync(path.join(cfg, 'include', 'node', 'node_api.h'))) return cfg;
  return fail(`no Node headers next to ${process.execPath} (include/node) and npm_config_nodedir is not set to a directory with them`);
}

/** node-gyp: npm's own (npm sets npm_config_node_gyp in scripts), else the one beside this Node's npm. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  const found = candidates.find((p) => p !== undefined && existsSync(p));
  return found ?? fail('node-gyp not found (run this through npm: npm run prebuild)');
}

/** The compilers for `arch`: the plain ones on a host of that arch, else the Debian cross compilers. */
function compilers(arch) {
  const a = ARCHS[arch];
  // LINK: the addon and the sender are C only; gyp's Makefile would link with $(CXX).
  if (arch === os.arch()) return { CC: 'cc', LINK: 'cc', STRIP: 'strip' };
  const cc = `${a.triplet}-gcc`;
  // A cross compiler without the target's libc headers fails in node-gyp with "bits/...: No such file".
  if (!onPath(cc) || !existsSync(`/usr/${a.triplet}/include/stdio.h`)) {
    const canApt = process.getuid?.() === 0 && onPath('apt-get');
    if (!canApt) fail(`no cross compiler for ${arch}: install ${a.apt.join(' ')} (Debian/Ubuntu), or build fewer with URING_ZC_PREBUILD_ARCHS=${os.arch()}`);
    console.error(`prebuild: installing ${a.apt.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...a.apt], { stdio: TO_STDERR, env }).status === 0;
    if (!install()) {
      run('apt-get', ['update'], { env });
      if (!install()) fail(`apt-get could not install ${a.apt.join(' ')}`);
    }
  }
  return { CC: cc, LINK: cc, STRIP: `${a.triplet}-strip` };
}

/** The ELF e_machine of `file` (bytes 18-19, little-endian). */
function elfMachine(file) {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(20);
    readSync(fd, b, 0, 20, 0);
    if (b.readUInt32BE(0) !== 0x7f454c46) return -1;
    return b.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

/** The newest glibc symbol version the addon may require (what Node >= 20's binaries require). */
const ADDON_GLIBC_MAX = '2.28';

/** The newest GLIBC_x.y version `file` requires (readelf, from binutils), or null where unknown. */
function glibcNeeded(file) {
  const r = spawnSync('readelf', ['-V', '--wide', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const versions = [...r.stdout.matchAll(/Name: GLIBC_([0-9.]+)/g)].map((m) => m[1]);
  return versions.reduce((max, v) => (max === null || versionAbove(v, max) ? v : max), null);
}

function versionAbove(a, b) {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) > (pb[i] ?? 0);
  }
  return false;
}

// `npm pack` / `npm publish` (and a direct run) build every platform. npm also runs prepack when it
// installs the package from a git URL: there only this machine's architecture is built (no cross
// compiler, no apt-get in a user's install), which is all that install loads.
const forRelease = process.env.npm_command === undefined || ['pack', 'publish'].includes(process.env.npm_command);
const defaultArchs = forRelease ? 'x64,arm64' : os.arch();
const wanted = (process.env.URING_ZC_PREBUILD_ARCHS ?? defaultArchs).split(',').map((s) => s.trim()).filter(Boolean);
for (const a of wanted) if (!(a in ARCHS)) fail(`unknown architecture ${a} in URING_ZC_PREBUILD_ARCHS (known: ${Object.keys(ARCHS).join(', ')})`);
if (process.platform !== 'linux') fail('prebuilds are built on Linux');

const headers = nodeDir();
const gyp = nodeGyp();
const prebuildify = path.join(ROOT, 'node_modules', 'prebuildify', 'bin.js');
if (!existsSync(prebuildify)) fail('prebuildify is not installed (npm ci)');

rmSync(OUT, { recursive: true, force: true });
const stage = mkdtempSync(path.join(os.tmpdir(), 'uzc-prebuild-'));
try {
  // Only what binding.gyp compiles, so the build cannot pick up anything else of the checkout.
  for (const p of ['binding.gyp', 'src/native', 'bench/ref/sender.c']) cpSync(path.join(ROOT, p), path.join(stage, p), { recursive: true });
  writeFileSync(path.join(stage, 'package.json'), '{ "name": "uring-zc" }\n');

  for (const arch of wanted) {
    const t0 = Date.now();
    const cc = compilers(arch);
    const env = {
      ...process.env,
      ...cc,
      npm_config_nodedir: headers,
      // binding.gyp's variable for the executables (node-gyp passes its options to gyp as -D).
      npm_config_uzc_tools: '1',
      PREBUILD_NODE_GYP: gyp,
      PREBUILD_STRIP_BIN: cc.STRIP,
    };
    rmSync(path.join(stage, 'build'), { recursive: true, force: true });
    run(process.execPath, [prebuildify, '--napi', '--tag-libc', '--strip', `--arch=${arch}`, `--out=${ROOT}`, `--cwd=${stage}`, '--quiet'], { env, cwd: stage });
    const dir = path.join(OUT, `linux-${arch}`);
    const sender = path.join(stage, 'build', 'Release', 'uzc_ref_sender');
    if (!existsSync(sender)) fail(`${sender} was not built (binding.gyp's uzc_tools variable did not reach gyp)`);
    mkdirSync(dir, { recursive: true });
    cpSync(sender, path.join(dir, 'uzc_ref_sender'));
    run(cc.STRIP, ['--strip-all', path.join(dir, 'uzc_ref_sender')]);
    for (const f of ['uring-zc.glibc.node', 'uzc_ref_sender']) {
      const file = path.join(dir, f);
      if (!existsSync(file)) fail(`${file} is missing after the build`);
      const m = elfMachine(file);
      if (m !== ARCHS[arch].machine) fail(`${file} is ELF machine ${m}, not ${ARCHS[arch].machine} (${arch})`);
    }
    // Node >= 20's own Linux binaries need glibc 2.28; the addon must not ask for more, or it
    // would not load where Node runs (a newer symbol version slips in with a new libc call).
    const need = glibcNeeded(path.join(dir, 'uring-zc.glibc.node'));
    if (need !== null && versionAbove(need, ADDON_GLIBC_MAX)) fail(`the addon needs GLIBC_${need}, above GLIBC_${ADDON_GLIBC_MAX} (Node's own floor): find the call with readelf -V --wide`);
    const size = (f) => `${f} ${(statSync(path.join(dir, f)).size / 1024).toFixed(0)} KiB`;
    console.error(`prebuild: linux-${arch}: ${size('uring-zc.glibc.node')}, ${size('uzc_ref_sender')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
