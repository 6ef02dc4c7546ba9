import { randomUUID } from 'node:crypto';
import { AsyncQueue, MeshError, type RequestOptions, topicMatches } from '@a2a-mesh/protocol';
import { Packed } from '../util/binary.js';
import {
  type AgentRequestHandler,
  type AppendOptions,
  type Bus,
  type BusData,
  type BusMessage,
  type BusStatus,
  busBytes,
  isLogName,
  type KvBucket,
  type KvChange,
  KvConflictError,
  type KvEntry,
  type KvKeyMirror,
  type KvMirror,
  type KvOptions,
  type KvWatcher,
  type LogEntry,
  type LogFollower,
  type LogInfo,
  NoRespondersError,
  OffsetConflictError,
  type Registration,
} from './bus.js';
import { PrefixMap } from './prefixMap.js';

/** Options for the in-process bus. */
export interface EmbeddedBusOptions {
  /** Entries kept per log before the oldest are trimmed (default 100000). */
  maxLogEntries?: number;
}

/** What the embedded bus hands out for a `Packed` write: the value itself; its bytes only if asked for. */
abstract class Kept {
  constructor(readonly packed: Packed) {}

  get decoded(): unknown {
    return this.packed.value;
  }
}

class KeptEntry extends Kept implements LogEntry {
  constructor(
    readonly offset: number,
    packed: Packed,
  ) {
    super(packed);
  }

  get data(): Uint8Array {
    return this.packed.bytes;
  }
}

function logEntry(offset: number, data: BusData): LogEntry {
  return data instanceof Packed ? new KeptEntry(offset, data) : { offset, data };
}

class MemoryLog {
  entries: BusData[] = [];
  /** Offset of entries[0]. */
  first = 1;
  readonly followers = new Set<AsyncQueue<LogEntry>>();

  get last(): number {
    return this.first + this.entries.length - 1;
  }
}

/**
 * The Bus in one process: logs, KV with TTL, agent routing and topics, with the same contract as the
 * NATS bus. Used by a single node that needs no NATS, and as the reference in tests.
 */
export class EmbeddedBus implements Bus {
  readonly kind = 'embedded';
  readonly #epoch = randomUUID().slice(0, 8);
  readonly #logs = new Map<string, MemoryLog>();
  readonly #buckets = new Map<string, MemoryKv>();
  readonly #agents = new Map<string, AgentRequestHandler[]>();
  readonly #subs = new Set<{ pattern: string; handler: (m: BusMessage) => void }>();
  readonly #maxLogEntries: number;
  #closed = false;

  constructor(options: EmbeddedBusOptions = {}) {
    this.#maxLogEntries = options.maxLogEntries ?? 100_000;
  }

  get connected(): boolean {
    return !this.#closed;
  }

  #check(): void {
    if (this.#closed) throw new MeshError('closed', 'bus is closed');
  }

