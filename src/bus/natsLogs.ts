import { randomUUID } from 'node:crypto';
import { MeshError } from '@a2a-mesh/protocol';
import {
  type DirectMsgRequest,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type MsgRequest,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { errors, headers, nanos, nuid } from '@nats-io/transport-node';
import {
  type AppendOptions,
  type BusData,
  BusUnavailableError,
  busBytes,
  type FollowOptions,
  isLogName,
  LOG_KINDS,
  type LogEntry,
  type LogFollower,
  type LogInfo,
  OffsetConflictError,
} from './bus.js';
import {
  ApiCode,
  actualLastSequence,
  isWrongLastSequence,
  type NatsContext,
  sleep,
  toBusError,
} from './natsContext.js';
import { NatsFollower } from './natsFollower.js';
import {
  APPEND_HEADER,
  COUNT_HEADER,
  DELETED_HEADER,
  describe,
  encodeBatch,
  entriesOf,
  epochOf,
  lastOffsetOf,
  logStreamName,
  logStreamSubjects,
  OFFSET_HEADER,
  offsetOf,
} from './natsLogFormat.js';
import { NatsTailFollower, tailSubject } from './natsTail.js';

/**
 * The log stream republishes every stored task-log message to `<prefix>.tail.a2atask.<id>.log`,
 * where task-log followers subscribe (see NatsTailFollower). Only task logs: collaboration and
 * conversation traffic is not doubled.
 */
function taskRepublish(prefix: string): { src: string; dest: string } {
  return { src: `${prefix}.a2atask.>`, dest: `${prefix}.tail.a2atask.>` };
}

/** A direct get answers in well under a millisecond; past this the stream is asked through its leader. */
const DIRECT_GET_TIMEOUT_MS = 1_000;
/** offset→sequence hints kept per log, and logs kept in the cache. */
const MAX_SEEN_PER_LOG = 2048;
const MAX_CACHED_LOGS = 10_000;
/** `info` re-reads the epoch from the stream when its last look is older than this. */
const EPOCH_RECHECK_MS = 5_000;
/** Conflict retries before a batch of appends gives up (only reachable under pathological contention). */
const MAX_CONFLICTS = 1000;
/** At most this many entries, and this many bytes of them, go out in one batch message. */
const MAX_BATCH_ENTRIES = 256;
const MAX_BATCH_BYTES = 256 * 1024;
/** Room left in the server's maximum payload for the framing (4 bytes an entry is counted apart). */
const PAYLOAD_MARGIN = 1024;

/** One `append` call waiting for, or travelling in, a batch. */
interface PendingAppend {
  readonly data: Uint8Array;
  readonly expected: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly deadline: number;
  /** The log's `refreshes` when the call came: a later refresh is a view of the log newer than the call. */
  readonly refreshes: number;
  settled: boolean;
  readonly resolve: (offset: number) => void;
  readonly reject: (error: unknown) => void;
}

function settle(p: PendingAppend, offset: number): void {
  if (p.settled) return;
  p.settled = true;
  p.resolve(offset);
}

function fail(p: PendingAppend, error: unknown): void {
  if (p.settled) return;
  p.settled = true;
  p.reject(error);
}

/** What this instance knows about one log. */
interface LogState {
  /** False until the last entry was looked up. */
  known: boolean;
  /** Stream sequence and offset of the last entry (0 and 0 when the log is empty). */
  seq: number;
  offset: number;
  /**
   * offset → stream sequence of the message holding that entry, for entries this instance has seen
   * (the first and last of a batch): hints, verified when used.
   */
  readonly seen: Map<number, number>;
  /** Appends from this instance waiting for the batch in flight; one batch per log is in flight at a time. */
  readonly queue: PendingAppend[];
  /** True while a batch of this log is being published (the queue is drained by it). */
  appending: boolean;
  /** How many times the log's end was read from the stream. */
  refreshes: number;
}

/** Records that `log` holds nothing: appends build on offset 0 after stream sequence 0. */
function knownEmpty(state: LogState): void {
  state.known = true;
  state.seq = 0;
  state.offset = 0;
}

function abortedError(signal: AbortSignal): MeshError {
  return new MeshError('aborted', 'append was aborted', { cause: signal.reason });
}

/**
 * Append-only logs on one JetStream stream: log `a.b` is subject `<prefix>.a.b.log`, and every
 * message carries the offset of its first entry in the `Mesh-Offset` header. Appends from one instance
 * to one log are group-committed: while one message is in flight the next appends queue, and go out
 * together as one message of several entries (`Mesh-Count`, see natsLogFormat.ts). A message of
 * offsets k.. after the entry at stream sequence s is published with
 * `Nats-Expected-Last-Subject-Sequence: s` (rejects writers with a stale view) and
 * `Nats-Msg-Id: <log>:<k>:<s>` (the stream stores one message per id, which settles writers racing
 * from the same view; on a replicated stream the expected-sequence check alone does not, see
 * docs/protocol.md (NATS layout)). Offsets are contiguous across nodes.
 */
export class NatsLogs {
  readonly #ctx: NatsContext;
  readonly #stream: string;
  readonly #states = new Map<string, LogState>();
  readonly #followers = new Map<string, Set<LogFollower>>();
  /** Whether the stream republishes task logs (then their followers use it; see `follow`). */
  #tailed: boolean | undefined;
  /** Whether reads use direct gets (a stream of one replica; see `#get`). */
  #direct = false;
  #directApi: Promise<JetStreamManager> | undefined;
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
      republish: taskRepublish(prefix),
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
    // nats-server refuses to add a republish to an existing stream: one created without it (by a
    // node from before it) keeps task-log followers on consumers.
    const republish = taskRepublish(prefix);
    const tailed =
      info.config.republish?.src === republish.src && info.config.republish?.dest === republish.dest;
    if (!tailed && this.#tailed !== false) {
      this.#ctx.logger.info(
        { stream: this.#stream },
        'log stream has no task-log republish (created by an earlier version): task logs are followed with consumers',
      );
    }
    this.#tailed = tailed;
    this.#direct = info.config.num_replicas === 1 && info.config.allow_direct === true;
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
    state = { known: false, seq: 0, offset: 0, seen: new Map(), queue: [], appending: false, refreshes: 0 };
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

  /**
   * One message by query, as the stream leader has it. A stream of one replica is asked with a direct
   * get: its only copy answers, so it reads what the leader would, without a JetStream API call (no
   * JSON request and response, no advisory, no error object for "no message"). A direct get that
   * finds no responder or times out (the stream gone) is asked again of the leader, whose answer
   * says why. With more replicas a follower could answer a direct get before it has the latest
   * message, so those always ask the leader.
   */
  #get(query: MsgRequest | { next_by_subj: string; seq: number }): Promise<StoredMsg | null> {
    const leader = () => this.#ctx.jsm.streams.getMessage(this.#stream, query as MsgRequest);
    if (!this.#direct) return this.#ctx.link.run(leader);
    return this.#ctx.link.run(async () => {
      this.#directApi ??= jetstreamManager(this.#ctx.nc, { timeout: DIRECT_GET_TIMEOUT_MS, checkAPI: false });
      try {
        return await (await this.#directApi).direct.getMessage(this.#stream, query as DirectMsgRequest);
      } catch (err) {
        if (
          !(
            err instanceof errors.TimeoutError ||
            err instanceof errors.NoRespondersError ||
            (err instanceof errors.RequestError && err.isNoResponders())
          )
        )
          throw err;
        return leader();
      }
    });
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
    state.refreshes++;
    if (!last) {
      knownEmpty(state);
      return;
    }
    state.known = true;
    state.seq = last.seq;
    state.offset = lastOffsetOf(last, log, last.seq);
    this.#remember(state, offsetOf(last, log, last.seq), last.seq);
    this.#remember(state, state.offset, state.seq);
  }

  append(log: string, value: BusData, options: AppendOptions = {}): Promise<number> {
    let subject: string;
    try {
      subject = this.subject(log);
      this.#ctx.link.check();
      if (options.signal?.aborted) throw abortedError(options.signal);
    } catch (err) {
      return Promise.reject(err);
    }
    const state = this.#state(log);
    const data = busBytes(value);
    return new Promise<number>((resolve, reject) => {
      state.queue.push({
        data,
        expected: options.expectedLastOffset,
        signal: options.signal,
        deadline: Date.now() + (options.timeoutMs ?? this.#ctx.requestTimeoutMs),
        refreshes: state.refreshes,
        settled: false,
        resolve,
        reject,
      });
      if (!state.appending) {
        state.appending = true;
        // After the current task: appends made in the same turn go out together.
        queueMicrotask(() => void this.#drain(log, subject, state));
      }
    });
  }

  /** Publishes the queued appends of `log`, one batch at a time, until none is left. */
  async #drain(log: string, subject: string, state: LogState): Promise<void> {
    try {
      while (state.queue.length > 0) await this.#appendBatch(log, subject, state);
    } catch (err) {
      // Not expected (a batch settles its calls itself); never leave callers waiting.
      for (const p of state.queue.splice(0)) fail(p, err);
    } finally {
      state.appending = false;
    }
  }

  /** The most bytes of entries one batch message may carry. */
  #maxBatchBytes(): number {
    const maxPayload = this.#ctx.nc.info?.max_payload ?? 1024 * 1024;
    return Math.max(1, Math.min(MAX_BATCH_BYTES, maxPayload - PAYLOAD_MARGIN));
  }

  /**
   * Fails the calls in `batch` that were aborted or ran out of time; with `drop`, removes them (only
   * while no publish of the batch may have been stored) and tops the batch up from the queue.
   */
  #sweep(log: string, state: LogState, batch: PendingAppend[], drop: boolean): PendingAppend[] {
    const now = Date.now();
    const expire = (p: PendingAppend) => {
      if (p.signal?.aborted) fail(p, abortedError(p.signal));
      else if (now >= p.deadline)
        fail(p, new BusUnavailableError(`log ${log}: append did not complete in time`));
    };
    for (const p of batch) expire(p);
    if (!drop) return batch;
    const out = batch.filter((p) => !p.settled);
    const maxBytes = this.#maxBatchBytes();
    let bytes = 0;
    for (const p of out) bytes += 4 + p.data.length;
    while (state.queue.length > 0 && out.length < MAX_BATCH_ENTRIES) {
      const p = state.queue[0]!;
      expire(p);
      if (p.settled) {
        state.queue.shift();
        continue;
      }
      if (out.length > 0 && bytes + 4 + p.data.length > maxBytes) break;
      state.queue.shift();
      out.push(p);
      bytes += 4 + p.data.length;
    }
    return out;
  }

  /**
   * Takes appends from the front of the queue and publishes them as one message, retrying until the
   * stream stores it. Every call taken is settled: resolved with its offset, or rejected. An append
   * with an expected last offset travels only at the position where that expectation holds (the
   * batch ends before it otherwise, and it is checked again at the head of the next one), so a batch
   * stored after the entry it was planned on stores every expectation in it exactly.
   */
  async #appendBatch(log: string, subject: string, state: LogState): Promise<void> {
    const { js, link } = this.#ctx;
    let batch: PendingAppend[] = [];
    // Once a publish of the batch may have been stored (outcome unknown), its entries, offsets and
    // message id stay as they were until the stream stores it or rejects it for certain.
    let frozen = false;
    let first = 0;
    let prevSeq = 0;
    let nonce = '';
    let payload: Uint8Array = new Uint8Array(0);
    try {
      for (let attempt = 0, conflicts = 0; ; ) {
        // Take the batch first: whatever fails from here on fails its calls, so the queue drains.
        batch = this.#sweep(log, state, batch, !frozen);
        if (batch.length === 0) return;
        if (!state.known) {
          if (batch[0]!.expected === 0) {
            // A compare-and-set append at offset 0 to a log not seen here (a new task's first
            // entry, written on the agent's node) assumes the log empty instead of reading its end:
            // the stream checks that (expected last subject sequence 0), and a log that is not empty
            // answers with the wrong-sequence error handled below, which reads it as for any conflict.
            knownEmpty(state);
          } else {
            await this.#refresh(log, subject, state);
          }
        }
        if (!frozen) {
          const cut = batch.findIndex((p, i) => p.expected !== undefined && p.expected !== state.offset + i);
          if (cut === 0) {
            const p = batch[0]!;
            // The log may have moved on elsewhere since the view we hold: check a fresh one first.
            if (p.refreshes === state.refreshes) {
              await this.#refresh(log, subject, state);
            } else {
              fail(p, new OffsetConflictError(log, p.expected!, state.offset));
              batch.shift();
            }
            continue;
          }
          if (cut > 0) state.queue.unshift(...batch.splice(cut));
          if (batch.length === 0) return;
          first = state.offset + 1;
          prevSeq = state.seq;
          // Marks our message, so that a duplicate ack pointing at it (an earlier attempt whose
          // answer was lost) is told apart from one pointing at another writer's message.
          nonce = nuid.next();
          payload = batch.length === 1 ? batch[0]!.data : encodeBatch(batch.map((p) => p.data));
        }
        let deadline = 0;
        for (const p of batch) if (!p.settled) deadline = Math.max(deadline, p.deadline);
        // Every caller gave up on a batch whose outcome is unknown: leave it at that.
        if (deadline === 0) return;
        const h = headers();
        h.set(OFFSET_HEADER, String(first));
        if (batch.length > 1) h.set(COUNT_HEADER, String(batch.length));
        h.set(APPEND_HEADER, nonce);
        try {
          const ack = await link.run(() =>
            js.publish(subject, payload, {
              // One id per (first offset, predecessor): a second message for the same slot is a duplicate.
              msgID: `${log}:${first}:${prevSeq}`,
              headers: h,
              expect: { lastSubjectSequence: prevSeq },
              timeout: Math.max(1, deadline - Date.now()),
            }),
          );
          if (ack.duplicate) {
            // Ours only if this very message went out before (an attempt whose answer was lost).
            const ours = frozen && (await this.#getVisible(ack.seq))?.header.get(APPEND_HEADER) === nonce;
            if (!ours) {
              // Another writer took these offsets from the same view: take the next ones, reading
              // the log's end unless a follower here has shown us that writer's message already.
              if (++conflicts > MAX_CONFLICTS)
                throw new BusUnavailableError(`log ${log}: too much write contention`);
              frozen = false;
              if (state.seq < ack.seq) await this.#refresh(log, subject, state);
              continue;
            }
          }
          this.#remember(state, first, ack.seq);
          this.#advance(state, ack.seq, first + batch.length - 1);
          for (let i = 0; i < batch.length; i++) settle(batch[i]!, first + i);
          return;
        } catch (err) {
          if (isWrongLastSequence(err)) {
            // Another writer got there first: learn where the log is now and try the next offsets.
            if (++conflicts > MAX_CONFLICTS)
              throw new BusUnavailableError(`log ${log}: too much write contention`);
            if (conflicts > 2) await sleep(Math.random() * Math.min(20, conflicts));
            frozen = false;
            // A follower of the log on this instance may have shown us that message meanwhile. (A view
            // ahead of the stream's answer, as from a leader still catching up, is read again.)
            const actual = actualLastSequence(err);
            if (actual === undefined || state.seq !== actual) await this.#refresh(log, subject, state);
            continue;
          }
          const mapped = toBusError(err);
          // JetStream busy or electing a leader while the connection is fine: retry within the deadline.
          if (mapped instanceof BusUnavailableError && link.connected && Date.now() + 50 < deadline) {
            frozen = true;
            if ((err as Error).name === 'JetStreamNotEnabled' && attempt === 0) {
              await this.ensureStream().catch(() => {});
            }
            await sleep(Math.min(50 * 2 ** Math.min(attempt, 4), Math.max(0, deadline - Date.now() - 10)));
            attempt++;
            continue;
          }
          throw mapped;
        }
      }
    } catch (err) {
      for (const p of batch) fail(p, err);
    }
  }

  async info(log: string): Promise<LogInfo> {
    const subject = this.subject(log);
    const [head, last] = await Promise.all([
      this.#get({ next_by_subj: subject, seq: 1 }),
      this.#get({ last_by_subj: subject }),
    ]);
    const epoch = await this.#currentEpoch();
    const lastOffset = last ? lastOffsetOf(last, log, last.seq) : 0;
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

  /** True when stored message `m` of `log` holds the entry at `offset`. */
  #holds(m: StoredMsg, log: string, offset: number): boolean {
    const first = offsetOf(m, log, m.seq);
    return first > 0 && first <= offset && offset <= lastOffsetOf(m, log, m.seq);
  }

  /**
   * The stored message holding `offset`, or null when the log has no such entry (not written yet,
   * trimmed, deleted). Searches stream sequences between known points (what this instance has seen,
   * and the log's last message); each probe is "first message of the subject at or after sequence n".
   * Offsets only grow along the subject, but a message may hold several (a batch) and other logs'
   * messages sit in between, so offsets bound sequences only in order: probes alternate between an
   * estimate interpolated from the offsets at both ends (exact for a log alone in the stream written
   * one entry at a time) and the middle (which bounds the number of probes).
   */
  async #locate(log: string, subject: string, offset: number): Promise<StoredMsg | null> {
    const state = this.#state(log);
    const hint = state.seen.get(offset);
    if (hint !== undefined) {
      const m = await this.#get({ seq: hint });
      if (m && m.subject === subject && this.#holds(m, log, offset)) return m;
      state.seen.delete(offset);
    }
    const last = await this.#get({ last_by_subj: subject });
    if (!last) {
      // The log is empty: an append after this read builds on that without reading its end again.
      if (!state.known) knownEmpty(state);
      return null;
    }
    const lastFirst = offsetOf(last, log, last.seq);
    const lastOffset = lastOffsetOf(last, log, last.seq);
    this.#advance(state, last.seq, lastOffset);
    if (offset > lastOffset) return null;
    if (offset >= lastFirst) return last;
    for (const useHints of [true, false]) {
      // The message holding `offset` is within lo..hi; loOffset is an offset at or below sequence lo
      // (below `offset`), hiOffset one at or above sequence hi (above `offset`).
      let lo = 1;
      let loOffset = 0;
      let hi = last.seq - 1;
      let hiOffset = lastFirst;
      if (useHints) {
        for (const [o, s] of state.seen) {
          if (o < offset && s > lo) {
            lo = s;
            loOffset = o;
          } else if (o > offset && s < hi) {
            hi = s;
            hiOffset = o;
          }
        }
      }
      for (let step = 0; lo <= hi; step++) {
        const span = hiOffset - loOffset;
        const probe =
          step % 2 === 0 && span > 0
            ? Math.min(hi, lo + Math.floor(((offset - loOffset) * (hi - lo)) / span))
            : Math.floor((lo + hi) / 2);
        const m = await this.#get({ next_by_subj: subject, seq: probe });
        if (!m) {
          hi = probe - 1;
          continue;
        }
        const o = offsetOf(m, log, m.seq);
        const end = lastOffsetOf(m, log, m.seq);
        if (o > 0) this.#remember(state, o, m.seq);
        if (o > 0 && o <= offset && offset <= end) return m;
        if (end < offset) {
          lo = m.seq + 1;
          loOffset = end;
        } else {
          // `m` is the subject's first message at or after `probe`, and comes after `offset`.
          hi = probe - 1;
          hiOffset = o;
        }
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
    const state = this.#state(log);
    if (state.offset - fromOffset + 1 < limit) {
      // The cached end may be behind: look it up so that a read returns fewer entries only at the end.
      const last = await this.#get({ last_by_subj: subject });
      if (last) this.#advance(state, last.seq, lastOffsetOf(last, log, last.seq));
    }
    const wanted = Math.min(limit, state.offset - fromOffset + 1);
    const out: LogEntry[] = [];
    // Adds the entries of `m` from the next wanted offset on; false at a deletion marker or a gap.
    const take = (m: StoredMsg): boolean => {
      const o = offsetOf(m, log, m.seq);
      const next = fromOffset + out.length;
      // Zero: the log was deleted here. Above: cannot happen.
      if (o === 0 || o > next) return false;
      // Entries below `next` (a duplicate) are skipped.
      const entries = entriesOf(m, log, m.seq);
      this.#remember(state, o, m.seq);
      for (let i = next - o; i < entries.length && out.length < wanted; i++) {
        out.push({ offset: o + i, data: entries[i]! });
      }
      return true;
    };
    take(first);
    // One "next message of the subject" get per message, answered by the stream leader. A short-lived
    // consumer would batch them, but creating one can stall for seconds while a cluster member is down.
    let seq = first.seq;
    while (out.length < wanted) {
      const m = await this.#get({ next_by_subj: subject, seq: seq + 1 });
      if (!m) break;
      seq = m.seq;
      if (!take(m)) break;
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
      if (fromOffset > lastOffsetOf(last, log, last.seq)) return last.seq + 1;
      // `fromOffset` is at or below the end but was not found: trimmed, or written meanwhile.
    }
    throw new MeshError('protocol', `log ${log}: offset ${fromOffset} is no longer stored`);
  }

  follow(log: string, fromOffset: number, options: FollowOptions = {}): LogFollower {
    const subject = this.subject(log);
    const from = Math.max(1, fromOffset);
    const onClose = () => this.#followers.get(log)?.delete(follower);
    // Task logs are followed briefly and often (every blocking A2A SendMessage): through the
    // stream's republish instead of a consumer each. Collaboration and conversation logs, followed
    // long by few, keep an ordered consumer.
    const follower: LogFollower =
      this.#tailed && log.startsWith('a2atask.')
        ? new NatsTailFollower(
            this.#ctx,
            this,
            log,
            tailSubject(this.#ctx.prefix, subject),
            from,
            onClose,
            options.empty === true && from === 1,
          )
        : new NatsFollower(this.#ctx, this, log, subject, from, onClose);
    let set = this.#followers.get(log);
    if (!set) {
      set = new Set();
      this.#followers.set(log, set);
    }
    set.add(follower);
    return follower;
  }

  /**
   * Records a message a follower saw. It is also where the log ended when the message was stored, so
   * the next append of this instance builds on it without reading the log's end (fewer conflicts
   * when other nodes write to the log).
   */
  seen(log: string, first: number, last: number, seq: number): void {
    const state = this.#states.get(log);
    if (!state) return;
    this.#remember(state, first, seq);
    if (state.known) this.#advance(state, seq, last);
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
