/**
 * A Map keyed by KV keys that lists the keys starting with a prefix without looking at every key:
 * keys are grouped by their first token (up to the first `.`), and a prefix that reaches past that
 * dot looks in its group only. Presence keys are `<subject>.<node>`: finding the nodes of one agent
 * (every A2A SendMessage does) then costs the keys of that agent, not a scan of every agent's.
 */
export class PrefixMap<V> extends Map<string, V> {
  readonly #groups = new Map<string, Set<string>>();

  override set(key: string, value: V): this {
    if (!super.has(key)) {
      const token = firstToken(key);
      let group = this.#groups.get(token);
      if (!group) {
        group = new Set();
        this.#groups.set(token, group);
      }
      group.add(key);
    }
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    if (!super.delete(key)) return false;
    const token = firstToken(key);
    const group = this.#groups.get(token);
    if (group?.delete(key) && group.size === 0) this.#groups.delete(token);
    return true;
  }

  override clear(): void {
    super.clear();
    this.#groups.clear();
  }

  /** The keys starting with `prefix` (all when empty), with their values. */
  withPrefix(prefix: string): [string, V][] {
    const out: [string, V][] = [];
    const dot = prefix.indexOf('.');
    if (dot >= 0) {
      for (const key of this.#groups.get(prefix.slice(0, dot)) ?? []) {
        if (key.startsWith(prefix)) out.push([key, super.get(key) as V]);
      }
      return out;
    }
    // A prefix without a dot lies within the first token: the groups whose token starts with it.
    for (const [token, group] of this.#groups) {
      if (token.startsWith(prefix)) for (const key of group) out.push([key, super.get(key) as V]);
    }
    return out;
  }
}

function firstToken(key: string): string {
  const dot = key.indexOf('.');
  return dot < 0 ? key : key.slice(0, dot);
}
