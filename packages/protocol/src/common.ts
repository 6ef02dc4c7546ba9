import { z } from 'zod';

/** Ids of agents, collaborations, conversations, subscriptions: safe as NATS tokens and KV keys. */
export const IdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/,
    'ids are 1-128 characters of A-Z a-z 0-9 _ - (not starting with _ or -)',
  );
export type Id = z.infer<typeof IdSchema>;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** A concrete topic: dot-separated tokens of A-Z a-z 0-9 _ -, at most 16 tokens and 256 characters. */
export const TopicSchema = z
  .string()
  .min(1)
  .max(256)
  .refine((t) => {
    const tokens = t.split('.');
    return tokens.length <= 16 && tokens.every((x) => TOKEN.test(x));
  }, 'topics are dot-separated tokens of A-Z a-z 0-9 _ - with no wildcards');

/** A topic pattern with NATS wildcards: `*` matches one token, `>` (last only) matches one or more. */
export const TopicPatternSchema = z
  .string()
  .min(1)
  .max(256)
  .refine((t) => {
    const tokens = t.split('.');
    return (
      tokens.length <= 16 &&
      tokens.every((x, i) => TOKEN.test(x) || x === '*' || (x === '>' && i === tokens.length - 1))
    );
  }, 'patterns are dot-separated tokens, `*` for one token, `>` as the last token for the rest');

/** Any JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** How deep a JSON value may nest (a cycle, from an in-process caller, nests without end). */
export const MAX_JSON_DEPTH = 512;

/**
 * Whether `value` is JSON: a string, a finite number, a boolean, null, or an array or plain object
 * of them, nested at most `MAX_JSON_DEPTH` deep.
 */
export function isJson(value: unknown, depth = 0): value is Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_JSON_DEPTH) return false;
      if (Array.isArray(value)) {
        for (const item of value) if (!isJson(item, depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (Object.hasOwn(value, key) && !isJson((value as Record<string, unknown>)[key], depth + 1))
          return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Any JSON value, checked by `isJson` and passed on as it is. A check rather than a recursive
 * schema: a recursive schema (`z.lazy`) copies every nested value and keeps a schema that holds it
 * from being compiled (`z.compile`).
 */
export const JsonSchema: z.ZodType<Json> = z.custom<Json>((value) => isJson(value), {
  message: `expected a JSON value (strings, finite numbers, booleans, null, arrays and objects, nested at most ${MAX_JSON_DEPTH} deep)`,
});

/** Free-form metadata: a JSON object. */
export const MetadataSchema = z.record(z.string(), JsonSchema);

/** Options every request accepts on the calling side. */
export interface RequestOptions {
  /** Abort the call; the promise rejects with MeshError `aborted`. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds; the promise rejects with MeshError `timeout`. */
  timeoutMs?: number;
}

/** True when `topic` matches the NATS-style `pattern` (`*` one token, trailing `>` one or more). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return t.length > i;
    if (i >= t.length) return false;
    if (token !== '*' && token !== t[i]) return false;
  }
  return p.length === t.length;
}

/**
 * A copy of `base` with `fields` set, as `{ ...base, ...fields }` makes it. Built with `Object.assign`:
 * on Node 20 (V8 11.3), an object spread followed by properties the spread object lacks takes a slow
 * path, about 2.5 µs per object against 0.2 µs for this (`{ ...message, taskId, contextId }` was 2.4%
 * of a node's CPU per A2A SendMessage). Spreads that only replace properties the object has are fast.
 */
export function withFields<T extends object, U extends object>(base: T, fields: U): Spread<T, U> {
  // Object.assign sets properties, so an own `__proto__` (JSON.parse makes them) would set the
  // copy's prototype; a spread defines it as a plain property.
  if (Object.hasOwn(base, '__proto__') || Object.hasOwn(fields, '__proto__')) {
    return { ...base, ...fields } as Spread<T, U>;
  }
  return Object.assign({}, base, fields) as Spread<T, U>;
}

/** The type of `{ ...T, ...U }` (index signatures kept, unlike `Omit`). */
export type Spread<T, U> = { [K in keyof T as K extends keyof U ? never : K]: T[K] } & U;

/** What a per-message path needs of a schema. */
export interface Parser<T> {
  safeParse(value: unknown): z.ZodSafeParseResult<T>;
}

/**
 * `schema`, compiled (`z.compile`: a generated parser that hands whatever it rejects to zod's own,
 * so results and errors are zod's) the first time it parses: for schemas parsed per message.
 * Compiling takes 1-20 ms per schema, paid by its first message rather than at start-up; a parse
 * then takes about half the time (a SendMessage request: 2.9 → 1.1 µs in a loop).
 */
export function compiledOnUse<S extends z.ZodType>(schema: S): Parser<z.output<S>> {
  let compiled: S | undefined;
  return {
    safeParse: (value) => {
      compiled ??= z.compile(schema);
      return compiled.safeParse(value) as z.ZodSafeParseResult<z.output<S>>;
    },
  };
}
