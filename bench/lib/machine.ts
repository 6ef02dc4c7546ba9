import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { openFileLimit } from './ipc.js';
import { natsServerVersion } from './natsServer.js';
import type { MachineInfo } from './types.js';

let natsVersion: string | undefined;

/** The machine as it is now (load average included). */
export function machineInfo(): MachineInfo {
  natsVersion ??= natsServerVersion();
  return {
    hostname: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMb: Math.round(totalmem() / (1024 * 1024)),
    node: process.version,
    natsServer: natsVersion,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    nofile: openFileLimit(),
  };
}
