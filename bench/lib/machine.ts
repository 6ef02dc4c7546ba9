import { execFileSync } from 'node:child_process';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { openFileLimit } from './ipc.js';
import { natsServerVersion } from './natsServer.js';
import type { MachineInfo } from './types.js';
import { REPO_ROOT } from './workers.js';

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
    git: gitState(),
  };
}

/** HEAD and the number of tracked files that differ from it, or undefined outside a git checkout. */
function gitState(): MachineInfo['git'] {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 5000 }).trim();
    const commit = git('rev-parse', '--short=12', 'HEAD');
    const modified = git('status', '--porcelain', '--untracked-files=no');
    return { commit, modifiedFiles: modified === '' ? 0 : modified.split('\n').length };
  } catch {
    return undefined;
  }
}
