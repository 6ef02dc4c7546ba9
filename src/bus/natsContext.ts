import { MeshError } from '@a2a-mesh/protocol';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { BusUnavailableError, KvConflictError, NoRespondersError, OffsetConflictError } from './bus.js';

/** The logger the NATS bus writes to: pino's `info(obj, msg)` shape (a pino logger fits). */
export interface NatsBusLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything (the default). */
export const silentLogger: NatsBusLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** JetStream API error codes the bus reacts to. */
export const ApiCode = {
  StreamNotFound: 10059,
  WrongLastSequence: 10071,
  NoMessageFound: 10037,
  ClusterNotAvailable: 10008,
  ClusterNotLeader: 10009,
  StreamOffline: 10118,
} as const;

/**
 * Tracks whether the connection can serve writes and fails NATS operations fast when it cannot.
 * Operations started while connected are rejected at once when the connection drops, rather than
 * left to run into their timeout.
 */
export class Link {
  #connected = true;
  #closed = false;
  #reconnects = 0;
  readonly #inflight = new Set<(error: Error) => void>();

  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /** How many times the connection came back after dropping. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Throws `BusUnavailableError` (or MeshError `closed`) unless a write could go out right now. */
  check(): void {
    if (this.#closed) throw new MeshError('closed', 'bus is closed');
    if (!this.#connected) throw new BusUnavailableError('NATS is unreachable; the bus is reconnecting');
  }

  /** Runs `op` unless disconnected; rejects with `BusUnavailableError` as soon as the connection drops. */
  run<T>(op: () => Promise<T>): Promise<T> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error) => reject(error);
      this.#inflight.add(fail);
      // `then` also turns a synchronous throw of `op` into a rejection.
      Promise.resolve()
        .then(op)
        .then(
          (value) => {
            this.#inflight.delete(fail);
            resolve(value);
          },
          (err: unknown) => {
            this.#inflight.delete(fail);
            reject(toBusError(err));
          },
        );
    });
  }

  /** The connection dropped: fail everything in flight. */
  down(): void {
    this.#connected = false;
    const pending = [...this.#inflight];
    this.#inflight.clear();
    const error = new BusUnavailableError('connection to NATS was lost; the outcome of this call is unknown');
    for (const fail of pending) fail(error);
  }

  up(): void {
    if (!this.#connected) this.#reconnects++;
    this.#connected = true;
  }

  close(): void {
    this.#closed = true;
    const pending = [...this.#inflight];
    this.#inflight.clear();
    for (const fail of pending) fail(new MeshError('closed', 'bus is closed'));
  }
}

/** What the log store and KV buckets share with the bus. */
export interface NatsContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Subject prefix, e.g. `mesh`. */
  readonly prefix: string;
  /** Replicas for streams and KV buckets. */
  readonly replicas: number;
  readonly requestTimeoutMs: number;
  readonly logger: NatsBusLogger;
  readonly link: Link;
}

/** True when a JetStream call failed because the subject's last sequence was not the expected one. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === ApiCode.WrongLastSequence;
}

/** The subject's actual last sequence a "wrong last sequence: <n>" error names, if it does. */
export function actualLastSequence(err: unknown): number | undefined {
  if (!isWrongLastSequence(err)) return undefined;
  const n = Number(/wrong last sequence: (\d+)/.exec((err as Error).message)?.[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Maps a NATS error onto the bus contract: connection trouble and an unavailable JetStream become
 * `BusUnavailableError`, a closed connection MeshError `closed`; bus errors pass through.
 */
export function toBusError(err: unknown): Error {
  if (
    err instanceof BusUnavailableError ||
    err instanceof OffsetConflictError ||
    err instanceof KvConflictError ||
    err instanceof NoRespondersError ||
    err instanceof MeshError
  ) {
    return err;
  }
  if (err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError) {
    return new MeshError('closed', 'bus is closed', { cause: err });
  }
  if (err instanceof errors.TimeoutError) {
    return new BusUnavailableError('NATS did not answer in time', { cause: err });
  }
  if (err instanceof errors.ConnectionError || err instanceof errors.RequestError) {
    return new BusUnavailableError(`NATS request failed: ${err.message}`, { cause: err });
  }
  if (err instanceof Error && err.name === 'JetStreamNotEnabled') {
    return new BusUnavailableError('JetStream is not available', { cause: err });
  }
  if (err instanceof JetStreamApiError) {
    const code = err.code;
    if (
      err.status === 503 ||
      code === ApiCode.ClusterNotAvailable ||
      code === ApiCode.ClusterNotLeader ||
      code === ApiCode.StreamOffline
    ) {
      return new BusUnavailableError(`JetStream is unavailable: ${err.message}`, { cause: err });
    }
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Runs a setup step (connecting, creating a stream or bucket), retrying while JetStream is not ready:
 * a cluster still electing leaders, a replicated stream still being created by another node. Gives up
 * after 3 request timeouts, or at once when the connection is down.
 */
export async function settle<T>(
  link: Link,
  logger: NatsBusLogger,
  requestTimeoutMs: number,
  step: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + 3 * requestTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      const mapped = toBusError(err);
      if (!(mapped instanceof BusUnavailableError) || !link.connected || Date.now() > deadline) throw mapped;
      logger.warn({ err: mapped.message, attempt }, 'JetStream not ready yet; retrying');
      await sleep(Math.min(200 * 2 ** attempt, 2000));
    }
  }
}

/**
 * Runs a write through `link`, retrying it while JetStream answers "unavailable" although the
 * connection is up (a replicated stream electing its leader), for up to `timeoutMs`. Only for writes
 * that are safe to repeat. A dropped connection still fails at once.
 */
export async function retryWhileUp<T>(link: Link, timeoutMs: number, op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await link.run(op);
    } catch (err) {
      const remainingMs = deadline - Date.now();
      if (!(err instanceof BusUnavailableError) || !link.connected || remainingMs < 100) throw err;
      await sleep(Math.min(50 * 2 ** attempt, 1000, remainingMs - 50));
    }
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
