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
  /**
   * Sends a frame that goes unchanged to many connections. A transport that frames it the same way
   * for every connection builds its bytes once (`SharedFrame.wire`); without this method, `send`
   * gets `frame.data`.
   */
  sendShared?(frame: SharedFrame): void;
  /** Closes the connection with a WebSocket-style close code. */
  close(code?: number, reason?: string): void;
  /** Sets the callback for incoming frames (one at a time, in order). */
  onFrame(listener: (frame: string | Uint8Array) => void): void;
  /** Sets the callback for the end of the connection (called once). */
  onClose(listener: (code: number, reason: string) => void): void;
}

/** Opens a new connection; the client calls it on connect and on every reconnect. */
export type Connector = (signal: AbortSignal) => Promise<FrameConnection>;

/**
 * One encoded frame sent unchanged to many connections (a collaboration event to every member). The
 * transport's framing of it, say a WebSocket frame header and payload as one buffer, is made on the
 * first send and reused for every other connection of the same kind.
 */
export class SharedFrame {
  #kind: string | undefined;
  #wire: Uint8Array | undefined;

  constructor(readonly data: string | Uint8Array) {}

  /** `make(data)` for transport framing `kind`: made once and kept (for the first kind asked for). */
  wire(kind: string, make: (data: string | Uint8Array) => Uint8Array): Uint8Array {
    if (this.#kind === kind) return this.#wire as Uint8Array;
    const bytes = make(this.data);
    if (this.#kind === undefined) {
      this.#kind = kind;
      this.#wire = bytes;
    }
    return bytes;
  }
}

/** Sends `frame` on `conn`: through its `sendShared` if it has one, else as `send(frame.data)`. */
export function sendShared(conn: FrameConnection, frame: SharedFrame): void {
  if (conn.sendShared) conn.sendShared(frame);
  else conn.send(frame.data);
}
