/** A Node socket (under a `ws` WebSocket its private `_socket`; under nats.js its transport's). */
interface CorkableSocket {
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

/**
 * Coalesces one connection's writes per event-loop turn: `hold` before each send corks the Node
 * socket under a `ws` WebSocket on the turn's first send and uncorks it in a `setImmediate`, so the
 * frames of one turn (a fan-out burst, a reply and the next request) leave in one system call
 * instead of one each (profiled: most of a busy node's CPU). `holdSocket` does the same for a socket
 * at hand (the NATS client's). Elsewhere (browsers: no socket, no `setImmediate`) it does nothing
 * and frames go out as they are sent.
 */
export class TurnCork {
  #held = false;

  /** Before a send on a `ws` WebSocket. */
  hold(ws: unknown): void {
    if (this.#held) return;
    this.holdSocket((ws as { _socket?: unknown })._socket);
  }

  /** Before a write to `socket` (anything without `cork` is left alone). */
  holdSocket(maybeSocket: unknown): void {
    if (this.#held) return;
    const socket = maybeSocket as CorkableSocket | undefined;
    const later = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
    if (!socket || typeof socket.cork !== 'function' || socket.destroyed || !later) return;
    this.#held = true;
    socket.cork();
    later(() => {
      this.#held = false;
      if (!socket.destroyed) socket.uncork();
    });
  }
}
