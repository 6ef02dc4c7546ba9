import { TopicPatternSchema, topicMatches } from '@a2a-mesh/protocol';
import { z } from 'zod';

/** Topic patterns a principal may publish to and subscribe to; undefined means no restriction. */
export interface TopicPermissions {
  publish: readonly string[] | undefined;
  subscribe: readonly string[] | undefined;
}

const ClaimSchema = z.object({
  publish: z.array(TopicPatternSchema).max(256).optional(),
  subscribe: z.array(TopicPatternSchema).max(256).optional(),
});

/** Nothing allowed: what a malformed claim grants (fail closed). */
const NONE: TopicPermissions = { publish: [], subscribe: [] };

/**
 * Reads a `topics` claim (`{"publish": [patterns], "subscribe": [patterns]}`). Absent claim: `fallback`.
 * Absent list in a present claim: that direction is denied. A malformed claim denies both.
 */
export function topicPermissions(claim: unknown, fallback: 'allow' | 'deny'): TopicPermissions {
  if (claim === undefined) {
    return fallback === 'allow' ? { publish: undefined, subscribe: undefined } : NONE;
  }
  const parsed = ClaimSchema.safeParse(claim);
  if (!parsed.success) return NONE;
  return { publish: parsed.data.publish ?? [], subscribe: parsed.data.subscribe ?? [] };
}

/** True when `topic` matches one of `allowed` (or nothing restricts it). */
export function mayPublish(allowed: readonly string[] | undefined, topic: string): boolean {
  return allowed === undefined || allowed.some((p) => topicMatches(p, topic));
}

/** True when every topic `pattern` can match is matched by one of `allowed` (or nothing restricts it). */
export function maySubscribe(allowed: readonly string[] | undefined, pattern: string): boolean {
  return allowed === undefined || allowed.some((a) => covers(a, pattern));
}

/** True when every topic matched by `pattern` is matched by `allowed` (NATS wildcards `*`, `>`). */
export function covers(allowed: string, pattern: string): boolean {
  const a = allowed.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < a.length; i++) {
    const at = a[i]!;
    if (at === '>') return i < p.length;
    const pt = p[i];
    if (pt === undefined) return false;
    if (at === '*') {
      if (pt === '>') return false;
      continue;
    }
    if (pt !== at) return false;
  }
  return a.length === p.length;
}
