import type { FrameConnection } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { TransportAuth } from '../auth/gate.js';

/** What every session transport takes from the node. Sizes in bytes, times in milliseconds. */
export interface TransportHostOptions {
  /** Largest incoming message; larger is refused (WebSocket: close 1009; HTTP: 413). */
  maxMessageBytes: number;
  /** Largest backlog of unsent frames per session; more closes it with 4008 (slow consumer). */
  maxQueueBytes: number;
  /** Keep-alive interval (WebSocket pings; `: ping` comments on event streams). */
  heartbeatMs: number;
  /** How long a closing connection may take to drain before it is cut. */
  closeTimeoutMs: number;
  /** Turns a new connection into a session (the node's `#accept`). */
  onConnection(conn: FrameConnection, info: { remoteAddress: string; auth: TransportAuth }): void;
  /** Admits a new session from an IP: 0, or the ms to wait (refused with HTTP 429 and Retry-After). */
  admitConnection?(remoteAddress: string): number;
  /**
   * Checks the `Authorization` header (default: none): of the WebSocket upgrade, before the handshake
   * completes; of an HTTP session's hello, which its later requests must repeat.
   */
  checkCredential?(authorization: string | undefined): Promise<TransportAuth>;
  /** Counts slow-consumer closes. */
  onSlowConsumer?(): void;
  logger: Logger;
}
