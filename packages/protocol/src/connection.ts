import type { Codec } from './codec.js';

/**
 * One framed, ordered, bidirectional connection between an agent and a node, whatever carries it
 * (WebSocket, in-memory pair). Frames are encoded JSON-RPC messages or batches.
 */
export interface FrameConnection {
  /** The codec both ends agreed on. */
  readonly codec: Codec;
  /** Sends one frame. Throws if the connection is closed. */
  send(frame: string | Uint8Array): void;
  /** Closes the connection with a WebSocket-style close code. */
  close(code?: number, reason?: string): void;
  /** Sets the callback for incoming frames (one at a time, in order). */
  onFrame(listener: (frame: string | Uint8Array) => void): void;
  /** Sets the callback for the end of the connection (called once). */
  onClose(listener: (code: number, reason: string) => void): void;
}

/** Opens a new connection; the client calls it on connect and on every reconnect. */
export type Connector = (signal: AbortSignal) => Promise<FrameConnection>;
