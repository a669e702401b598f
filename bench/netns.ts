/**
 * Network namespaces the tests and the benchmark create for themselves (root only):
 *
 * - a zero-copy sink: an IFB device in its own namespace. Datagrams routed into it are dropped
 *   by the device without a copy, so the kernel reports true zero copy (loopback always copies).
 * - a veth pair between two namespaces, for TCP that crosses a (virtual) link.
 *
 * Every namespace made here is removed by its dispose(); names carry the pid so that parallel
 * runs never collide and leftovers are recognisable.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Why namespaces cannot be made here, or null when they can (root, iproute2, netns support). */
export function netnsUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root (network namespaces need CAP_SYS_ADMIN)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  const probe = `uzcprobe${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `ip netns add failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

let counter = 0;
function uniqueName(prefix: string): string {
  // UZC_NETNS_PREFIX: a prefix of the caller's (a shared machine's naming rule), e.g. "sf-".
  return `${process.env.UZC_NETNS_PREFIX ?? ''}${prefix}${process.pid}x${counter++}`;
}

/** A namespace with an IFB sink: send UDP to `destination` from inside (`exec`). */
export interface SinkNamespace {
  readonly name: string;
  /** 198.18.0.2: routed into the sink device, where every packet is dropped without a copy. */
  readonly destination: string;
  /** Runs `argv` inside the namespace. */
  spawn(argv: string[], options?: SpawnOptions): ChildProcess;
  dispose(): void;
}

/** Creates the IFB sink namespace (198.18.0.1/24 on sink0, MTU 65535). */
export function createSink(): SinkNamespace {
  const name = uniqueName('uzcsink');
  ip('netns', 'add', name);
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', 'sink0', 'type', 'ifb');
    ip('-n', name, 'link', 'set', 'sink0', 'up', 'mtu', '65535');
    ip('-n', name, 'addr', 'add', '198.18.0.1/24', 'dev', 'sink0');
  } catch (e) {
    deleteNamespace(name);
    throw e;
  }
  return {
    name,
    destination: '198.18.0.2',
    spawn: (argv, options = {}) => spawn('ip', ['netns', 'exec', name, ...argv], options),
    dispose: () => deleteNamespace(name),
  };
}

/** A namespace with only its loopback, up: for what must not touch the host's network settings. */
export interface LoopbackNamespace {
  readonly name: string;
  /** Runs `argv` inside the namespace. */
  spawn(argv: string[], options?: SpawnOptions): ChildProcess;
  /** Sets a sysctl of the namespace (e.g. net.core.optmem_max, which is per namespace). */
  sysctl(key: string, value: string): void;
  dispose(): void;
}

export function createLoopbackNamespace(): LoopbackNamespace {
  const name = uniqueName('uzclo');
  ip('netns', 'add', name);
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (e) {
    deleteNamespace(name);
    throw e;
  }
  return {
    name,
    spawn: (argv, options = {}) => spawn('ip', ['netns', 'exec', name, ...argv], options),
    sysctl: (key, value) => ip('netns', 'exec', name, 'sysctl', '-q', '-w', `${key}=${value}`),
    dispose: () => deleteNamespace(name),
  };
}

/** Two namespaces joined by a veth pair: `a` has 198.19.0.1, `b` has 198.19.0.2. */
export interface VethPair {
  readonly a: string;
  readonly b: string;
  readonly addressA: string;
  readonly addressB: string;
  spawnIn(ns: 'a' | 'b', argv: string[], options?: SpawnOptions): ChildProcess;
  dispose(): void;
}

/** Creates namespaces a and b joined by veth (198.19.0.1/24 <-> 198.19.0.2/24, MTU 65535 where allowed). */
export function createVethPair(): VethPair {
  const a = uniqueName('uzcva');
  const b = uniqueName('uzcvb');
  ip('netns', 'add', a);
  try {
    ip('netns', 'add', b);
    ip('-n', a, 'link', 'set', 'lo', 'up');
    ip('-n', b, 'link', 'set', 'lo', 'up');
    ip('-n', a, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', b);
    ip('-n', a, 'addr', 'add', '198.19.0.1/24', 'dev', 'veth0');
    ip('-n', b, 'addr', 'add', '198.19.0.2/24', 'dev', 'veth1');
    ip('-n', a, 'link', 'set', 'veth0', 'up');
    ip('-n', b, 'link', 'set', 'veth1', 'up');
  } catch (e) {
    deleteNamespace(a);
    deleteNamespace(b);
    throw e;
  }
  return {
    a,
    b,
    addressA: '198.19.0.1',
    addressB: '198.19.0.2',
    spawnIn: (ns, argv, options = {}) => spawn('ip', ['netns', 'exec', ns === 'a' ? a : b, ...argv], options),
    dispose: () => {
      deleteNamespace(a);
      deleteNamespace(b);
    },
  };
}

function deleteNamespace(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
  } catch {
    // Already gone.
  }
}

/** Namespaces this process made that still exist (tests assert this is empty at the end). */
export function leftoverNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const mine = [`uzcsink${process.pid}x`, `uzcva${process.pid}x`, `uzcvb${process.pid}x`, `uzclo${process.pid}x`];
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => mine.some((p) => n.startsWith(p)));
}

