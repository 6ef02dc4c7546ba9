import { AsyncQueue } from '@a2a-mesh/protocol';
import { JetStreamApiError, StorageType } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { headers, nuid, type QueuedIterator } from '@nats-io/transport-node';
import {
  type BusData,
  BusUnavailableError,
  busBytes,
  type KvBucket,
  type KvChange,
  KvConflictError,
  type KvEntry,
  type KvKeyMirror,
  type KvMirror,
  type KvOptions,
  type KvWatcher,
} from './bus.js';
import { isWrongLastSequence, type NatsContext, retryWhileUp, settle, toBusError } from './natsContext.js';
import { PrefixMap } from './prefixMap.js';

/** How long a key listing may go without a key before it is made again (at most the request timeout). */
const LISTING_STALL_MS = 2_000;
/** Listings made before giving up on a stalling one. */
const LISTING_ATTEMPTS = 3;

/**
 * A watcher started at time t reports, from its initial snapshot, entries written after t minus this
 * much (server and node clocks may differ a little): better a recent write twice than a write lost
 * between `watch()` and the moment its consumer exists.
 */
const WATCH_CLOCK_SKEW_MS = 2_000;
/** Header with a random id per conditional write, to recognise our own write behind a duplicate ack. */
const WRITE_HEADER = 'Mesh-Write';
const KEY = /^[-/=.\w]+$/;

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
  const { kv, status } = await settle(ctx.link, ctx.logger, ctx.requestTimeoutMs, async () => {
    const kvm = new Kvm(ctx.js);
    try {
      const kv = await kvm.create(name, {
        history: 1,
        replicas: ctx.replicas,
        storage: StorageType.File,
        timeout: ctx.requestTimeoutMs,
        ...(ttlMs > 0 ? { ttl: ttlMs } : {}),
      });
      return { kv, status: await kv.status() };
    } catch (error) {
      // Another node created the bucket at the same moment: JetStream can answer the second create
      // with "subjects overlap with an existing stream" rather than with the stream. Bind to it
      // (binding checks nothing, the status read does); if there is no such bucket, the first
      // error stands.
      if (!(error instanceof JetStreamApiError)) throw error;
      const kv = await kvm.open(name, { timeout: ctx.requestTimeoutMs });
      const status = await kv.status().catch(() => {
        throw error;
      });
      ctx.logger.debug(
        { bucket: name, err: error.message },
        'KV bucket created by another node at once; bound to it',
      );
      return { kv, status };
    }
  });
  if (status.ttl !== ttlMs) {
    ctx.logger.warn(
      { bucket: name, ttlMs: status.ttl, requestedTtlMs: ttlMs },
      'KV bucket exists with another TTL; keeping it',
    );
  }
  return new NatsKvBucket(ctx, kv, name, status.ttl);
}

/** A mesh KV bucket on a JetStream KV bucket (history 1, TTL as the stream's max age). */
export class NatsKvBucket implements KvBucket {
  readonly #ctx: NatsContext;
  readonly #kv: KV;
  readonly #name: string;
  readonly #ttlMs: number;
  readonly #watchers = new Set<NatsKvWatcher>();
  /** Watchers whose consumer does not exist yet: writes from this node wait for them, so they see the writes. */
  readonly #starting = new Set<Promise<void>>();
  /** Highest revision this instance has seen: a watcher's snapshot entries at or below it are not news. */
  #knownRevision = 0;

