#!/usr/bin/env node
/**
 * `uring-zc`: the benchmark CLI (`bench`) and the capability report (`capabilities`).
 *
 * Exit status: 0 done; 1 a run failed or nothing could be reported; 2 bad command line;
 * 130 interrupted (children stopped and namespaces removed first).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { capabilities } from '../src/index.js';
import { BENCH_HELP, CAPABILITIES_HELP, MAIN_HELP, parseCommandLine, UsageError, type BenchOptions, type Command } from './args.js';
import { renderChart } from './chart.js';
import { netnsUnavailableReason } from './netns.js';
import { formatTable } from './report.js';
import { abortRun, run } from './run.js';
import { C_REF_SENDER, C_REF_SENDER_MISSING, zcPoolUnavailableReason } from './worker.js';

async function main(argv: readonly string[]): Promise<number> {
  let cmd: Command;
  try {
    cmd = parseCommandLine(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`uring-zc: ${e.message}\n(uring-zc --help for usage)\n`);
    return 2;
  }
  switch (cmd.command) {
    case 'help':
      process.stdout.write(cmd.topic === 'bench' ? BENCH_HELP : cmd.topic === 'capabilities' ? CAPABILITIES_HELP : MAIN_HELP);
      return 0;
    case 'version':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    case 'capabilities':
      printCapabilities(cmd.options.json);
      return 0;
    case 'bench':
      return bench(cmd.options);
  }
}

/** The installed package's version (dist/bench/cli.js -> ../../package.json). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function bench(o: BenchOptions): Promise<number> {
  // With JSON on stdout, everything for people goes to stderr.
  const human = o.json === '-' ? process.stderr : process.stdout;
  const tty = process.stderr.isTTY === true;
  let progressShown = false;
  const clearProgress = (): void => {
    if (progressShown) process.stderr.write('\r\x1b[2K');
    progressShown = false;
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    clearProgress();
    abortRun();
    process.stderr.write(`uring-zc: ${sig}: stopped every child process and removed the namespaces\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { report, failures } = await run(o, {
      note: (text) => {
        clearProgress();
        process.stderr.write(`${text}\n`);
      },
      progress: (done, total, what) => {
        if (!tty) return;
        process.stderr.write(`\r\x1b[2K[${done}/${total}] ${what}`);
        progressShown = done < total;
        if (!progressShown) clearProgress();
      },
    });
    clearProgress();
    human.write(formatTable(report));
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (o.json === '-') process.stdout.write(json);
    else if (o.json !== null) {
      writeFileSync(o.json, json);
      human.write(`JSON written to ${o.json}\n`);
    }
    if (o.chart !== null) {
      if (report.rows.length > 0) {
        writeFileSync(o.chart, renderChart(report));
        human.write(`chart written to ${o.chart}\n`);
      } else {
        process.stderr.write(`no chart: no rows to draw (${o.chart} not written)\n`);
      }
    }
    return failures > 0 || report.rows.length === 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function printCapabilities(json: boolean): void {
  const caps = capabilities();
  const netns = netnsUnavailableReason();
  const pool = zcPoolUnavailableReason();
  const memlock = Number.isNaN(caps.memlockLimit) ? 'unknown' : caps.memlockLimit === Infinity ? 'unlimited' : caps.memlockLimit;
  const out = {
    ...caps,
    memlockLimit: memlock,
    namespaces: netns === null,
    namespacesReason: netns,
    cRefSender: C_REF_SENDER,
    zcPool: pool === null,
    zcPoolReason: pool,
    node: process.version,
    cpus: os.cpus().length,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const yn = (b: boolean): string => (b ? 'yes' : 'no');
  const mem = typeof memlock === 'number' ? `${memlock} bytes (${(memlock / 1024 / 1024).toFixed(1)} MiB)` : memlock;
  const lines: Array<[string, string]> = [
    ['io_uring', yn(caps.ioUring)],
    ['IORING_OP_SEND_ZC (6.0)', yn(caps.sendZc)],
    ['IORING_OP_SENDMSG_ZC (6.1)', yn(caps.sendmsgZc)],
    ['REPORT_USAGE (6.2)', yn(caps.reportUsage)],
    ['SENDMSG_ZC + FIXED_BUF (6.15)', yn(caps.sendmsgZcFixed)],
    ['registered buffers', yn(caps.fixedBuffers)],
    ['kernel.io_uring_disabled', caps.ioUringDisabled === null ? 'no such sysctl' : String(caps.ioUringDisabled)],
    ['RLIMIT_MEMLOCK (soft)', mem],
    ['network namespaces', netns === null ? 'yes (udp-sink and tcp-veth can run)' : `no: ${netns}`],
    ['C reference sender', C_REF_SENDER ?? `no: ${C_REF_SENDER_MISSING ?? ''}`],
    ['bench zc-pool mode', pool === null ? 'yes' : `no: ${pool}`],
    ['kernel', caps.kernel],
    ['node', `${process.version}, ${os.cpus().length} CPUs`],
  ];
  if (caps.reason !== undefined) lines.push(['why not', caps.reason]);
  const w = Math.max(...lines.map(([k]) => k.length));
  process.stdout.write(`uring-zc capabilities\n${lines.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    abortRun();
    process.stderr.write(`uring-zc: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
