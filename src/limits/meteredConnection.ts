import { type Codec, type FrameConnection, type SharedFrame, sendShared } from '@a2a-mesh/protocol';
import type { SessionMeter } from './rateLimiter.js';

/**
 * A FrameConnection that charges every inbound frame to a session meter before anyone decodes it, and
 * closes the connection with `onAbuse` once the meter says the byte flood went on too long.
 */
export class MeteredConnection implements FrameConnection {
  readonly codec: Codec;
  #cut = false;

  constructor(
    readonly inner: FrameConnection,
    readonly meter: SessionMeter,
    readonly onAbuse: (conn: MeteredConnection) => void,
  ) {
    this.codec = inner.codec;
  }

  send(frame: string | Uint8Array): void {
    this.inner.send(frame);
  }

  sendShared(frame: SharedFrame): void {
    sendShared(this.inner, frame);
  }

  close(code?: number, reason?: string): void {
    this.inner.close(code, reason);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.inner.onFrame((frame) => {
      // Frames already on the wire when the flood was cut are dropped unread.
      if (this.#cut) return;
      const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
      if (!this.meter.frame(bytes)) {
        this.#cut = true;
        this.onAbuse(this);
        return;
      }
      listener(frame);
    });
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.inner.onClose(listener);
  }
}
