import type { Logger } from 'pino';
import type { Bus, KvBucket, KvKeyMirror } from '../bus/bus.js';
import { MirrorKeeper } from './mirrorKeeper.js';

/**
 * "Who is here, on which node": KV entries `<subject>.<nodeId>` with a TTL, written when a subject's
 * first local holder arrives, refreshed while any stays, deleted when the last leaves. A crashed node
 * stops refreshing, so its entries expire and other nodes can tell. Subjects are agent ids (directory)
 * or `<collaborationId>.<agentId>` (collaboration members).
 *
 * Lookups answer from a local mirror of the bucket's keys (one KV watch per bucket and node) instead
 * of listing keys on the server, which costs a JetStream consumer per listing. The mirror lags a
 * moment behind writes from other nodes, so an answer "held nowhere else" is confirmed by a listing
 * before anyone acts on it (`hosts`, `locate` with `confirm`); until the mirror is loaded, and while
 * it is being replaced after its watch ended, lookups list keys as before.
 */
export class TtlPresence {
  /** subject → local holder count. */
  readonly #local = new Map<string, number>();
  /** subject → when this node last wrote its entry; oldest first (re-inserted on every write). */
  readonly #written = new Map<string, number>();
  readonly #refresher: NodeJS.Timeout;
  readonly #everyMs: number;
  readonly #tickMs: number;
  readonly #mirror: MirrorKeeper<KvKeyMirror>;

  private constructor(
    readonly nodeId: string,
    readonly bucket: KvBucket,
    readonly log: Logger,
    ttlMs: number,
  ) {
    // Each entry is rewritten every ttl/3; the writes are spread over ticks instead of one burst,
    // which measurably hurt cross-node latency at the 99th percentile.
    this.#everyMs = Math.max(50, ttlMs / 3);
    this.#tickMs = Math.max(10, Math.min(100, this.#everyMs / 10));
    this.#refresher = setInterval(() => {
      this.#refresh();
      this.#mirror.keep();
    }, this.#tickMs);
    this.#refresher.unref();
    this.#mirror = new MirrorKeeper(() => bucket.mirrorKeys(), 'presence', log);
  }

  /** Opens bucket `name` with entries that expire `ttlMs` after their node last refreshed them. */
  static async create(
    bus: Bus,
    name: string,
    nodeId: string,
    ttlMs: number,
    log: Logger,
  ): Promise<TtlPresence> {
    return new TtlPresence(nodeId, await bus.kv(name, { ttlMs }), log, ttlMs);
  }

  /** One more local holder of `subject`; resolves once this node's entry is written. */
  async attached(subject: string): Promise<void> {
    const n = this.#local.get(subject) ?? 0;
    this.#local.set(subject, n + 1);
    if (n === 0) {
      this.#stamp(subject);
      await this.bucket.put(this.#key(subject), new Uint8Array(0));
    }
  }

  #stamp(subject: string): void {
    this.#written.delete(subject);
    this.#written.set(subject, Date.now());
  }

  /** One local holder fewer; the last one removes this node's entry. */
  detached(subject: string): void {
    const n = (this.#local.get(subject) ?? 1) - 1;
    if (n > 0) {
      this.#local.set(subject, n);
      return;
    }
    this.#local.delete(subject);
    this.#written.delete(subject);
    this.bucket.delete(this.#key(subject)).catch((error: unknown) => {
      this.log.warn({ err: error, subject }, 'could not clear presence entry');
    });
  }

  /** Whether this node currently holds `subject`. */
  here(subject: string): boolean {
    return this.#local.has(subject);
  }

  /** Nodes other than this one that hold `subject`; "none" is confirmed on the server. */
  async elsewhere(subject: string): Promise<string[]> {
    return (await this.hosts(subject)).filter((n) => n !== this.nodeId);
  }

  /** Nodes that hold `subject` (this one included); "none" is confirmed on the server. */
  async hosts(subject: string): Promise<string[]> {
    const seen = this.#mirror.view();
    if (seen) {
      const nodes = (this.#group(seen.keys(`${subject}.`), subject).get(subject) ?? []).filter(
        (n) => n !== this.nodeId,
      );
      if (this.#local.has(subject)) nodes.push(this.nodeId);
      if (nodes.length > 0) return nodes;
    }
    return (await this.locate(subject)).get(subject) ?? [];
  }

  /**
   * subject → nodes holding it, for subjects starting with `prefix` (all when empty), as this node
   * has seen them (`undefined` while the mirror is not loaded): a subject just written elsewhere may
   * be missing for a moment.
   */
  seen(prefix = ''): Map<string, string[]> | undefined {
    const mirror = this.#mirror.view();
    return mirror && this.#group(mirror.keys(prefix), prefix);
  }

  /** subject → nodes holding it, for subjects starting with `prefix` (all when empty), listed on the server. */
  async locate(prefix = ''): Promise<Map<string, string[]>> {
    return this.#group(await this.bucket.keys(prefix), prefix);
  }

  #group(keys: Iterable<string>, prefix: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const key of keys) {
      const dot = key.lastIndexOf('.');
      if (dot <= 0) continue;
      const subject = key.slice(0, dot);
      if (prefix && subject !== prefix && !subject.startsWith(`${prefix}.`)) continue;
      const nodes = out.get(subject) ?? [];
      nodes.push(key.slice(dot + 1));
      out.set(subject, nodes);
    }
    return out;
  }

  #key(subject: string): string {
    return `${subject}.${this.nodeId}`;
  }

  #refresh(): void {
    // Write the entries that are due, oldest first, at most an even share of all entries per tick.
    const now = Date.now();
    const budget = Math.ceil((this.#written.size * this.#tickMs) / this.#everyMs) + 1;
    let done = 0;
    for (const [subject, at] of this.#written) {
      if (done >= budget || now - at < this.#everyMs) break;
      done++;
      // Unconfirmed: a refresh is repeated every third of the TTL, and one that was lost (a bus
      // outage) is written again by the next, even if the entry lapsed meanwhile.
      try {
        this.bucket.touch(this.#key(subject), new Uint8Array(0));
      } catch {
        return; // the bus is down: due entries are retried on the next tick
      }
      this.#stamp(subject);
    }
  }

  /** Stops refreshing and removes this node's entries. */
  async close(): Promise<void> {
    clearInterval(this.#refresher);
    this.#mirror.close();
    const subjects = [...this.#local.keys()];
    this.#local.clear();
    this.#written.clear();
    await Promise.all(subjects.map((s) => this.bucket.delete(this.#key(s)).catch(() => {})));
  }
}