  constructor(ctx: NatsContext, kv: KV, name: string, ttlMs: number) {
    this.#ctx = ctx;
    this.#kv = kv;
    this.#name = name;
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

  async put(key: string, value: BusData): Promise<number> {
    await this.#watchersReady();
    const { link, requestTimeoutMs } = this.#ctx;
    const bytes = busBytes(value);
    return this.#saw(await retryWhileUp(link, requestTimeoutMs, () => this.#kv.put(key, bytes)));
  }

  touch(key: string, value: Uint8Array): void {
    // A core publish to the bucket's subject is stored like a put, without a request and its reply.
    this.#ctx.link.check();
    this.#ctx.nc.publish(`$KV.${this.#name}.${key}`, value);
  }

  /**
   * Writes `key` only if its last revision is `expected` (0: no entry). Besides the expected-sequence
   * header, the message id `<key>:<expected>` lets the stream store one write per revision: on a
   * replicated stream the header alone lets concurrent writers through (nats-server #4320).
   */
  async #writeIf(key: string, value: Uint8Array, expected: number): Promise<number> {
    if (key.startsWith('.') || key.endsWith('.') || !KEY.test(key)) throw new Error(`invalid key: ${key}`);
    const { js, jsm, link, requestTimeoutMs } = this.#ctx;
    const nonce = nuid.next();
    const h = headers();
    h.set(WRITE_HEADER, nonce);
    let msgId = `${key}:${expected}`;
    try {
      for (;;) {
        const id = msgId;
        // Repeating is safe: a repeat of a stored write is a duplicate of our own message.
        const ack = await retryWhileUp(link, requestTimeoutMs, () =>
          js.publish(`$KV.${this.#name}.${key}`, value, {
            headers: h,
            msgID: id,
            expect: { lastSubjectSequence: expected },
            timeout: requestTimeoutMs,
          }),
        );
        if (!ack.duplicate) return this.#saw(ack.seq);
        const m = await link.run(() => jsm.streams.getMessage(`KV_${this.#name}`, { seq: ack.seq }));
        if (m?.header.get(WRITE_HEADER) === nonce) return this.#saw(ack.seq);
        // A create whose id still names an entry that has just expired: the key is free, and racing
        // creators all pick the same next id.
        if (m === null && this.#ttlMs > 0 && expected === 0 && msgId === `${key}:0`) {
          msgId = `${key}:0:${ack.seq}`;
          continue;
        }
        throw new KvConflictError(key);
      }
    } catch (err) {
      throw isWrongLastSequence(err) ? new KvConflictError(key) : err;
    }
  }

  async create(key: string, data: BusData): Promise<number> {
    await this.#watchersReady();
    const value = busBytes(data);
    try {
      return await this.#writeIf(key, value, 0);
    } catch (err) {
      if (!(err instanceof KvConflictError)) throw err;
    }
    // The last message may be a delete marker: then the key can be created on top of it.
    const e = await this.#ctx.link.run(() => this.#kv.get(key));
    if (!e || e.operation === 'PUT') throw new KvConflictError(key);
    return this.#writeIf(key, value, e.revision);
  }

  async update(key: string, data: BusData, revision: number): Promise<number> {
    await this.#watchersReady();
    const value = busBytes(data);
    if (!(revision > 0)) {
      this.#ctx.link.check();
      throw new KvConflictError(key);
    }
    return this.#writeIf(key, value, revision);
  }

  async delete(key: string): Promise<void> {
    await this.#watchersReady();
    await retryWhileUp(this.#ctx.link, this.#ctx.requestTimeoutMs, () => this.#kv.delete(key));
  }

  async keys(prefix = ''): Promise<string[]> {
    // Narrow on the server by whole tokens, then by the exact prefix here.
    const dot = prefix.lastIndexOf('.');
    const filter = dot > 0 ? `${prefix.slice(0, dot)}.>` : '>';
    const { link, requestTimeoutMs } = this.#ctx;
    // The server sends a listing's keys in one burst; a gap this long means a key that will not come.
    const stallMs = Math.min(requestTimeoutMs, LISTING_STALL_MS);
    return link.run(async () => {
      // A listing consumer is told at its start how many keys to expect. An entry that expires
      // (TTL) before it is delivered never comes, and the listing would wait for the consumer's
      // next heartbeat. A listing that stalls is made again on a fresh consumer, which no longer
      // counts the expired entry. The stall bound is short, not a request's time: a caller waiting
      // on a listing (`agents/get` on a presence bucket) would otherwise time out first.
      for (let attempt = 1; ; attempt++) {
        const out = await this.#listKeys(filter, prefix, stallMs);
        if (out) return out;
        if (attempt === LISTING_ATTEMPTS) throw new BusUnavailableError('listing keys timed out');
      }
    });
  }

  /** One listing of the keys under `filter` starting with `prefix`; undefined if it stalled for `stallMs`. */
  async #listKeys(filter: string, prefix: string, stallMs: number): Promise<string[] | undefined> {
    const iter = await this.#kv.keys(filter);
    let stalled = false;
    const timer = setTimeout(() => {
      stalled = true;
      iter.stop();
    }, stallMs);
    try {
      const out: string[] = [];
      for await (const k of iter) {
        timer.refresh();
        if (k.startsWith(prefix)) out.push(k);
      }
      return stalled ? undefined : out;
    } finally {
      clearTimeout(timer);
    }
  }

  watch(): KvWatcher {
    return this.#watch(false);
  }

  mirrorKeys(): KvKeyMirror {
    return this.#watch(true, false);
  }

  mirror(): KvMirror {
    return this.#watch(true, true);
  }

