import { TurnCork } from '@a2a-mesh/protocol';
import type { NatsConnection } from '@nats-io/transport-node';

interface PatchableTransport {
  send(frame: Uint8Array): void;
  /** The Node socket. */
  socket?: { cork?: unknown };
  meshCorked?: true;
}

function transportOf(nc: NatsConnection): PatchableTransport | undefined {
  return (nc as unknown as { protocol?: { transport?: PatchableTransport } }).protocol?.transport;
}

/**
 * nats.js writes to its socket at the end of every microtask checkpoint that queued a protocol
 * operation: a node doing many JetStream calls per event-loop turn made one `write` system call for
 * each (`writeBuffer` was 11-16% of a NATS gateway node's CPU). This corks the socket on a turn's
 * first write and uncorks it in a `setImmediate` (the `TurnCork` the WebSocket connections use), so
 * one turn's operations leave in one `writev`.
 * Patches the connection's current transport (`protocol.transport`, typed public in nats.js); a
 * reconnect makes a new transport, so it is applied again then. Does nothing (returns false) if
 * the transport has no socket or no `send` (another runtime or a changed library).
 */
export function corkNatsWrites(nc: NatsConnection): boolean {
  const transport = transportOf(nc);
  if (!transport || typeof transport.send !== 'function') return false;
  if (transport.meshCorked) return true;
  if (typeof transport.socket?.cork !== 'function') return false;
  const send = transport.send.bind(transport);
  const cork = new TurnCork();
  transport.send = (frame: Uint8Array) => {
    cork.holdSocket(transport.socket);
    send(frame);
  };
  transport.meshCorked = true;
  return true;
}

/** True when the connection's current transport is corked (diagnostics and tests). */
export function natsWritesCorked(nc: NatsConnection): boolean {
  return transportOf(nc)?.meshCorked === true;
}
