import { type AgentCard, type AgentEntry, RpcError } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import { type Bus, type KvBucket, type KvEntry, type KvMirror, kvValue } from '../bus/bus.js';
import type { Dispatcher } from '../rpc/dispatcher.js';
import { Packed } from '../util/binary.js';
import { busError } from './busErrors.js';
import { MirrorKeeper } from './mirrorKeeper.js';
import { TtlPresence } from './ttlPresence.js';

interface CardRecord {
  card: AgentCard;
  nodeId: string;
  updatedAt: number;
}

/** Directory settings. */
export interface DirectoryOptions {
  /** Presence entries expire this long after their node last refreshed them (ms, default 15000). */
  presenceTtlMs: number;
}

/**
 * `agents/*`: Agent Cards registered by `mesh/hello` (bucket `cards`), and where each agent is
 * connected (bucket `presence`: `<agentId>.<nodeId>` entries with a TTL refreshed by its node).
 *
 * Cards are written when an agent says hello and read on every A2A SendMessage (the caller rules)
 * and every `agents/discover`: each node keeps a mirror of the bucket with its values (one watch),
 * and reads a card from the bucket only when the mirror does not have it yet (written elsewhere a
 * moment ago) or is not current. A card rewritten on another node reaches the mirror after the
 * watch delivers it (about a millisecond on one NATS server).
 */
export class DirectoryService {
  readonly #mirror: MirrorKeeper<KvMirror>;

  private constructor(
    readonly nodeId: string,
    readonly cards: KvBucket,
    readonly presence: TtlPresence,
    readonly log: Logger,
  ) {
    this.#mirror = new MirrorKeeper(() => cards.mirror(), 'cards', log);
  }

  /** The card entry of `agentId`: from the mirror when it has it, else from the bucket. */
  async #card(agentId: string, view = this.#mirror.view()): Promise<KvEntry | undefined> {
    return view?.get(agentId) ?? (await this.cards.get(agentId));
  }

  static async create(
    bus: Bus,
    nodeId: string,
    options: DirectoryOptions,
    log: Logger,
  ): Promise<DirectoryService> {
    const [cards, presence] = await Promise.all([
      bus.kv('cards'),
      TtlPresence.create(bus, 'presence', nodeId, options.presenceTtlMs, log),
    ]);
    return new DirectoryService(nodeId, cards, presence, log);
  }

  register(d: Dispatcher): void {
    d.register('agents/discover', (p) => this.discover(p ?? {}));
    d.register('agents/get', (p) => this.get(p.agentId));
  }

  /** An agent's session said hello on this node: store its card (if given or new) and mark it online. */
  async online(agentId: string, card: AgentCard | undefined): Promise<void> {
    try {
      if (card) {
        await this.cards.put(
          agentId,
          new Packed({ card, nodeId: this.nodeId, updatedAt: Date.now() } satisfies CardRecord),
        );
      } else if (!(await this.#card(agentId))) {
        const fallback: AgentCard = { name: agentId, skills: [] };
        await this.cards.put(
          agentId,
          new Packed({ card: fallback, nodeId: this.nodeId, updatedAt: Date.now() }),
        );
      }
      await this.presence.attached(agentId);
    } catch (error) {
      throw busError(error);
    }
  }

  /** One of the agent's sessions on this node ended; the last one takes it offline here. */
  offline(agentId: string): void {
    this.presence.detached(agentId);
  }

  /** Agents matching every given filter: skill id or name, tag, free text over card and skills. */
  async discover(filter: {
    skill?: string | undefined;
    tag?: string | undefined;
    text?: string | undefined;
    online?: boolean | undefined;
  }): Promise<AgentEntry[]> {
    try {
      const view = this.#mirror.view();
      const [ids, present] = await Promise.all([
        view ? view.keys() : this.cards.keys(),
        this.presence.locate(),
      ]);
      const out: AgentEntry[] = [];
      const text = filter.text?.toLowerCase();
      for (const agentId of ids.sort()) {
        const entry = await this.#card(agentId, view);
        if (!entry) continue;
        const { card } = kvValue<CardRecord>(entry);
        const nodes = present.get(agentId);
        const online = nodes !== undefined;
        if (filter.online !== undefined && filter.online !== online) continue;
        const skills = card.skills ?? [];
        if (filter.skill && !skills.some((s) => s.id === filter.skill || s.name === filter.skill)) continue;
        if (filter.tag && !skills.some((s) => (s.tags ?? []).includes(filter.tag!))) continue;
        if (text) {
          const hay = [
            card.name,
            card.description ?? '',
            ...skills.flatMap((s) => [s.id, s.name, s.description ?? '', ...(s.tags ?? [])]),
          ]
            .join('\n')
            .toLowerCase();
          if (!hay.includes(text)) continue;
        }
        out.push({ agentId, card, online, nodeId: nodes?.[0] ?? kvValue<CardRecord>(entry).nodeId });
      }
      return out;
    } catch (error) {
      throw busError(error);
    }
  }

  async get(agentId: string): Promise<AgentEntry> {
    let entry: Awaited<ReturnType<KvBucket['get']>>;
    let nodes: string[] | undefined;
    try {
      entry = await this.#card(agentId);
      const hosts = await this.presence.hosts(agentId);
      nodes = hosts.length > 0 ? hosts : undefined;
    } catch (error) {
      throw busError(error);
    }
    if (!entry) throw RpcError.of('AgentNotFound', `agent ${agentId} is not in the directory`, { agentId });
    const rec = kvValue<CardRecord>(entry);
    return { agentId, card: rec.card, online: nodes !== undefined, nodeId: nodes?.[0] ?? rec.nodeId };
  }

  /** Online agents with a given skill id (or name), excluding `except`. */
  async withSkill(skill: string, except: string): Promise<string[]> {
    const found = await this.discover({ skill, online: true });
    return found.map((a) => a.agentId).filter((id) => id !== except);
  }

  async close(): Promise<void> {
    this.#mirror.close();
    await this.presence.close();
  }
}
