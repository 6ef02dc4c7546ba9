/**
 * Worker: the load generator. Holds every agent or raw socket of a scenario (never in the node's
 * process) and drives them on the harness's commands.
 */

import { serve } from '../lib/child.js';
import { fanoutClose, fanoutRun, fanoutSetup } from '../load/fanout.js';
import { h2Run } from '../load/h2.js';
import { lateJoinClose, lateJoinFill, lateJoinMesh, lateJoinWs, warmNode } from '../load/lateJoin.js';
import { latencyClose, latencyRun, latencySetup } from '../load/latency.js';
import { memoryClose, memoryConnect } from '../load/memory.js';
import { writesClose, writesRun, writesSetup } from '../load/writes.js';
import type { LoadGenCommands } from './commands.js';

function closeAll(): null {
  fanoutClose();
  latencyClose();
  writesClose();
  memoryClose();
  lateJoinClose();
  return null;
}

serve<LoadGenCommands>(
  {
    fanoutSetup,
    fanoutRun,
    latencySetup,
    latencyRun,
    writesSetup,
    writesRun,
    memoryConnect,
    lateJoinFill,
    lateJoinMesh,
    lateJoinWs,
    warmNode,
    h2Run,
    closeAll,
  },
  async () => {
    closeAll();
  },
);
