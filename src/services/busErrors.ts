import { MeshError, RpcError } from '@a2a-mesh/protocol';
import { BusUnavailableError, NoRespondersError } from '../bus/bus.js';

/** Maps a bus failure to the wire error an agent sees; RpcErrors pass through. */
export function busError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  if (error instanceof BusUnavailableError)
    return RpcError.of('Unavailable', 'the mesh bus is unavailable; retry', undefined, error);
  if (error instanceof NoRespondersError) {
    return RpcError.of('AgentUnreachable', `agent ${error.agentId} is not connected to the mesh`, {
      agentId: error.agentId,
    });
  }
  if (error instanceof MeshError && error.code === 'timeout')
    return RpcError.of('Timeout', error.message, undefined, error);
  if (error instanceof MeshError && error.code === 'closed')
    return RpcError.of('Unavailable', 'the node is shutting down', undefined, error);
  return RpcError.of('InternalError', 'internal error', undefined, error);
}
