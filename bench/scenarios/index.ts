/** The benchmark scenarios by name. */
import type { ScenarioName } from '../args.js';
import { tcpLoopback } from './tcp-loopback.js';
import { tcpVeth } from './tcp-veth.js';
import type { Scenario } from './types.js';
import { udpSink } from './udp-sink.js';

export type { Scenario, ScenarioEnv } from './types.js';

export const scenarios: Readonly<Record<ScenarioName, Scenario>> = Object.freeze({
  'udp-sink': udpSink,
  'tcp-loopback': tcpLoopback,
  'tcp-veth': tcpVeth,
});
