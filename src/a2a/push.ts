import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { resolveWebhook, WebhookRefusedError } from './addressGuard.js';
import type { StoredPushConfig } from './taskStore.js';

/** Webhook delivery settings. Times in milliseconds. */
export interface PushOptions {
  /** Host names or IP literals allowed even though private or loopback (default none). */
  allowHosts: readonly string[];
  /** Attempts per notification, the first included (default 6). */
  maxAttempts: number;
  /** Delay before the first retry, doubled after each (default 250). */
  initialBackoffMs: number;
  /** Longest delay between attempts (default 10000). */
  maxBackoffMs: number;
  /** Timeout of one webhook request (default 10000). */
  timeoutMs: number;
}

/** Default push settings. */
export const DEFAULT_PUSH_OPTIONS: PushOptions = {
  allowHosts: [],
  maxAttempts: 6,
  initialBackoffMs: 250,
  maxBackoffMs: 10_000,
  timeoutMs: 10_000,
};

/** One notification: the JSON body for a config. */
export interface PushJob {
  stored: StoredPushConfig;
  body: unknown;
  /** The event's per-task sequence, sent as `A2A-Sequence` so receivers can drop duplicates. */
  sequence: number;
}

/**
 * At-least-once webhook delivery: POSTs each notification until a 2xx answer, retrying with
 * exponential backoff (full jitter) up to `maxAttempts`. Notifications to one config go out in order.
 */
export class PushDeliverer {
  readonly #opts: PushOptions;
  readonly #allow: ReadonlySet<string>;
  readonly #queues = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  #inflight = 0;

  constructor(
    options: Partial<PushOptions>,
    readonly log: Logger,
  ) {
    this.#opts = { ...DEFAULT_PUSH_OPTIONS, ...options };
    this.#allow = new Set(this.#opts.allowHosts.map((h) => h.toLowerCase()));
  }

  /** Notifications queued or being sent. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Checks a webhook URL now (at config creation); rejects with WebhookRefusedError. */
  async check(url: string): Promise<void> {
    await resolveWebhook(new URL(url), this.#allow);
  }

  /** Queues a notification behind earlier ones for the same config. */
  enqueue(job: PushJob): void {
    const key = `${job.stored.config.taskId}.${job.stored.config.id}`;
    this.#inflight++;
    const prev = this.#queues.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.#deliver(job))
      .finally(() => {
        this.#inflight--;
        if (this.#queues.get(key) === next) this.#queues.delete(key);
      });
    this.#queues.set(key, next);
  }

  async #deliver(job: PushJob): Promise<void> {
    const { config } = job.stored;
    let delay = this.#opts.initialBackoffMs;
    for (let attempt = 1; attempt <= this.#opts.maxAttempts; attempt++) {
      if (this.#abort.signal.aborted) return;
      try {
        const status = await this.#post(job);
        if (status >= 200 && status < 300) return;
        this.log.debug({ taskId: config.taskId, configId: config.id, status, attempt }, 'webhook refused');
      } catch (error) {
        if (error instanceof WebhookRefusedError) {
          this.log.warn({ taskId: config.taskId, configId: config.id, err: error }, 'webhook not allowed');
          return;
        }
        this.log.debug({ taskId: config.taskId, configId: config.id, err: error, attempt }, 'webhook failed');
      }
      if (attempt === this.#opts.maxAttempts) break;
      await sleep(Math.random() * delay + delay / 2, this.#abort.signal);
      delay = Math.min(delay * 2, this.#opts.maxBackoffMs);
    }
    this.log.warn({ taskId: config.taskId, configId: config.id }, 'webhook delivery abandoned');
  }

  async #post(job: PushJob): Promise<number> {
    const { config, version } = job.stored;
    const url = new URL(config.url);
    const target = await resolveWebhook(url, this.#allow);
    const body = JSON.stringify(job.body);
    const headers: Record<string, string | number> = {
      'content-type': version === '1.0' ? 'application/a2a+json' : 'application/json',
      'content-length': Buffer.byteLength(body),
      'a2a-sequence': job.sequence,
    };
    if (config.authentication) {
      const { scheme, credentials } = config.authentication;
      headers.authorization = credentials ? `${scheme} ${credentials}` : scheme;
    }
    if (config.token) headers['x-a2a-notification-token'] = config.token;
    // Connect to the checked address only: a second DNS answer cannot redirect the request.
    const pinned: LookupFunction = (_host, options, cb) => {
      if (typeof options === 'object' && options.all) cb(null, [target]);
      else cb(null, target.address, target.family);
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<number>((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers,
          lookup: pinned,
          timeout: this.#opts.timeoutMs,
          signal: this.#abort.signal,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`webhook timed out after ${this.#opts.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Stops retrying and drops queued notifications. */
  close(): void {
    this.#abort.abort();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
