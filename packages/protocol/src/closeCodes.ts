/**
 * WebSocket close codes used by mesh nodes. 1xxx are RFC 6455 codes; 4xxx are mesh-defined.
 * A client reconnects (with resume) after every code except 4001, 4003 and 4009.
 */
export const CloseCode = {
  /** Normal closure. */
  Normal: 1000,
  /** The node is going away (process exit without drain). */
  GoingAway: 1001,
  /** A frame exceeded the node's `maxPayload`. */
  TooBig: 1009,
  /** Internal error in the node. */
  InternalError: 1011,
  /** No valid credential was presented. */
  Unauthenticated: 4001,
  /** The credential is valid but not allowed here. */
  Forbidden: 4003,
  /** The per-connection send queue overflowed: the agent read too slowly. Reconnect and resume. */
  SlowConsumer: 4008,
  /** The peer broke the protocol (e.g. no `mesh/hello` first, wrong subprotocol, heartbeat lost). */
  ProtocolViolation: 4009,
  /** Sustained rate-limit abuse. */
  RateLimited: 4029,
  /** The node is draining: reconnect to another node now and resume. */
  NodeDraining: 4500,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** True when a client should reconnect after the node closed the socket with this code. */
export function isRetryableClose(code: number): boolean {
  return (
    code !== CloseCode.Unauthenticated && code !== CloseCode.Forbidden && code !== CloseCode.ProtocolViolation
  );
}
