import {
  CloseCode,
  type Codec,
  type FrameConnection,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  jsonCodec,
  MeshError,
  withFields,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { HttpResponse } from './httpRouter.js';

/** Settings of one HTTP session. Sizes in bytes, times in milliseconds. */
export interface HttpSessionOptions {
  /** Largest backlog of events not yet read by the agent (unsent, or buffered in the stream); more closes with 4008. */
  maxQueueBytes: number;
  /** Most sent events kept for a stream that resumes with `Last-Event-ID`. */
  replayEvents: number;
  /** Most bytes of sent events kept for resuming. */
  replayBytes: number;
  /** How long the session may go without an event stream before it is closed. */
  detachTimeoutMs: number;
  /** How long a closing stream may take to drain its backlog before it is cut. */
  closeTimeoutMs: number;
  /** Called when the session closes (once). */
  onClosed(conn: HttpSessionConnection, code: number, reason: string): void;
  onSlowConsumer?(): void;
  logger: Logger;
}

/** What `attach` decided about a stream's `Last-Event-ID`. */
export type ResumeCheck = 'ok' | 'ahead' | 'gone';

/** Close code used when the event stream stayed detached for too long (no close frame reached the agent). */
export const DETACHED_CLOSE = 1006;

/** Every notification the peer encodes starts this way; such a frame is never a response to a POST. */
const NOTIFICATION_PREFIX = '{"jsonrpc":"2.0","method":';

interface OutEvent {
  seq: number;
  text: string;
  bytes: number;
}

interface PendingCall {
  originalId: JsonRpcRequest['id'];
  resolve(response: JsonRpcResponse): void;
  reject(error: Error): void;
}

/** One SSE response (`GET /mesh/stream`). */
export class SseStream {
  #ended = false;

  constructor(readonly res: HttpResponse) {}

  /** Bytes written but not yet flushed to the network. */
  get backlogBytes(): number {
    return this.res.writableLength;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Writes one event with its id; the data is one encoded JSON-RPC message or batch. */
  event(seq: number, text: string): void {
    this.#write(`id: ${seq}\n${dataLines(text)}\n`);
  }

  /** Writes a comment line (ignored by readers; keeps the stream and intermediaries alive). */
  comment(text: string): void {
    this.#write(`: ${text}\n\n`);
  }

  /** Writes the final `close` event (the session's close code and reason) and ends the stream. */
  close(code: number, reason: string, cutAfterMs: number): void {
    if (this.#ended) return;
    this.#write(`event: close\n${dataLines(JSON.stringify({ code, reason }))}\n`);
    this.end();
    // The close event queues behind the backlog: an agent that reads gets it; a stalled one is cut.
    const timer = setTimeout(() => {
      if (!this.res.writableFinished) this.res.destroy();
    }, cutAfterMs);
    timer.unref();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.res.end();
  }

  #write(chunk: string): void {
    if (this.#ended) return;
    (this.res as { write(chunk: string): boolean }).write(chunk);
  }
}

function dataLines(text: string): string {
  // Encoded JSON has no raw line breaks; split defensively so a frame can never end the event early.
  if (!text.includes('\n') && !text.includes('\r')) return `data: ${text}\n`;
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join('');
}

/**
 * The node end of an agent's HTTP session, as a FrameConnection: POSTed calls are fed in as frames
 * (with ids of its own, so calls from concurrent POSTs never collide) and their responses handed back
 * to the POST; every other frame (notifications, node-to-agent requests) goes to the SSE stream with
 * a per-session sequence id, kept for a while so a reconnecting stream resumes after `Last-Event-ID`.
 */
export class HttpSessionConnection implements FrameConnection {
  readonly codec: Codec = jsonCodec;
  /** The mesh session id, once `mesh/hello` succeeded. */
  sessionId: string | undefined;
  /** SHA-256 of the hello's `Authorization` header, which later requests must repeat. */
  credential: Buffer | undefined;
  readonly #o: HttpSessionOptions;
  #frameListener: ((frame: string | Uint8Array) => void) | undefined;
  #closeListener: ((code: number, reason: string) => void) | undefined;
  #closed: { code: number; reason: string } | undefined;
  readonly #calls = new Map<number, PendingCall>();
  #nextCallId = 1;
  /** Sent events kept for resuming (seq ≤ #sentSeq), then events not yet sent, in seq order. */
  #events: OutEvent[] = [];
  #seq = 0;
  #sentSeq = 0;
  #pendingBytes = 0;
  #retainedBytes = 0;
  #stream: SseStream | undefined;
  /** Bytes written to the stream during this turn of the event loop. */
  #turnBytes = 0;
  #turnReset = false;
  #detachTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: HttpSessionOptions) {
    this.#o = options;
    this.#armDetachTimer();
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** The close code and reason, once closed. */
  get closeInfo(): { code: number; reason: string } | undefined {
    return this.#closed;
  }

  /** The stream currently attached, if any. */
  get stream(): SseStream | undefined {
    return this.#stream;
  }

  /** The last event sequence number assigned. */
  get lastEventId(): number {
    return this.#seq;
  }

  /**
   * Feeds a request from a POST and resolves with its response (under the caller's id); rejects with
   * MeshError `aborted` when `signal` aborts, `connection_lost` when the session closes first.
   */
  call(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(new MeshError('aborted', 'the request went away'));
    const id = this.#nextCallId++;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      // The POST went away: nobody waits for the answer any more.
      const onAbort = () => {
        this.#calls.delete(id);
        reject(new MeshError('aborted', 'the request went away'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#calls.set(id, {
        originalId: message.id,
        resolve: (response) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(response);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      this.#frameListener?.(JSON.stringify(withFields(message, { id })));
    });
  }

  /** Feeds a message that gets no answer (a notification, or the agent's response to a node request). */
  feed(message: JsonRpcMessage): void {
    if (this.#closed) return;
    this.#frameListener?.(JSON.stringify(message));
  }

  send(frame: string | Uint8Array): void {
    if (this.#closed) throw new MeshError('closed', 'connection is closed');
    const text = typeof frame === 'string' ? frame : Buffer.from(frame).toString('utf8');
    if (!text.startsWith(NOTIFICATION_PREFIX) && this.#answer(text)) return;
    this.#enqueue(text);
  }

  /** Hands a response back to its POST; false when the frame is not a response (a node request). */
  #answer(text: string): boolean {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return false;
    }
    const items = Array.isArray(value) ? value : [value];
    if (!items.every(isResponse)) return false;
    for (const item of items) {
      const call = typeof item.id === 'number' ? this.#calls.get(item.id) : undefined;
      // No call: its POST went away; nobody is waiting for the answer.
      if (!call) continue;
      this.#calls.delete(item.id as number);
      call.resolve({ ...item, id: call.originalId } as JsonRpcResponse);
    }
    return true;
  }

  #enqueue(text: string): void {
    const bytes = Buffer.byteLength(text);
    const stream = this.#stream;
    // HTTP/2 hands written bytes to the socket asynchronously: what was written during this turn has
    // not had its chance yet. Only what is still buffered from earlier turns is the agent's backlog.
    const backlog = stream ? Math.max(0, stream.backlogBytes - this.#turnBytes) : this.#pendingBytes;
    if (backlog + bytes > this.#o.maxQueueBytes) {
      this.#o.onSlowConsumer?.();
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      return;
    }
    const event = { seq: ++this.#seq, text, bytes };
    this.#events.push(event);
    if (stream) {
      stream.event(event.seq, text);
      this.#countTurn(bytes);
      this.#sentSeq = event.seq;
      this.#retainedBytes += bytes;
      this.#trim();
    } else {
      this.#pendingBytes += bytes;
    }
  }

  /** Whether a stream resuming after `lastEventId` can continue exactly from there. */
  checkResume(lastEventId: number | undefined): ResumeCheck {
    if (lastEventId === undefined) return 'ok';
    if (lastEventId > this.#seq) return 'ahead';
    const oldest = this.#events[0]?.seq ?? this.#seq + 1;
    return lastEventId + 1 < oldest ? 'gone' : 'ok';
  }

  /**
   * Attaches an event stream (replacing any other): it first gets every kept event after `lastEventId`
   * (or, without one, every event not sent yet), then the live ones. Call `checkResume` first; a stream
   * whose position is gone gets a `close` event and the session ends (4008: re-hello, rejoin with since).
   */
  attach(stream: SseStream, lastEventId: number | undefined): void {
    if (this.#closed) {
      stream.close(this.#closed.code, this.#closed.reason, this.#o.closeTimeoutMs);
      return;
    }
    const previous = this.#stream;
    this.#stream = stream;
    previous?.end();
    this.#clearDetachTimer();
    const check = this.checkResume(lastEventId);
    if (check !== 'ok') {
      this.close(CloseCode.SlowConsumer, 'event stream position no longer available');
      return;
    }
    const from = lastEventId === undefined ? this.#sentSeq + 1 : lastEventId + 1;
    for (const event of this.#events) {
      if (event.seq < from) continue;
      stream.event(event.seq, event.text);
      this.#countTurn(event.bytes);
      if (event.seq > this.#sentSeq) {
        this.#sentSeq = event.seq;
        this.#pendingBytes -= event.bytes;
        this.#retainedBytes += event.bytes;
      }
    }
    this.#trim();
  }

  /** The stream ended (the agent went away or it was replaced); the session waits for a new one. */
  detach(stream: SseStream): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    if (!this.#closed) this.#armDetachTimer();
  }

  /** Writes a heartbeat comment on the attached stream. */
  ping(): void {
    this.#stream?.comment('ping');
  }

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.#closed) return;
    this.#closed = { code, reason };
    this.#clearDetachTimer();
    const error = this.#closedError();
    for (const call of [...this.#calls.values()]) call.reject(error);
    this.#calls.clear();
    this.#stream?.close(code, reason, this.#o.closeTimeoutMs);
    this.#stream = undefined;
    this.#events = [];
    this.#pendingBytes = this.#retainedBytes = 0;
    this.#o.onClosed(this, code, reason);
    this.#closeListener?.(code, reason);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#frameListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListener = listener;
    // Closed before anyone listened (e.g. refused by a draining node): report it now.
    if (this.#closed) listener(this.#closed.code, this.#closed.reason);
  }

  #closedError(): MeshError {
    const { code, reason } = this.#closed ?? { code: 0, reason: '' };
    return new MeshError('connection_lost', `session closed (${code}${reason ? ` ${reason}` : ''})`);
  }

  /** Drops the oldest sent events beyond the replay limits; unsent events always stay. */
  #trim(): void {
    let drop = 0;
    let kept = this.#sentSeq - (this.#events[0]?.seq ?? this.#sentSeq + 1) + 1;
    while (drop < this.#events.length) {
      const event = this.#events[drop]!;
      if (event.seq > this.#sentSeq) break;
      if (kept <= this.#o.replayEvents && this.#retainedBytes <= this.#o.replayBytes) break;
      this.#retainedBytes -= event.bytes;
      kept--;
      drop++;
    }
    if (drop > 0) this.#events.splice(0, drop);
  }

  #countTurn(bytes: number): void {
    this.#turnBytes += bytes;
    if (this.#turnReset) return;
    this.#turnReset = true;
    setImmediate(() => {
      this.#turnBytes = 0;
      this.#turnReset = false;
    });
  }

  #armDetachTimer(): void {
    this.#clearDetachTimer();
    this.#detachTimer = setTimeout(() => {
      this.#o.logger.debug({ sessionId: this.sessionId }, 'event stream detached too long; closing');
      this.close(DETACHED_CLOSE, 'event stream detached for too long');
    }, this.#o.detachTimeoutMs);
    this.#detachTimer.unref();
  }

  #clearDetachTimer(): void {
    if (this.#detachTimer) clearTimeout(this.#detachTimer);
    this.#detachTimer = undefined;
  }
}

function isResponse(value: unknown): value is { id: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    'id' in value &&
    !('method' in value) &&
    ('result' in value || 'error' in value)
  );
}
