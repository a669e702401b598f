/**
 * The child processes the bench starts (workers, C senders, receivers): tracked by pid so that
 * SIGINT or a failure stops exactly these and nothing else, each run bounded by a timeout.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

/** Remembers `child` until it exits. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  // A child that cannot start reports through 'error'; the caller sees it as a failed run.
  child.once('error', () => live.delete(child));
  return child;
}

/** Kills every child this process started and that is still running (by pid, SIGKILL). */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

/** A child's output once it has exited. */
export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Collects stdout/stderr of `child` until it exits; SIGKILLs it after `timeoutMs`. */
export function finish(child: ChildProcess, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let settled = false;
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    };
    child.once('close', done);
    child.once('error', (e) => {
      stderr += `${e.message}\n`;
      done(null, null);
    });
  });
}

/** Waits for the first stdout line of a long-running child (a receiver's `{"port":N}`). */
export function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`no output within ${timeoutMs} ms${err ? `: ${err.trim()}` : ''}`)), timeoutMs);
    const onData = (d: string): void => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        cleanup();
        resolve(buf.slice(0, nl));
      }
    };
    const onErr = (d: string): void => {
      err += d;
    };
    const onExit = (code: number | null): void => fail(new Error(`exited with status ${String(code)}${err ? `: ${err.trim()}` : ''}`));
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Asks a long-running child to stop (SIGTERM), and kills it if it has not within `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
