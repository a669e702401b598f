/** Starting and stopping bench/receiver.ts for the TCP scenarios. */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { firstLine, stop, track } from '../procs.js';

const RECEIVER = fileURLToPath(new URL('../receiver.js', import.meta.url));

export interface Receiver {
  readonly child: ChildProcess;
  readonly port: number;
}

/** Spawns the receiver through `spawnIt` (here or in a namespace) and waits for its port. */
export async function startReceiver(spawnIt: (argv: readonly string[]) => ChildProcess, host: string): Promise<Receiver> {
  const child = track(spawnIt([process.execPath, RECEIVER, '--host', host, '--port', '0']));
  child.stderr?.resume();
  try {
    const line = await firstLine(child, 10_000);
    const { port } = JSON.parse(line) as { port: number };
    if (!Number.isInteger(port) || port <= 0) throw new Error(`bad first line ${line}`);
    return { child, port };
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`the TCP receiver did not start: ${(e as Error).message}`);
  }
}

export async function stopReceiver(r: Receiver): Promise<void> {
  r.child.stdin?.end();
  await stop(r.child);
}
