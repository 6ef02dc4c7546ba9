import { randomUUID } from 'node:crypto';
import { MeshError } from '@a2a-mesh/protocol';
import {
  DiscardPolicy,
  JetStreamApiError,
  type MsgRequest,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { headers, nanos, nuid } from '@nats-io/transport-node';
import {
  type AppendOptions,
  BusUnavailableError,
  isLogName,
  LOG_KINDS,
  type LogEntry,
  type LogFollower,
  type LogInfo,
  OffsetConflictError,
} from './bus.js';
import { ApiCode, isWrongLastSequence, type NatsContext, sleep, toBusError } from './natsContext.js';
import { NatsFollower } from './natsFollower.js';
import {
  APPEND_HEADER,
  DELETED_HEADER,
  describe,
  epochOf,
  logStreamName,
  logStreamSubjects,
  OFFSET_HEADER,
  offsetOf,
} from './natsLogFormat.js';

/** First tokens a log name may not use: they would collide with the topic and agent subjects. */
/** offset→sequence hints kept per log, and logs kept in the cache. */
const MAX_SEEN_PER_LOG = 2048;
const MAX_CACHED_LOGS = 10_000;
/** `info` re-reads the epoch from the stream when its last look is older than this. */
const EPOCH_RECHECK_MS = 5_000;
/** Conflict retries before an append gives up (only reachable under pathological contention). */
const MAX_CONFLICTS = 1000;

/** What this instance knows about one log. */
interface LogState {
  /** False until the last entry was looked up. */
  known: boolean;
  /** Stream sequence and offset of the last entry (0 and 0 when the log is empty). */
  seq: number;
  offset: number;
  /** offset → stream sequence of entries this instance has seen: hints, verified when used. */
  readonly seen: Map<number, number>;
  /** Appends from this instance to one log run one at a time. */
  tail: Promise<unknown>;
}

function abortIfNeeded(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MeshError('aborted', 'append was aborted', { cause: signal.reason });
}

/**
 * Append-only logs on one JetStream stream: log `a.b` is subject `<prefix>.a.b.log`, and every
 * message carries its offset in the `Mesh-Offset` header. An append of offset k after the entry at
 * stream sequence s is published with `Nats-Expected-Last-Subject-Sequence: s` (rejects writers with a
 * stale view) and `Nats-Msg-Id: <log>:<k>:<s>` (the stream stores one message per id, which settles
 * writers racing from the same view; on a replicated stream the expected-sequence check alone does
 * not, see docs/protocol.md (NATS layout)). Offsets are contiguous across nodes.
 */
export class NatsLogs {
  readonly #ctx: NatsContext;
  readonly #stream: string;
  readonly #states = new Map<string, LogState>();
  readonly #followers = new Map<string, Set<NatsFollower>>();
  #epoch = '';
  #epochCheckedAt = 0;

  constructor(ctx: NatsContext) {
    this.#ctx = ctx;
    this.#stream = logStreamName(ctx.prefix);
  }

  get stream(): string {
    return this.#stream;
  }

  get epoch(): string {
    return this.#epoch;
  }

  /**
   * Creates the stream, or updates its subjects and replicas; records the epoch. Idempotent.
   * The epoch is a random id kept in the stream's description: stream configuration is the same on
   * every replica, while its creation time is not (each replica reports its own), so a new epoch
   * means exactly that the stream was created anew.
   */
  async ensureStream(): Promise<void> {
    const { jsm, prefix, replicas } = this.#ctx;
    const subjects = logStreamSubjects(prefix);
    const wanted: Partial<StreamConfig> & { name: string } = {
      name: this.#stream,
      description: describe(prefix, randomUUID().replaceAll('-', '').slice(0, 16)),
      subjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      allow_direct: true,
      allow_rollup_hdrs: false,
      duplicate_window: nanos(120_000),
    };
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(this.#stream);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === ApiCode.StreamNotFound)) throw err;
      try {
        info = await jsm.streams.add(wanted);
        this.#ctx.logger.info({ stream: this.#stream, subjects, replicas }, 'created log stream');
      } catch (addErr) {
        // Another node created it first (with another epoch, hence "a different configuration");
        // in a cluster it can take a moment before its info answers.
        info = await this.#infoOnceCreated(addErr);
      }
    }
    const have = info.config;
    const sameSubjects =
      have.subjects?.length === subjects.length && subjects.every((s) => have.subjects.includes(s));
    // Replicas only ever go up here: one node started without its replica flag must not shrink
    // the stream every other node relies on.
    const numReplicas = Math.max(have.num_replicas, replicas);
    if (replicas < have.num_replicas) {
      this.#ctx.logger.warn(
        { stream: this.#stream, replicas: have.num_replicas, configured: replicas },
        'log stream has more replicas than configured; keeping them',
      );
    }
    const hasEpoch = epochOf(have.description) !== undefined;
    if (!sameSubjects || have.num_replicas !== numReplicas || !have.allow_direct || !hasEpoch) {
      await jsm.streams.update(this.#stream, {
        ...have,
        subjects,
        num_replicas: numReplicas,
        allow_direct: true,
        description: (hasEpoch ? have.description : wanted.description) ?? '',
      });
      // Read back: when nodes update at once, the last update wins.
      info = await jsm.streams.info(this.#stream);
      this.#ctx.logger.info({ stream: this.#stream, subjects, replicas: numReplicas }, 'updated log stream');
    }
    const epoch = epochOf(info.config.description) ?? '';
    if (this.#epoch && epoch !== this.#epoch) {
      this.#ctx.logger.warn(
        { stream: this.#stream, was: this.#epoch, now: epoch },
        'log stream was recreated: new epoch',
      );
      this.#states.clear();
    }
    this.#epoch = epoch;
    this.#epochCheckedAt = Date.now();
  }

  async #infoOnceCreated(addErr: unknown): Promise<StreamInfo> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#ctx.jsm.streams.info(this.#stream);
      } catch {
        if (attempt >= 20) throw addErr;
        await sleep(250);
      }
    }
  }

  /** The epoch, re-read from the stream when the last look is older than a few seconds. */
  async #currentEpoch(): Promise<string> {
    if (Date.now() - this.#epochCheckedAt > EPOCH_RECHECK_MS) {
      await this.#ctx.link.run(() => this.ensureStream());
    }
    return this.#epoch;
  }

  /** `<prefix>.<log>.log`, after checking the log name. */
  subject(log: string): string {
    if (!isLogName(log)) {
      throw new MeshError(
        'protocol',
        `invalid log name ${JSON.stringify(log)}: use <${LOG_KINDS.join('|')}>.<id>`,
      );
    }
    return `${this.#ctx.prefix}.${log}.log`;
  }

  #state(log: string): LogState {
    let state = this.#states.get(log);
    if (state) {
      // Least recently used logs are evicted first.
      this.#states.delete(log);
      this.#states.set(log, state);
      return state;
    }
    state = { known: false, seq: 0, offset: 0, seen: new Map(), tail: Promise.resolve() };
    this.#states.set(log, state);
    if (this.#states.size > MAX_CACHED_LOGS) {
      const oldest = this.#states.keys().next().value;
      if (oldest !== undefined) this.#states.delete(oldest);
    }
    return state;
  }

  #remember(state: LogState, offset: number, seq: number): void {
    state.seen.set(offset, seq);
    if (state.seen.size > MAX_SEEN_PER_LOG) {
      let drop = MAX_SEEN_PER_LOG / 4;
      for (const key of state.seen.keys()) {
        if (drop-- <= 0) break;
        state.seen.delete(key);
      }
    }
  }

  #advance(state: LogState, seq: number, offset: number): void {
    if (seq > state.seq) {
      state.seq = seq;
      state.offset = offset;
      state.known = true;
    }
    this.#remember(state, offset, seq);
  }

  /** One message by query, from the stream leader (consistent even with replicas). */
  #get(query: MsgRequest | { next_by_subj: string; seq: number }): Promise<StoredMsg | null> {
    return this.#ctx.link.run(() => this.#ctx.jsm.streams.getMessage(this.#stream, query as MsgRequest));
  }

  /** The message at `seq`, waiting briefly for a leader that has just taken over to catch up. */
  async #getVisible(seq: number): Promise<StoredMsg | null> {
    for (let attempt = 0; ; attempt++) {
      const m = await this.#get({ seq });
      if (m || attempt >= 10) return m;
      await sleep(50);
    }
  }

  /** Loads the last entry of `log` into `state`. */
  async #refresh(log: string, subject: string, state: LogState): Promise<void> {
    const last = await this.#get({ last_by_subj: subject });
    state.known = true;
    if (!last) {
      state.seq = 0;
      state.offset = 0;
      return;
    }
    state.seq = last.seq;
    state.offset = offsetOf(last, log, last.seq);
    this.#remember(state, state.offset, state.seq);
  }

  append(log: string, data: Uint8Array, options: AppendOptions = {}): Promise<number> {
    let subject: string;
    try {
      subject = this.subject(log);
      this.#ctx.link.check();
    } catch (err) {
      return Promise.reject(err);
    }
    const state = this.#state(log);
    const run = state.tail.then(
      () => this.#appendNow(log, subject, state, data, options),
      () => this.#appendNow(log, subject, state, data, options),
    );
    state.tail = run.catch(() => {});
    return run;
  }

  async #appendNow(
    log: string,
    subject: string,
    state: LogState,
    data: Uint8Array,
    options: AppendOptions,
  ): Promise<number> {
    const { js, link } = this.#ctx;
    const deadline = Date.now() + (options.timeoutMs ?? this.#ctx.requestTimeoutMs);
    // Marks our message, so that a duplicate ack pointing at it (an earlier attempt whose answer was
    // lost) is told apart from one pointing at another writer's entry.
    const nonce = nuid.next();
    let fresh = false;
    if (!state.known) {
      await this.#refresh(log, subject, state);
      fresh = true;
    }
    for (let attempt = 0, conflicts = 0; ; attempt++) {
      abortIfNeeded(options.signal);
      const expected = options.expectedLastOffset;
      if (expected !== undefined && expected !== state.offset) {
        if (!fresh) {
          await this.#refresh(log, subject, state);
          fresh = true;
          continue;
        }
        throw new OffsetConflictError(log, expected, state.offset);
      }
      const offset = state.offset + 1;
      const h = headers();
      h.set(OFFSET_HEADER, String(offset));
      h.set(APPEND_HEADER, nonce);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new BusUnavailableError(`log ${log}: append did not complete in time`);
      try {
        const ack = await link.run(() =>
          js.publish(subject, data, {
            // One id per (offset, predecessor): a second message for the same slot is a duplicate.
            msgID: `${log}:${offset}:${state.seq}`,
            headers: h,
            expect: { lastSubjectSequence: state.seq },
            timeout: remainingMs,
          }),
        );
        if (ack.duplicate) {
          const m = await this.#getVisible(ack.seq);
          if (m?.header.get(APPEND_HEADER) !== nonce) {
            // Another writer took this offset from the same view: take the next one.
            if (++conflicts > MAX_CONFLICTS)
              throw new BusUnavailableError(`log ${log}: too much write contention`);
            await this.#refresh(log, subject, state);
            fresh = true;
            continue;
          }
        }
        this.#advance(state, ack.seq, offset);
        return offset;
      } catch (err) {
        if (isWrongLastSequence(err)) {
          // Another writer got there first: learn where the log is now and try the next offset.
          if (++conflicts > MAX_CONFLICTS)
            throw new BusUnavailableError(`log ${log}: too much write contention`);
          if (conflicts > 2) await sleep(Math.random() * Math.min(20, conflicts));
          await this.#refresh(log, subject, state);
          fresh = true;
          continue;
        }
        const mapped = toBusError(err);
        // JetStream busy or electing a leader while the connection is fine: retry within the deadline.
        if (mapped instanceof BusUnavailableError && link.connected && Date.now() + 50 < deadline) {
          if ((err as Error).name === 'JetStreamNotEnabled' && attempt === 0) {
            await this.ensureStream().catch(() => {});
          }
          await sleep(Math.min(50 * 2 ** Math.min(attempt, 4), Math.max(0, deadline - Date.now() - 10)));
          continue;
        }
        throw mapped;
      }
    }
  }

  async info(log: string): Promise<LogInfo> {
    const subject = this.subject(log);
    const [head, last] = await Promise.all([
      this.#get({ next_by_subj: subject, seq: 1 }),
      this.#get({ last_by_subj: subject }),
    ]);
    const epoch = await this.#currentEpoch();
    const lastOffset = last ? offsetOf(last, log, last.seq) : 0;
    if (!last || !head || lastOffset === 0) return { epoch, firstOffset: lastOffset + 1, lastOffset };
    // A deletion marker may come first; the log starts after it.
    let first: StoredMsg | null = head;
    while (first && offsetOf(first, log, first.seq) === 0) {
      first = await this.#get({ next_by_subj: subject, seq: first.seq + 1 });
    }
    const firstOffset = first ? offsetOf(first, log, first.seq) : lastOffset + 1;
    const state = this.#state(log);
    this.#advance(state, last.seq, lastOffset);
    if (first) this.#remember(state, firstOffset, first.seq);
    return { epoch, firstOffset, lastOffset };
  }

  /**
   * The stored message holding `offset`, or null when the log has no such entry (not written yet,
   * trimmed, deleted). Uses what this instance has seen to bound a binary search over stream
   * sequences; each probe is "first message of the subject at or after sequence n".
   */
  async #locate(log: string, subject: string, offset: number): Promise<StoredMsg | null> {
    const state = this.#state(log);
    const hint = state.seen.get(offset);
    if (hint !== undefined) {
      const m = await this.#get({ seq: hint });
      if (m && m.subject === subject && offsetOf(m, log, m.seq) === offset) return m;
      state.seen.delete(offset);
    }
    const last = await this.#get({ last_by_subj: subject });
    if (!last) return null;
    const lastOffset = offsetOf(last, log, last.seq);
    this.#advance(state, last.seq, lastOffset);
    if (offset > lastOffset) return null;
    if (offset === lastOffset) return last;
    for (const useHints of [true, false]) {
      // Each offset takes at least one sequence, which bounds where `offset` can be.
      let lo = 1;
      let hi = last.seq - (lastOffset - offset);
      if (useHints) {
        for (const [o, s] of state.seen) {
          if (o < offset) lo = Math.max(lo, s + (offset - o));
          else if (o > offset) hi = Math.min(hi, s - (o - offset));
        }
      }
      let probe = lo;
      while (lo <= hi) {
        const m = await this.#get({ next_by_subj: subject, seq: probe });
        if (!m) {
          hi = probe - 1;
        } else {
          const o = offsetOf(m, log, m.seq);
          this.#remember(state, o, m.seq);
          if (o === offset) return m;
          if (o < offset) lo = Math.max(lo, m.seq + (offset - o));
          else hi = Math.min(probe - 1, m.seq - (o - offset));
        }
        probe = Math.floor((lo + hi) / 2);
      }
      if (!useHints) break;
    }
    return null;
  }

  async read(log: string, fromOffset: number, limit: number): Promise<LogEntry[]> {
    const subject = this.subject(log);
    if (limit < 1 || fromOffset < 1) return [];
    const first = await this.#locate(log, subject, fromOffset);
    if (!first) return [];
    const out: LogEntry[] = [{ offset: fromOffset, data: first.data }];
    const state = this.#state(log);
    if (state.offset - fromOffset + 1 < limit) {
      // The cached end may be behind: look it up so that a read returns fewer entries only at the end.
      const last = await this.#get({ last_by_subj: subject });
      if (last) this.#advance(state, last.seq, offsetOf(last, log, last.seq));
    }
    const wanted = Math.min(limit, state.offset - fromOffset + 1);
    // One "next message of the subject" get per entry, answered by the stream leader. A short-lived
    // consumer would batch them, but creating one can stall for seconds while a cluster member is down.
    let seq = first.seq;
    while (out.length < wanted) {
      const m = await this.#get({ next_by_subj: subject, seq: seq + 1 });
      if (!m) break;
      seq = m.seq;
      const offset = offsetOf(m, log, m.seq);
      const next = fromOffset + out.length;
      // Below: a duplicate, skipped. Zero: the log was deleted here. Above: cannot happen.
      if (offset < next && offset > 0) continue;
      if (offset !== next) break;
      this.#remember(state, offset, m.seq);
      out.push({ offset, data: m.data });
    }
    return out;
  }

  /** The stream sequence to start following `log` at so that `fromOffset` is not missed. */
  async startSequence(log: string, subject: string, fromOffset: number): Promise<number> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const m = await this.#locate(log, subject, fromOffset);
      if (m) return m.seq;
      // Read the stream's end before the log's: whatever the log gets after this comes later.
      const stream = await this.#ctx.link.run(() => this.#ctx.jsm.streams.info(this.#stream));
      const last = await this.#get({ last_by_subj: subject });
      if (!last) return stream.state.last_seq + 1;
      if (fromOffset > offsetOf(last, log, last.seq)) return last.seq + 1;
      // `fromOffset` is at or below the end but was not found: trimmed, or written meanwhile.
    }
    throw new MeshError('protocol', `log ${log}: offset ${fromOffset} is no longer stored`);
  }

  follow(log: string, fromOffset: number): LogFollower {
    const subject = this.subject(log);
    const follower = new NatsFollower(this.#ctx, this, log, subject, Math.max(1, fromOffset), () =>
      this.#followers.get(log)?.delete(follower),
    );
    let set = this.#followers.get(log);
    if (!set) {
      set = new Set();
      this.#followers.set(log, set);
    }
    set.add(follower);
    return follower;
  }

  /** Records what a follower saw, so later reads can find those offsets at once. */
  seen(log: string, offset: number, seq: number): void {
    const state = this.#states.get(log);
    if (state) this.#remember(state, offset, seq);
  }

  /**
   * Writes a deletion marker, then purges everything before it. Followers on any node end at the
   * marker; the next append starts again at offset 1, after it (so that its message id is new).
   */
  async deleteLog(log: string): Promise<void> {
    const subject = this.subject(log);
    const { js, jsm, link } = this.#ctx;
    const h = headers();
    h.set(DELETED_HEADER, '1');
    h.set(OFFSET_HEADER, '0');
    const marker = await link.run(() => js.publish(subject, new Uint8Array(0), { headers: h }));
    await link.run(() => jsm.streams.purge(this.#stream, { filter: subject, seq: marker.seq }));
    const state = this.#state(log);
    state.known = true;
    state.seq = marker.seq;
    state.offset = 0;
    state.seen.clear();
    const followers = this.#followers.get(log);
    this.#followers.delete(log);
    for (const f of followers ?? []) f.close();
  }

  /** Stops every follower (bus shutdown). */
  close(): void {
    for (const set of this.#followers.values()) for (const f of set) f.close();
    this.#followers.clear();
  }
}
