/**
 * tcp-loopback: TCP to a receiver process on 127.0.0.1 that discards and counts. Local delivery
 * always copies (the receiver's socket gets the bytes), so every zero-copy notification reports
 * COPIED here: a correctness run and a measure of overhead, not of zero-copy gains.
 */
import { spawn } from 'node:child_process';
import { startReceiver, stopReceiver } from './receiver.js';
import { track } from '../procs.js';
import type { Scenario, ScenarioEnv } from './types.js';

export const tcpLoopback: Scenario = {
  name: 'tcp-loopback',
  tcp: true,
  needsNetns: false,
  summary: 'TCP to a discarding receiver process on 127.0.0.1 (loopback always copies)',
  async setup(): Promise<ScenarioEnv> {
    const host = '127.0.0.1';
    const receiver = await startReceiver((argv) => spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }), host);
    return {
      name: 'tcp-loopback',
      tcp: true,
      dst: host,
      port: receiver.port,
      spawnSender: (argv) => track(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })),
      dispose: () => stopReceiver(receiver),
      abort: () => void receiver.child.kill('SIGKILL'),
    };
  },
};
