/**
 * Helpers of the in-process measuring tools (bench/overhead.ts, bench/vector.ts): each runs itself
 * again with `--child` inside a sink namespace and prints what the child measured.
 */
import { createSink, netnsUnavailableReason } from './netns.js';

/** The integer value of `--name` on the command line (at least 1), or `dflt`. */
export function intArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
}

/** The middle value (the upper one of an even count). */
export const middle = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * Runs `script` with `args` and `--child` inside a fresh sink namespace and returns the JSON line
 * it prints, or null (with the reason on stderr and exit status 2) where namespaces cannot be made.
 */
export async function runChildInSink(tool: string, script: string, args: readonly string[]): Promise<Record<string, unknown> | null> {
  const why = netnsUnavailableReason();
  if (why !== null) {
    console.error(`${tool}: cannot create the sink namespace: ${why}`);
    process.exitCode = 2;
    return null;
  }
  const sink = createSink();
  try {
    const p = sink.spawn([process.execPath, script, '--child', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    if (code !== 0) throw new Error(`${tool} child exited with ${code}`);
    return JSON.parse(out.trim()) as Record<string, unknown>;
  } finally {
    sink.dispose();
  }
}
