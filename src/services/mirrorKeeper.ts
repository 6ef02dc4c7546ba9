import type { Logger } from 'pino';
import type { KvKeyMirror } from '../bus/bus.js';

/** A mirror whose watch ended is replaced, at most this often. */
const MIRROR_RESTART_MS = 1_000;

/**
 * Keeps a service's KV mirror going: opened at once, replaced when its watch ends (at most once a
 * second), and offered by `view` only while it is loaded and kept current. Callers ask the bucket
 * itself whenever `view` is undefined (before the first load, while the bus is down, between a watch
 * ending and its replacement).
 */
export class MirrorKeeper<M extends KvKeyMirror> {
  readonly #open: () => M;
  readonly #what: string;
  readonly #log: Logger;
  #mirror: M | undefined;
  #loaded = false;
  #startedAt = 0;
  #failing = false;
  #closed = false;

  /** `what` names the mirror in the one warning logged per outage. */
  constructor(open: () => M, what: string, log: Logger) {
    this.#open = open;
    this.#what = what;
    this.#log = log;
    this.#start();
  }

  #start(): void {
    const mirror = this.#open();
    this.#mirror = mirror;
    this.#loaded = false;
    this.#startedAt = Date.now();
    mirror.loaded.then(
      () => {
        if (this.#mirror !== mirror) return;
        this.#loaded = true;
        this.#failing = false;
      },
      (error: unknown) => {
        // Retried every second while it fails (the bus is down or closed): said once per outage.
        if (this.#failing || this.#closed) return;
        this.#failing = true;
        this.#log.warn({ err: error }, `${this.#what} watch could not start; reading the bucket meanwhile`);
      },
    );
  }

  /** Replaces a mirror whose watch ended (not more than once a second). */
  keep(): void {
    const mirror = this.#mirror;
    if (this.#closed || !mirror || mirror.current) return;
    this.#loaded = false;
    if (Date.now() - this.#startedAt < MIRROR_RESTART_MS) return;
    mirror.close();
    this.#start();
  }

  /** The mirror, when it is loaded and kept current; undefined otherwise. */
  view(): M | undefined {
    this.keep();
    const mirror = this.#mirror;
    return this.#loaded && mirror?.current ? mirror : undefined;
  }

  close(): void {
    this.#closed = true;
    this.#mirror?.close();
    this.#mirror = undefined;
  }
}
