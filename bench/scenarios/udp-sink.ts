/**
 * udp-sink: UDP datagrams into an IFB device in a network namespace. The device drops every
 * packet without touching its bytes, so zero copy stays zero copy (nothing is delivered to a local
 * socket, which would copy). Senders run inside the namespace and send to sink.destination:9.
 */
import { createSink } from '../netns.js';
import { track } from '../procs.js';
import type { Scenario, ScenarioEnv } from './types.js';

export const udpSink: Scenario = {
  name: 'udp-sink',
  tcp: false,
  needsNetns: true,
  summary: 'UDP into an IFB sink device in a network namespace (zero copy stays zero copy)',
  setup(): Promise<ScenarioEnv> {
    const sink = createSink();
    return Promise.resolve({
      name: 'udp-sink',
      tcp: false,
      dst: sink.destination,
      port: 9,
      spawnSender: (argv) => track(sink.spawn([...argv], { stdio: ['ignore', 'pipe', 'pipe'] })),
      dispose: () => {
        sink.dispose();
        return Promise.resolve();
      },
      abort: () => sink.dispose(),
    });
  },
};