  #log(name: string): MemoryLog {
    let log = this.#logs.get(name);
    if (!log) {
      // Checked once, when the log is made: a name that is in the map was checked then.
      if (!isLogName(name)) throw new MeshError('protocol', `invalid log name ${JSON.stringify(name)}`);
      log = new MemoryLog();
      this.#logs.set(name, log);
    }
    return log;
  }

  async append(name: string, data: BusData, options: AppendOptions = {}): Promise<number> {
    this.#check();
    const log = this.#log(name);
    if (options.expectedLastOffset !== undefined && options.expectedLastOffset !== log.last) {
      throw new OffsetConflictError(name, options.expectedLastOffset, log.last);
    }
    log.entries.push(data);
    const offset = log.last;
    if (log.entries.length > this.#maxLogEntries) {
      const drop = log.entries.length - this.#maxLogEntries;
      log.entries.splice(0, drop);
      log.first += drop;
    }
    const entry = logEntry(offset, data);
    for (const f of log.followers) f.push(entry);
    return offset;
  }

  async info(name: string): Promise<LogInfo> {
    this.#check();
    const log = this.#logs.get(name);
    if (!log) return { epoch: this.#epoch, firstOffset: 1, lastOffset: 0 };
    return { epoch: this.#epoch, firstOffset: log.first, lastOffset: log.last };
  }

  async read(name: string, fromOffset: number, limit: number): Promise<LogEntry[]> {
    this.#check();
    const log = this.#logs.get(name);
    if (!log) return [];
    const start = Math.max(fromOffset, log.first);
    if (start !== fromOffset) return [];
    const out: LogEntry[] = [];
    for (let o = start; o <= log.last && out.length < limit; o++) {
      out.push(logEntry(o, log.entries[o - log.first]!));
    }
    return out;
  }

  follow(name: string, fromOffset: number): LogFollower {
    this.#check();
    const log = this.#log(name);
    const queue: AsyncQueue<LogEntry> = new AsyncQueue(() => log.followers.delete(queue));
    if (fromOffset < log.first) {
      queue.fail(
        new MeshError('protocol', `log ${name}: offset ${fromOffset} was trimmed (first is ${log.first})`),
      );
    } else {
      for (let o = fromOffset; o <= log.last; o++) queue.push(logEntry(o, log.entries[o - log.first]!));
      log.followers.add(queue);
    }
    return Object.assign(queue, { close: () => queue.end() });
  }

  async deleteLog(name: string): Promise<void> {
    const log = this.#logs.get(name);
    if (!log) return;
    for (const f of log.followers) f.end();
    this.#logs.delete(name);
  }

  async kv(bucket: string, options: KvOptions = {}): Promise<KvBucket> {
    this.#check();
    let kv = this.#buckets.get(bucket);
    if (!kv) {
      kv = new MemoryKv(options.ttlMs ?? 0);
      this.#buckets.set(bucket, kv);
    }
    return kv;
  }

  async serveAgent(agentId: string, handler: AgentRequestHandler): Promise<Registration> {
    this.#check();
    const list = this.#agents.get(agentId) ?? [];
    list.push(handler);
    this.#agents.set(agentId, list);
    return {
      close: async () => {
        const l = this.#agents.get(agentId);
        if (!l) return;
        const i = l.indexOf(handler);
        if (i >= 0) l.splice(i, 1);
        if (l.length === 0) this.#agents.delete(agentId);
      },
    };
  }

  async requestAgent(agentId: string, data: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    this.#check();
    const handler = this.#agents.get(agentId)?.[0];
    if (!handler) throw new NoRespondersError(agentId);
    const ac = new AbortController();
    const timeoutMs = options.timeoutMs ?? 30_000;
    const timer = setTimeout(
      () => ac.abort(new MeshError('timeout', `request to ${agentId} timed out`)),
      timeoutMs,
    );
    const onAbort = () => ac.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await new Promise<Uint8Array>((resolve, reject) => {
        ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
        handler(data, ac.signal).then(resolve, reject);
      });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    this.#check();
    for (const s of this.#subs) {
      if (topicMatches(s.pattern, topic)) s.handler({ topic, data });
    }
  }

  async subscribe(pattern: string, handler: (message: BusMessage) => void): Promise<Registration> {
    this.#check();
    const sub = { pattern, handler };
    this.#subs.add(sub);
    return { close: async () => void this.#subs.delete(sub) };
  }

  status(): AsyncIterable<BusStatus> {
    const q = new AsyncQueue<BusStatus>();
    q.push({ type: 'connected' });
    return q;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const log of this.#logs.values()) for (const f of log.followers) f.end();
    for (const kv of this.#buckets.values()) kv.close();
    this.#subs.clear();
    this.#agents.clear();
  }
}

interface KvSlot {
  data: BusData;
  revision: number;
  expiresAt: number;
}

class KeptKvEntry extends Kept implements KvEntry {
  constructor(
    readonly key: string,
    readonly revision: number,
    packed: Packed,
  ) {
    super(packed);
  }

  get value(): Uint8Array {
    return this.packed.bytes;
  }
}

function kvEntry(key: string, slot: KvSlot): KvEntry {
  const { data, revision } = slot;
  return data instanceof Packed ? new KeptKvEntry(key, revision, data) : { key, value: data, revision };
}

class MemoryKv implements KvBucket {
  readonly #map = new PrefixMap<KvSlot>();
  readonly #watchers = new Set<AsyncQueue<KvChange>>();
  readonly #ttlMs: number;
  readonly #sweeper: NodeJS.Timeout | undefined;
  #revision = 0;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
    if (ttlMs > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.min(ttlMs / 4, 1000)));
      this.#sweeper.unref();
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, e] of this.#map) {
      if (e.expiresAt <= now) {
        this.#map.delete(key);
        this.#emit({ key, value: undefined, revision: ++this.#revision });
      }
    }
  }

  #live(key: string): KvSlot | undefined {
    const e = this.#map.get(key);
    if (e && e.expiresAt <= Date.now()) {
      this.#sweep();
      return undefined;
    }
    return e;
  }

  #emit(change: KvChange): void {
    for (const w of this.#watchers) w.push(change);
  }

  #write(key: string, data: BusData): number {
    const revision = ++this.#revision;
    this.#map.set(key, {
      data,
      revision,
      expiresAt: this.#ttlMs > 0 ? Date.now() + this.#ttlMs : Number.POSITIVE_INFINITY,
    });
    if (this.#watchers.size > 0) this.#emit({ key, value: busBytes(data), revision });
    return revision;
  }

  #entry(key: string): KvEntry | undefined {
    const e = this.#live(key);
    return e ? kvEntry(key, e) : undefined;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    return this.#entry(key);
  }

  async put(key: string, value: BusData): Promise<number> {
    return this.#write(key, value);
  }

  touch(key: string, value: Uint8Array): void {
    this.#write(key, value);
  }

  async create(key: string, value: BusData): Promise<number> {
    if (this.#live(key)) throw new KvConflictError(key);
    return this.#write(key, value);
  }

  async update(key: string, value: BusData, revision: number): Promise<number> {
    const e = this.#live(key);
    if (!e || e.revision !== revision) throw new KvConflictError(key);
    return this.#write(key, value);
  }

  async delete(key: string): Promise<void> {
    if (this.#map.delete(key)) this.#emit({ key, value: undefined, revision: ++this.#revision });
  }

  #keys(prefix: string): string[] {
    const now = Date.now();
    const out: string[] = [];
    for (const [k, e] of this.#map.withPrefix(prefix)) if (e.expiresAt > now) out.push(k);
    return out;
  }

  async keys(prefix = ''): Promise<string[]> {
    return this.#keys(prefix);
  }

  mirrorKeys(): KvKeyMirror {
    return this.mirror();
  }

  /** In one process the bucket is its own mirror: always current, nothing copied. */
  mirror(): KvMirror {
    let current = true;
    return {
      loaded: Promise.resolve(),
      get current() {
        return current;
      },
      keys: (prefix = '') => this.#keys(prefix),
      get: (key) => this.#entry(key),
      close: () => {
        current = false;
      },
    };
  }

  watch(): KvWatcher {
    const q: AsyncQueue<KvChange> = new AsyncQueue(() => this.#watchers.delete(q));
    this.#watchers.add(q);
    return Object.assign(q, { close: () => q.end() });
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    for (const w of this.#watchers) w.end();
  }
}
