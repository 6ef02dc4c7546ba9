import { AsyncQueue } from '@a2a-mesh/protocol';
import { StorageType } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import {
  type KvBucket,
  type KvChange,
  KvConflictError,
  type KvEntry,
  type KvOptions,
  type KvWatcher,
} from './bus.js';
import { isWrongLastSequence, type NatsContext, toBusError } from './natsContext.js';

/**
 * A watcher started at time t reports, from its initial snapshot, entries written after t minus this
 * much (server and node clocks may differ a little): better a recent write twice than a write lost
 * between `watch()` and the moment its consumer exists.
 */
const WATCH_CLOCK_SKEW_MS = 2_000;

/** The JetStream KV bucket name for a mesh bucket: `<prefix>_<bucket>`, invalid characters as `_`. */
export function kvBucketName(prefix: string, bucket: string): string {
  return `${prefix}_${bucket}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Opens (creating if needed) the KV bucket backing a mesh bucket. */
export async function openNatsKv(
  ctx: NatsContext,
  bucket: string,
  options: KvOptions,
): Promise<NatsKvBucket> {
  const name = kvBucketName(ctx.prefix, bucket);
  const ttlMs = options.ttlMs ?? 0;
  const kv = await ctx.link.run(() =>
    new Kvm(ctx.js).create(name, {
      history: 1,
      replicas: ctx.replicas,
      storage: StorageType.File,
      timeout: ctx.requestTimeoutMs,
      ...(ttlMs > 0 ? { ttl: ttlMs } : {}),
    }),
  );
  const status = await ctx.link.run(() => kv.status());
  if (status.ttl !== ttlMs) {
    ctx.logger.warn(
      { bucket: name, ttlMs: status.ttl, requestedTtlMs: ttlMs },
      'KV bucket exists with another TTL; keeping it',
    );
  }
  return new NatsKvBucket(ctx, kv, status.ttl);
}

/** A mesh KV bucket on a JetStream KV bucket (history 1, TTL as the stream's max age). */
export class NatsKvBucket implements KvBucket {
  readonly #ctx: NatsContext;
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #watchers = new Set<NatsKvWatcher>();
  /** Watchers whose consumer does not exist yet: writes from this node wait for them, so they see the writes. */
  readonly #starting = new Set<Promise<void>>();
  /** Highest revision this instance has seen: a watcher's snapshot entries at or below it are not news. */
  #knownRevision = 0;

  constructor(ctx: NatsContext, kv: KV, ttlMs: number) {
    this.#ctx = ctx;
    this.#kv = kv;
    this.#ttlMs = ttlMs;
  }

  #saw(revision: number): number {
    if (revision > this.#knownRevision) this.#knownRevision = revision;
    return revision;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const e = await this.#ctx.link.run(() => this.#kv.get(key));
    if (e?.operation !== 'PUT') return undefined;
    this.#saw(e.revision);
    return { key, value: e.value, revision: e.revision };
  }

  async #watchersReady(): Promise<void> {
    if (this.#starting.size > 0) await Promise.all(this.#starting);
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    await this.#watchersReady();
    return this.#saw(await this.#ctx.link.run(() => this.#kv.put(key, value)));
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    await this.#watchersReady();
    try {
      return this.#saw(await this.#ctx.link.run(() => this.#kv.create(key, value)));
    } catch (err) {
      throw isWrongLastSequence(err) ? new KvConflictError(key) : err;
    }
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    await this.#watchersReady();
    if (!(revision > 0)) {
      this.#ctx.link.check();
      throw new KvConflictError(key);
    }
    try {
      return this.#saw(await this.#ctx.link.run(() => this.#kv.update(key, value, revision)));
    } catch (err) {
      throw isWrongLastSequence(err) ? new KvConflictError(key) : err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.#watchersReady();
    await this.#ctx.link.run(() => this.#kv.delete(key));
  }

  async keys(prefix = ''): Promise<string[]> {
    // Narrow on the server by whole tokens, then by the exact prefix here.
    const dot = prefix.lastIndexOf('.');
    const filter = dot > 0 ? `${prefix.slice(0, dot)}.>` : '>';
    return this.#ctx.link.run(async () => {
      const out: string[] = [];
      for await (const k of await this.#kv.keys(filter)) if (k.startsWith(prefix)) out.push(k);
      return out;
    });
  }

  watch(): KvWatcher {
    const watcher = new NatsKvWatcher(this.#ctx, this.#kv, this.#ttlMs, this.#knownRevision, () =>
      this.#watchers.delete(watcher),
    );
    this.#watchers.add(watcher);
    const ready = watcher.ready.then(() => {
      this.#starting.delete(ready);
    });
    this.#starting.add(ready);
    return watcher;
  }

  /** Ends every watcher (bus shutdown). */
  close(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers.clear();
  }
}

interface LiveKey {
  revision: number;
  /** Server time of the last write, in ms. */
  writtenAt: number;
}

/**
 * Live changes of a bucket. Puts and deletes come from a JetStream watch; expiries do not (before
 * nats-server 2.11 an entry aging out leaves no marker), so the watcher tracks live keys and, once a
 * key's TTL has passed without a new write, confirms it is gone and reports it with `value: undefined`
 * and the revision of its last write.
 */
class NatsKvWatcher implements KvWatcher {
  readonly #ctx: NatsContext;
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #queue: AsyncQueue<KvChange>;
  readonly #live = new Map<string, LiveKey>();
  readonly #startedAt = Date.now();
  readonly #knownRevision: number;
  readonly #onClose: () => void;
  /** Resolves once the watch consumer exists (or could not be created). */
  readonly ready: Promise<void>;
  #iter: QueuedIterator<KvWatchEntry> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #inSnapshot = true;
  #closed = false;

  constructor(ctx: NatsContext, kv: KV, ttlMs: number, knownRevision: number, onClose: () => void) {
    this.#ctx = ctx;
    this.#kv = kv;
    this.#ttlMs = ttlMs;
    this.#knownRevision = knownRevision;
    this.#onClose = onClose;
    this.#queue = new AsyncQueue<KvChange>(() => this.#stop());
    this.ready = this.#run();
  }

  [Symbol.asyncIterator](): AsyncIterator<KvChange> {
    return this.#queue[Symbol.asyncIterator]();
  }

  close(): void {
    this.#queue.end();
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    this.#iter?.stop();
    if (this.#sweeper) clearInterval(this.#sweeper);
  }

  /** Starts the watch; resolves once its consumer exists, then keeps feeding the queue. */
  async #run(): Promise<void> {
    let iter: QueuedIterator<KvWatchEntry>;
    try {
      iter = await this.#ctx.link.run(() => this.#kv.watch({ include: KvWatchInclude.LastValue }));
    } catch (err) {
      this.#queue.fail(toBusError(err));
      return;
    }
    if (this.#closed) {
      iter.stop();
      return;
    }
    this.#iter = iter;
    if (this.#ttlMs > 0) {
      this.#sweeper = setInterval(() => void this.#sweep(), Math.max(100, Math.min(this.#ttlMs / 4, 1000)));
      this.#sweeper.unref();
    }
    void (async () => {
      try {
        for await (const e of iter) this.#onEntry(e);
        this.#queue.end();
      } catch (err) {
        this.#queue.fail(toBusError(err));
      }
    })();
  }

  #onEntry(e: KvWatchEntry): void {
    const deleted = e.operation !== 'PUT';
    // nats.js flags the last entry of the initial snapshot as an update already, so the snapshot
    // runs up to and including the first entry flagged as an update.
    const news =
      !this.#inSnapshot ||
      (e.revision > this.#knownRevision && e.created.getTime() >= this.#startedAt - WATCH_CLOCK_SKEW_MS);
    if (e.isUpdate) this.#inSnapshot = false;
    if (deleted) {
      // Deleting a key that does not exist writes a marker too; only report real deletions.
      if (this.#live.delete(e.key) && news)
        this.#queue.push({ key: e.key, value: undefined, revision: e.revision });
      return;
    }
    this.#live.set(e.key, { revision: e.revision, writtenAt: e.created.getTime() });
    if (news) this.#queue.push({ key: e.key, value: e.value, revision: e.revision });
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#closed || !this.#ctx.link.connected) return;
    this.#sweeping = true;
    try {
      const now = Date.now();
      for (const [key, live] of this.#live) {
        if (live.writtenAt + this.#ttlMs > now) continue;
        const e = await this.#kv.get(key).catch(() => undefined);
        if (e === undefined || this.#closed) return;
        const current = this.#live.get(key);
        if (current !== live) continue;
        if (e === null || e.operation !== 'PUT') {
          this.#live.delete(key);
          this.#queue.push({ key, value: undefined, revision: live.revision });
        } else if (e.revision !== live.revision) {
          // Rewritten; the watch delivers (or delivered) that write.
          live.writtenAt = Math.max(live.writtenAt, e.created.getTime());
        }
      }
    } finally {
      this.#sweeping = false;
    }
  }
}
