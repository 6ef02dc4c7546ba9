import { CloseCode, type Codec, type FrameConnection, MeshError } from '@a2a-mesh/protocol';

class MemoryEnd implements FrameConnection {
  peer!: MemoryEnd;
  #frameListener: ((frame: string | Uint8Array) => void) | undefined;
  #closeListener: ((code: number, reason: string) => void) | undefined;
  #closed = false;
  /** Bytes sent by this end and not yet delivered to the other. */
  pendingBytes = 0;

  constructor(
    readonly codec: Codec,
    readonly maxQueueBytes: number,
  ) {}

  send(frame: string | Uint8Array): void {
    if (this.#closed) throw new MeshError('closed', 'connection is closed');
    const size = typeof frame === 'string' ? frame.length : frame.byteLength;
    if (this.pendingBytes + size > this.maxQueueBytes) {
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      return;
    }
    this.pendingBytes += size;
    // Copy binary frames so neither side can mutate what the other reads.
    const copy = typeof frame === 'string' ? frame : frame.slice();
    queueMicrotask(() => {
      this.pendingBytes -= size;
      if (!this.peer.#closed) this.peer.#frameListener?.(copy);
    });
  }

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.#closed) return;
    this.#shut(code, reason);
    queueMicrotask(() => this.peer.#shut(code, reason));
  }

  #shut(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeListener?.(code, reason);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#frameListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListener = listener;
  }
}

/**
 * A linked pair of in-memory connections (agent end, node end) with the same framing, codec and
 * bounded send queue as a socket. Frames are delivered asynchronously, in order.
 */
export function createMemoryPair(codec: Codec, maxQueueBytes: number): [FrameConnection, FrameConnection] {
  const a = new MemoryEnd(codec, maxQueueBytes);
  const b = new MemoryEnd(codec, maxQueueBytes);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
