import type { Logger } from 'pino';
import type { Bus, KvBucket } from '../bus/bus.js';

/**
 * Which node hosts which collaboration member right now: KV entries `<collab>.<agent>.<node>` with a
 * TTL, written when an agent's first local stream attaches, refreshed while it stays, deleted when the
 * last one detaches. A crashed node stops refreshing, so its entries expire and other nodes can tell.
 */
export class MemberPresence {
  /** `<collab>.<agent>` → local stream count. */
  readonly #local = new Map<string, number>();
  readonly #refresher: NodeJS.Timeout;

  private constructor(
    readonly nodeId: string,
    readonly bucket: KvBucket,
    readonly ttlMs: number,
    readonly log: Logger,
  ) {
    this.#refresher = setInterval(() => void this.#refresh(), Math.max(50, ttlMs / 3));
    this.#refresher.unref();
  }

  static async create(bus: Bus, nodeId: string, ttlMs: number, log: Logger): Promise<MemberPresence> {
    return new MemberPresence(nodeId, await bus.kv('members', { ttlMs }), ttlMs, log);
  }

  /** A local stream of `agentId` is attaching to `collabId`; resolves once the entry is written. */
  async attached(collabId: string, agentId: string): Promise<void> {
    const key = `${collabId}.${agentId}`;
    const n = this.#local.get(key) ?? 0;
    this.#local.set(key, n + 1);
    if (n === 0) await this.bucket.put(`${key}.${this.nodeId}`, new Uint8Array(0));
  }

  /** A local stream detached; the last one removes this node's entry. */
  detached(collabId: string, agentId: string): void {
    const key = `${collabId}.${agentId}`;
    const n = (this.#local.get(key) ?? 1) - 1;
    if (n > 0) {
      this.#local.set(key, n);
      return;
    }
    this.#local.delete(key);
    this.bucket.delete(`${key}.${this.nodeId}`).catch((error: unknown) => {
      this.log.warn({ err: error, collaborationId: collabId, agentId }, 'could not clear member presence');
    });
  }

  /** Nodes other than this one where `agentId` is attached to `collabId`. */
  async elsewhere(collabId: string, agentId: string): Promise<string[]> {
    const prefix = `${collabId}.${agentId}.`;
    const keys = await this.bucket.keys(prefix);
    return keys.map((k) => k.slice(prefix.length)).filter((n) => n !== this.nodeId);
  }

  /** Whether this node currently hosts `agentId` in `collabId`. */
  hostsHere(collabId: string, agentId: string): boolean {
    return this.#local.has(`${collabId}.${agentId}`);
  }

  #put(key: string): void {
    this.bucket.put(`${key}.${this.nodeId}`, new Uint8Array(0)).catch((error: unknown) => {
      this.log.warn({ err: error, key }, 'could not write member presence');
    });
  }

  async #refresh(): Promise<void> {
    for (const key of this.#local.keys()) this.#put(key);
  }

  async close(): Promise<void> {
    clearInterval(this.#refresher);
    const keys = [...this.#local.keys()];
    this.#local.clear();
    await Promise.all(keys.map((k) => this.bucket.delete(`${k}.${this.nodeId}`).catch(() => {})));
  }
}
