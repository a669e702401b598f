/**
 * tcp-veth: TCP between two network namespaces joined by a veth pair: the sender runs in `a`, the
 * discarding receiver in `b`. The bytes cross a (virtual) link before a socket receives them.
 */
import { createVethPair } from '../netns.js';
import { startReceiver, stopReceiver } from './receiver.js';
import { track } from '../procs.js';
import type { Scenario, ScenarioEnv } from './types.js';

export const tcpVeth: Scenario = {
  name: 'tcp-veth',
  tcp: true,
  needsNetns: true,
  summary: 'TCP from namespace a to a discarding receiver in namespace b over veth',
  async setup(): Promise<ScenarioEnv> {
    const pair = createVethPair();
    try {
      const receiver = await startReceiver((argv) => pair.spawnIn('b', [...argv], { stdio: ['pipe', 'pipe', 'pipe'] }), pair.addressB);
      return {
        name: 'tcp-veth',
        tcp: true,
        dst: pair.addressB,
        port: receiver.port,
        spawnSender: (argv) => track(pair.spawnIn('a', [...argv], { stdio: ['ignore', 'pipe', 'pipe'] })),
        dispose: async () => {
          await stopReceiver(receiver);
          pair.dispose();
        },
        abort: () => {
          receiver.child.kill('SIGKILL');
          pair.dispose();
        },
      };
    } catch (e) {
      pair.dispose();
      throw e;
    }
  },
};
