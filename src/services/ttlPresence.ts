import type { Logger } from 'pino';
import type { Bus, KvBucket } from '../bus/bus.js';

/**
 * "Who is here, on which node": KV entries `<subject>.<nodeId>` with a TTL, written when a subject's
 * first local holder arrives, refreshed while any stays, deleted when the last leaves. A crashed node
 * stops refreshing, so its entries expire and other nodes can tell. Subjects are agent ids (directory)
 * or `<collaborationId>.<agentId>` (collaboration members).
 */
export class TtlPresence {
  /** subject → local holder count. */
  readonly #local = new Map<string, number>();
  readonly #refresher: NodeJS.Timeout;

  private constructor(
    readonly nodeId: string,
    readonly bucket: KvBucket,
    readonly log: Logger,
    ttlMs: number,
  ) {
    this.#refresher = setInterval(() => this.#refresh(), Math.max(50, ttlMs / 3));
    this.#refresher.unref();
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
    if (n === 0) await this.bucket.put(this.#key(subject), new Uint8Array(0));
  }

  /** One local holder fewer; the last one removes this node's entry. */
  detached(subject: string): void {
    const n = (this.#local.get(subject) ?? 1) - 1;
    if (n > 0) {
      this.#local.set(subject, n);
      return;
    }
    this.#local.delete(subject);
    this.bucket.delete(this.#key(subject)).catch((error: unknown) => {
      this.log.warn({ err: error, subject }, 'could not clear presence entry');
    });
  }

  /** Whether this node currently holds `subject`. */
  here(subject: string): boolean {
    return this.#local.has(subject);
  }

  /** Nodes other than this one that hold `subject`. */
  async elsewhere(subject: string): Promise<string[]> {
    return ((await this.locate(subject)).get(subject) ?? []).filter((n) => n !== this.nodeId);
  }

  /** subject → nodes holding it, for subjects starting with `prefix` (all when empty). */
  async locate(prefix = ''): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const key of await this.bucket.keys(prefix)) {
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
    for (const subject of this.#local.keys()) {
      this.bucket.put(this.#key(subject), new Uint8Array(0)).catch((error: unknown) => {
        this.log.warn({ err: error, subject }, 'presence refresh failed');
      });
    }
  }

  /** Stops refreshing and removes this node's entries. */
  async close(): Promise<void> {
    clearInterval(this.#refresher);
    const subjects = [...this.#local.keys()];
    this.#local.clear();
    await Promise.all(subjects.map((s) => this.bucket.delete(this.#key(s)).catch(() => {})));
  }
}