  #watch(mirror: boolean, values = false): NatsKvWatcher {
    const watcher = new NatsKvWatcher(
      this.#ctx,
      this.#kv,
      this.#ttlMs,
      this.#knownRevision,
      mirror,
      values,
      () => this.#watchers.delete(watcher),
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
  /** The last value written (kept only by a mirror with values). */
  value?: Uint8Array;
}

/**
 * Live changes of a bucket. Puts and deletes come from a JetStream watch; expiries do not (before
 * nats-server 2.11 an entry aging out leaves no marker), so the watcher tracks live keys and, once a
 * key's TTL has passed without a new write, confirms it is gone and reports it with `value: undefined`
 * and the revision of its last write. As a key mirror it reports nothing and answers from those live
 * keys, the watch's initial snapshot included.
 */
class NatsKvWatcher implements KvWatcher, KvMirror {
  readonly #ctx: NatsContext;
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #queue: AsyncQueue<KvChange>;
  readonly #live = new PrefixMap<LiveKey>();
  readonly #startedAt = Date.now();
  readonly #knownRevision: number;
  /** A key mirror pushes nothing to the queue (nobody reads it). */
  readonly #mirror: boolean;
  /** Keeps each live key's last value (`get`). */
  readonly #values: boolean;
  readonly #onClose: () => void;
  /** Resolves once the watch consumer exists (or could not be created). */
  readonly ready: Promise<void>;
  /** Resolves once the initial snapshot is in `#live`. */
  readonly loaded: Promise<void>;
  #snapshotDone!: () => void;
  #snapshotFailed!: (error: Error) => void;
  #iter: QueuedIterator<KvWatchEntry> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #inSnapshot = true;
  #closed = false;

  constructor(
    ctx: NatsContext,
    kv: KV,
    ttlMs: number,
    knownRevision: number,
    mirror: boolean,
    values: boolean,
    onClose: () => void,
  ) {
    this.#ctx = ctx;
    this.#kv = kv;
    this.#ttlMs = ttlMs;
    this.#knownRevision = knownRevision;
    this.#mirror = mirror;
    this.#values = values;
    this.#onClose = onClose;
    this.#queue = new AsyncQueue<KvChange>(() => this.#stop());
    this.loaded = new Promise<void>((resolve, reject) => {
      this.#snapshotDone = resolve;
      this.#snapshotFailed = reject;
    });
    this.loaded.catch(() => {});
    this.ready = this.#run();
  }

  [Symbol.asyncIterator](): AsyncIterator<KvChange> {
    return this.#queue[Symbol.asyncIterator]();
  }

  get current(): boolean {
    return !this.#closed;
  }

  get(key: string): KvEntry | undefined {
    const live = this.#live.get(key);
    return live?.value === undefined ? undefined : { key, value: live.value, revision: live.revision };
  }

  keys(prefix = ''): string[] {
    return this.#live.withPrefix(prefix).map(([k]) => k);
  }

  close(): void {
    this.#queue.end();
  }

  #push(change: KvChange): void {
    if (!this.#mirror) this.#queue.push(change);
  }

  #endSnapshot(): void {
    this.#inSnapshot = false;
    this.#snapshotDone();
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#snapshotFailed(new BusUnavailableError('KV watch ended'));
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
    // nats.js flags the snapshot's last entry as an update, and every entry when the snapshot is
    // empty: then nothing marks its end, so ask the watch consumer (nats.js keeps it as `_data`; its
    // cached info has the snapshot size nats.js counted with).
    const consumer = (iter as { _data?: unknown })._data as
      | { info?: (cached: boolean) => Promise<{ num_pending: number }> }
      | undefined;
    if (typeof consumer?.info === 'function') {
      consumer.info(true).then(
        (info) => {
          if (info.num_pending === 0 && this.#inSnapshot) this.#endSnapshot();
        },
        () => {},
      );
    }
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
      } finally {
        this.#stop();
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
    if (deleted) {
      // Deleting a key that does not exist writes a marker too; only report real deletions.
      if (this.#live.delete(e.key) && news)
        this.#push({ key: e.key, value: undefined, revision: e.revision });
    } else {
      const live: LiveKey = { revision: e.revision, writtenAt: e.created.getTime() };
      if (this.#values) live.value = e.value.slice();
      this.#live.set(e.key, live);
      if (news) this.#push({ key: e.key, value: e.value, revision: e.revision });
    }
    if (e.isUpdate && this.#inSnapshot) this.#endSnapshot();
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
          this.#push({ key, value: undefined, revision: live.revision });
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
