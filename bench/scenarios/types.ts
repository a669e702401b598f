/** What a benchmark scenario provides: where the sender runs and where it sends. */
import type { ChildProcess } from 'node:child_process';
import type { ScenarioName } from '../args.js';

/** A scenario that is set up: namespaces made, receiver listening. */
export interface ScenarioEnv {
  readonly name: ScenarioName;
  readonly tcp: boolean;
  /** Destination address and port of every send. */
  readonly dst: string;
  readonly port: number;
  /** Starts `argv` (program first) where the sender runs: inside a namespace or right here. */
  spawnSender(argv: readonly string[]): ChildProcess;
  /** Stops the receiver and removes the namespaces; never throws. */
  dispose(): Promise<void>;
  /** The same at once, synchronously (SIGINT): kills the receiver, removes the namespaces. */
  abort(): void;
}

export interface Scenario {
  readonly name: ScenarioName;
  readonly tcp: boolean;
  /** Needs root and `ip netns`. */
  readonly needsNetns: boolean;
  /** One line for the docs and --help. */
  readonly summary: string;
  setup(): Promise<ScenarioEnv>;
}
