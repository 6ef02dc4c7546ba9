import { IdSchema } from '@a2a-mesh/protocol';
import { z } from 'zod';

const Scalar = z.union([z.string().max(256), z.number(), z.boolean()]);

/**
 * One rule of a card's `allowedCallers`: a caller matches when it is `agentId` (if given) and each
 * claim in `claims` equals the given value or one of the given values (a caller's array claim matches
 * when it contains one of them). An empty rule matches every caller.
 */
export const CallerRuleSchema = z
  .object({
    agentId: IdSchema.optional(),
    claims: z
      .record(z.string().min(1).max(128), z.union([Scalar, z.array(Scalar).min(1).max(256)]))
      .optional(),
  })
  .strict();
export type CallerRule = z.infer<typeof CallerRuleSchema>;

/** A card's `allowedCallers`: absent, every caller may call; present, only callers matching a rule. */
export const AllowedCallersSchema = z.array(CallerRuleSchema).max(64);

/** The rules of a card, undefined when it sets none. Throws the zod error for a malformed list. */
export function callerRules(card: unknown): CallerRule[] | undefined {
  const value = (card as { allowedCallers?: unknown } | undefined)?.allowedCallers;
  if (value === undefined) return undefined;
  return AllowedCallersSchema.parse(value);
}

/** True when a caller with `agentId` and `claims` matches one of `rules` (or there are no rules). */
export function callerAllowed(
  rules: readonly CallerRule[] | undefined,
  agentId: string,
  claims: Readonly<Record<string, unknown>>,
): boolean {
  if (rules === undefined) return true;
  return rules.some((rule) => {
    if (rule.agentId !== undefined && rule.agentId !== agentId) return false;
    for (const [name, expected] of Object.entries(rule.claims ?? {})) {
      if (!Object.hasOwn(claims, name)) return false;
      const wanted = Array.isArray(expected) ? expected : [expected];
      const have = claims[name];
      const values = Array.isArray(have) ? have : [have];
      if (!values.some((v) => wanted.includes(v as never))) return false;
    }
    return true;
  });
}
