/**
 * Where the package's compiled files are, in one place: the native addon and the two executables
 * (the bench's C reference sender, the tests' no-io_uring launcher).
 *
 * Two layouts hold them:
 * - `build/Release/` — a source build: a checkout's `npm ci` / `npm run build` (addon and both
 *   executables), or an install where no prebuild fits (the addon only).
 * - `prebuilds/<platform>-<arch>/` — the npm package's prebuilt files (scripts/prebuild.mjs):
 *   the addon as `uring_zc.napi.glibc.node` (one Node-API binary for every Node version) and
 *   `uzc_ref_sender`. The launcher is a test tool and is not shipped.
 *
 * `build/Release/` wins where both exist, so a contributor's fresh build is never shadowed by a
 * prebuild left from an earlier `npm pack`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root directory (dist/src/binaries.js -> ../../; src/binaries.ts is never run directly). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The prebuilt platforms the npm package carries (scripts/prebuild.mjs builds exactly these). */
export const PREBUILT_PLATFORMS = ['linux-x64', 'linux-arm64'] as const;

const require = createRequire(import.meta.url);

/** node-gyp-build's loader: build/Release, build/Debug, then the best-matching prebuilds/ file. */
interface NodeGypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

/**
 * Loads the addon, or throws node-gyp-build's error ("No native build was found for
 * platform=… arch=… libc=…") for native.ts to explain.
 */
export function loadAddon(): unknown {
  return (require('node-gyp-build') as NodeGypBuild)(PACKAGE_ROOT);
}

/** The addon file that loadAddon() loads (for a test that stages a copy of the package). */
export function addonPath(): string {
  return (require('node-gyp-build') as NodeGypBuild).resolve(PACKAGE_ROOT);
}

/** An executable the package may carry. */
export type Tool = 'uzc_ref_sender' | 'uzc_no_uring';

/** This machine's prebuilds/ directory name (node-gyp-build's naming). */
const PLATFORM = `${process.platform}-${process.arch}`;

/** The executable's path (build/Release first, then this platform's prebuild), or null. */
export function toolPath(name: Tool): string | null {
  for (const p of [path.join(PACKAGE_ROOT, 'build', 'Release', name), path.join(PACKAGE_ROOT, 'prebuilds', PLATFORM, name)]) {
    if (existsSync(p)) return p;
  }
  return null;
}

/** Why toolPath(name) is null: what is missing and how to get it. */
export function toolMissingReason(name: Tool): string {
  const checkout = existsSync(path.join(PACKAGE_ROOT, 'tsconfig.json'));
  if (checkout) return `${name} is not built (no ${path.join(PACKAGE_ROOT, 'build', 'Release', name)}; run npm run build)`;
  if (name === 'uzc_no_uring') return `${name} is a test tool of the repository; the npm package does not carry it`;
  const prebuilt = (PREBUILT_PLATFORMS as readonly string[]).includes(PLATFORM);
  return prebuilt
    ? `${name} is missing from this package (expected ${path.join(PACKAGE_ROOT, 'prebuilds', PLATFORM, name)})`
    : `the package carries ${name} prebuilt for ${PREBUILT_PLATFORMS.join(' and ')} only, not ${PLATFORM}; build it in a checkout of the repository (npm ci)`;
}
