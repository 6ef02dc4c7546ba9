import type { NatsConnection } from '@nats-io/transport-node';

/** The Node socket of nats.js's transport. */
interface CorkableSocket {
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

interface PatchableTransport {
  send(frame: Uint8Array): void;
  socket?: CorkableSocket;
  meshCorked?: true;
}

/**
 * nats.js writes to its socket at the end of every microtask checkpoint that queued a protocol
 * operation: a node doing many JetStream calls per event-loop turn made one `write` system call for
 * each (`writeBuffer` was 11-16% of a NATS gateway node's CPU). This corks the socket on a turn's
 * first write and uncorks it in a `setImmediate`, so one turn's operations leave in one `writev`.
 * Patches the connection's current transport (`protocol.transport`, typed public in nats.js); a
 * reconnect makes a new transport, so it is applied again then. Does nothing (returns false) if
 * the transport has no socket or no `send` (another runtime or a changed library).
 */
export function corkNatsWrites(nc: NatsConnection): boolean {
  const transport = (nc as unknown as { protocol?: { transport?: PatchableTransport } }).protocol?.transport;
  if (!transport || typeof transport.send !== 'function') return false;
  if (transport.meshCorked) return true;
  const socket = transport.socket;
  if (!socket || typeof socket.cork !== 'function') return false;
  const send = transport.send.bind(transport);
  let held = false;
  transport.send = (frame: Uint8Array) => {
    const s = transport.socket;
    if (!held && s && !s.destroyed) {
      held = true;
      s.cork();
      setImmediate(() => {
        held = false;
        if (!s.destroyed) s.uncork();
      });
    }
    send(frame);
  };
  transport.meshCorked = true;
  return true;
}

/** True when the connection's current transport is corked (diagnostics and tests). */
export function natsWritesCorked(nc: NatsConnection): boolean {
  return (
    (nc as unknown as { protocol?: { transport?: PatchableTransport } }).protocol?.transport?.meshCorked ===
    true
  );
}
