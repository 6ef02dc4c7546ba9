import type { TaskPushNotificationConfig } from '@a2a-mesh/protocol';
import {
  type Bus,
  entryValue,
  type FollowOptions,
  type KvBucket,
  KvConflictError,
  kvValue,
  type LogEntry,
  type LogFollower,
  OffsetConflictError,
} from '../bus/bus.js';
import { busError } from '../services/busErrors.js';
import { Packed } from '../util/binary.js';
import { applyEntry, type TaskLogEntry, type TaskRecord } from './taskFold.js';

/** Task ids the gateway accepts: safe as KV keys and log-name tokens. */
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** Compare-and-set attempts before an append gives up (only reachable under heavy contention). */
const MAX_ATTEMPTS = 64;
/** Log entries read per page while catching up. */
const PAGE = 500;

/** True when `id` can name a task (other ids cannot exist, so they are "not found"). */
export function isTaskId(id: string): boolean {
  return TASK_ID.test(id);
}

/** The bus log holding a task's entries. */
export function taskLog(taskId: string): string {
  return `a2atask.${taskId}`;
}

/** A stored push notification config with the A2A version it was created with (it shapes the payload). */
export interface StoredPushConfig {
  config: TaskPushNotificationConfig & { id: string; taskId: string };
  version: '1.0' | '0.3';
  createdAt: number;
}

/** False when `entries` are only turn ends, which leave the task (what ListTasks shows) as it was. */
function changesTask(entries: readonly TaskLogEntry[]): boolean {
  return entries.some((e) => e.type !== 'end');
}

/** An entry read from a task's log. */
export interface SequencedEntry {
  sequence: number;
  entry: TaskLogEntry;
}

/**
 * What a node holds of a task, handed with the `task/execute` it routes to the agent's node
 * (`TaskStore.handoff`, `adopt`): the agent's appends there then start from it without reading.
 */
export interface TaskHandoff {
  taskId: string;
  record: TaskRecord;
  kvRevision: number;
  kvSequence: number;
}

/** Records of recently used tasks kept folded in memory (per node; the oldest are dropped first). */
const CACHE_SIZE = 1024;

/** What this node knows of a task: its record folded up to `record.sequence`, and the KV value. */
interface Known {
  record: TaskRecord;
  /** KV revision last read or written here (0: unknown). */
  kvRevision: number;
  /** The record sequence stored at `kvRevision`. */
  kvSequence: number;
}

/**
 * A task's log entries from some sequence on (`TaskStore.follow`), each folded into the record the
 * node holds when it directly follows it. An iterator of its own rather than an async generator
 * around the bus's follower: one promise per entry instead of a generator's steps on top (a blocking
 * SendMessage reads one or two entries, and the generators showed in its profile). Iterated once.
 */
export class TaskLogFollower implements AsyncIterableIterator<SequencedEntry> {
  readonly #follower: LogFollower;
  readonly #taskId: string;
  readonly #known: Map<string, Known>;
  #inner: AsyncIterator<LogEntry> | undefined;

  constructor(follower: LogFollower, taskId: string, known: Map<string, Known>) {
    this.#follower = follower;
    this.#taskId = taskId;
    this.#known = known;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<SequencedEntry>> {
    this.#inner ??= this.#follower[Symbol.asyncIterator]();
    const r = await this.#inner.next();
    if (r.done) return { done: true, value: undefined };
    const e = r.value;
    const entry = entryValue<TaskLogEntry>(e);
    const k = this.#known.get(this.#taskId);
    if (k && k.record.sequence === e.offset - 1) k.record = applyEntry(k.record, entry, e.offset);
    return { done: false, value: { sequence: e.offset, entry } };
  }

  async return(): Promise<IteratorResult<SequencedEntry>> {
    this.close();
    return { done: true, value: undefined };
  }

  /** Stops following; a pending `next` ends. */
  close(): void {
    this.#follower.close();
  }
}

/**
 * Tasks on the bus: the record in KV bucket `a2a-tasks` (key: task id), the entries in log
 * `a2atask.<id>`, push configs in bucket `a2a-push` (key `<taskId>.<configId>`). Appends are
 * compare-and-set on the log, so every entry is validated against exactly the state it follows.
 *
 * The log is the source of truth; the KV record is its fold up to some sequence, which any node
 * catches up from the log. Each node also keeps the folded records of the tasks it used last in
 * memory: a load then reads only the log entries after the one it knows (no KV read, no unpack of the
 * record), an append folds each entry once, and the KV record is written with the revision this node
 * last saw (compare-and-set; on a conflict it is read again and caught up from the log).
 */
export class TaskStore {
  readonly #known = new Map<string, Known>();

  private constructor(
    readonly bus: Bus,
    readonly tasks: KvBucket,
    readonly push: KvBucket,
  ) {}

  static async create(bus: Bus): Promise<TaskStore> {
    const [tasks, push] = await Promise.all([bus.kv('a2a-tasks'), bus.kv('a2a-push')]);
    return new TaskStore(bus, tasks, push);
  }

  /** Stores a new record (sequence 0). */
  async create(taskId: string, record: TaskRecord): Promise<void> {
    let revision: number;
    try {
      revision = await this.tasks.create(taskId, new Packed(record));
    } catch (error) {
      throw busError(error);
    }
    this.#remember(taskId, record, revision, record.sequence);
  }

  /** The current record: the last one known (here or in KV) caught up with the log entries after it. */
  async load(taskId: string): Promise<TaskRecord | undefined> {
    if (!isTaskId(taskId)) return undefined;
    try {
      const known = this.#known.get(taskId);
      if (known) return this.#remember(taskId, await this.#catchUp(taskId, known.record)).record;
      const entry = await this.tasks.get(taskId);
      if (!entry) return undefined;
      const stored = kvValue<TaskRecord>(entry);
      const current = await this.#catchUp(taskId, stored);
      return this.#remember(taskId, current, entry.revision, stored.sequence).record;
    } catch (error) {
      throw busError(error);
    }
  }

  /**
   * The record this node holds for `taskId` if it has folded the log at least up to `sequence`
   * (no bus read); undefined otherwise. Entries read through `follow` are folded in as they pass.
   */
  known(taskId: string, sequence: number): TaskRecord | undefined {
    const record = this.#known.get(taskId)?.record;
    return record && record.sequence >= sequence ? record : undefined;
  }

  /** What this node holds of `taskId`, for the node that appends to it next; undefined if nothing. */
  handoff(taskId: string): TaskHandoff | undefined {
    const known = this.#known.get(taskId);
    if (!known || known.kvRevision === 0) return undefined;
    return { taskId, record: known.record, kvRevision: known.kvRevision, kvSequence: known.kvSequence };
  }

  /**
   * Takes what another node held of a task. A hand-off that is behind the log or the KV record costs
   * a compare-and-set conflict and a read, as any stale record does; one behind what this node holds
   * changes nothing.
   */
  adopt(handoff: TaskHandoff): void {
    if (!isTaskId(handoff.taskId) || typeof handoff.record?.sequence !== 'number') return;
    this.#remember(handoff.taskId, handoff.record, handoff.kvRevision, handoff.kvSequence);
  }

  /** True when the task's log holds an `event` entry after `after`, up to `upTo` (at most). */
  async hasEventAfter(taskId: string, after: number, upTo: number): Promise<boolean> {
    try {
      for (let from = after + 1; from <= upTo; ) {
        const page = await this.bus.read(taskLog(taskId), from, Math.min(PAGE, upTo - from + 1));
        for (const e of page) if (entryValue<TaskLogEntry>(e).type === 'event') return true;
        if (page.length === 0) return false;
        from = page.at(-1)!.offset + 1;
      }
      return false;
    } catch (error) {
      throw busError(error);
    }
  }

  async #catchUp(taskId: string, record: TaskRecord): Promise<TaskRecord> {
    let current = record;
    for (;;) {
      const entries = await this.bus.read(taskLog(taskId), current.sequence + 1, PAGE);
      for (const e of entries) current = applyEntry(current, entryValue<TaskLogEntry>(e), e.offset);
      if (entries.length < PAGE) return current;
    }
  }

  /** Records what this node knows of a task; never goes back to an older record or KV revision. */
  #remember(taskId: string, record: TaskRecord, kvRevision?: number, kvSequence?: number): Known {
    let known = this.#known.get(taskId);
    if (!known) {
      known = { record, kvRevision: 0, kvSequence: -1 };
      this.#known.set(taskId, known);
      if (this.#known.size > CACHE_SIZE) this.#known.delete(this.#known.keys().next().value!);
    } else if (record.sequence > known.record.sequence) {
      known.record = record;
    }
    if (kvRevision !== undefined && kvRevision > known.kvRevision) {
      known.kvRevision = kvRevision;
      known.kvSequence = kvSequence!;
    }
    return known;
  }

  /**
   * Appends the entries `build` derives from the current record (none: nothing is written), retrying
   * on a concurrent append (`build` may run more than once). `build` may throw to refuse. Returns the record after them and their offsets.
   * The KV record is brought up to date before it returns, unless the entries are only a turn's `end`
   * (it changes nothing a reader of the KV record alone sees: the task, its kind and state; readers of
   * the task catch up from the log). A task that does not exist throws `missing()`.
   */
  async append(
    taskId: string,
    build: (record: TaskRecord) => TaskLogEntry[],
    missing: () => Error = () => new Error(`task ${taskId} vanished`),
  ): Promise<{ record: TaskRecord; sequences: number[]; entries: TaskLogEntry[] }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // First try on the record this node holds, without reading the log: the compare-and-set append
      // checks that nothing came after it. Deciding to refuse or to write nothing is no write, so it
      // is made again on a record caught up with the log.
      const held = attempt === 0 ? this.#known.get(taskId)?.record : undefined;
      const record = held ?? (await this.load(taskId));
      if (!record) throw missing();
      let entries: TaskLogEntry[];
      try {
        entries = build(record);
      } catch (error) {
        if (held) continue;
        throw error;
      }
      if (entries.length === 0) {
        if (held) continue;
        return { record, sequences: [], entries };
      }
      const sequences: number[] = [];
      let next = record;
      try {
        for (const entry of entries) {
          const offset = await this.bus.append(taskLog(taskId), new Packed(entry), {
            expectedLastOffset: next.sequence,
          });
          next = applyEntry(next, entry, offset);
          sequences.push(offset);
          this.#remember(taskId, next);
        }
      } catch (error) {
        if (error instanceof OffsetConflictError && sequences.length === 0) continue;
        if (error instanceof OffsetConflictError) {
          // Part went in: the rest is rebuilt against the new state by the caller's next call.
          const written = entries.slice(0, sequences.length);
          if (changesTask(written)) await this.#persist(taskId, next);
          return { record: next, sequences, entries: written };
        }
        throw busError(error);
      }
      if (changesTask(entries)) await this.#persist(taskId, next);
      return { record: next, sequences, entries };
    }
    throw busError(new Error(`task ${taskId}: too much write contention`));
  }

  /**
   * Stores `record` (the fold of the log up to its sequence) as the KV record, unless the KV already
   * holds that sequence or a later one. Compare-and-set against the revision this node last saw; on a
   * conflict the KV value is read again, caught up from the log and written (whoever wins has folded
   * the same entries).
   */
  async #persist(taskId: string, record: TaskRecord): Promise<void> {
    const known = this.#remember(taskId, record);
    if (known.kvSequence >= record.sequence) return;
    if (known.kvRevision > 0) {
      try {
        const revision = await this.tasks.update(taskId, new Packed(record), known.kvRevision);
        this.#remember(taskId, record, revision, record.sequence);
        return;
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw busError(error);
      }
    }
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const entry = await this.tasks.get(taskId);
        if (!entry) return;
        const stored = kvValue<TaskRecord>(entry);
        this.#remember(taskId, stored, entry.revision, stored.sequence);
        if (stored.sequence >= record.sequence) return;
        const current = await this.#catchUp(taskId, stored);
        try {
          const revision = await this.tasks.update(taskId, new Packed(current), entry.revision);
          this.#remember(taskId, current, revision, current.sequence);
          return;
        } catch (error) {
          if (!(error instanceof KvConflictError)) throw error;
        }
      }
    } catch (error) {
      throw busError(error);
    }
  }

  /**
   * Every stored record (as of its last fold; may trail the log by an in-flight append). A record
   * this node holds in memory at the KV's revision or later is used as is.
   */
  async list(): Promise<TaskRecord[]> {
    try {
      const keys = await this.tasks.keys();
      const out: TaskRecord[] = [];
      for (const key of keys) {
        const entry = await this.tasks.get(key);
        if (!entry) continue;
        const known = this.#known.get(key);
        if (known && known.kvRevision >= entry.revision) out.push(known.record);
        else out.push(kvValue<TaskRecord>(entry));
      }
      return out;
    } catch (error) {
      throw busError(error);
    }
  }

  /**
   * Entries from `fromSequence` on, live. Each entry that directly follows the record this node
   * holds is folded into it, so a reader that followed a task to some entry has its state at hand.
   */
  follow(taskId: string, fromSequence: number, options?: FollowOptions): TaskLogFollower {
    return new TaskLogFollower(this.bus.follow(taskLog(taskId), fromSequence, options), taskId, this.#known);
  }

  // ---------------------------------------------------------------- push configs

  async putPushConfig(stored: StoredPushConfig): Promise<void> {
    try {
      await this.push.put(`${stored.config.taskId}.${stored.config.id}`, new Packed(stored));
    } catch (error) {
      throw busError(error);
    }
  }

  async getPushConfig(taskId: string, id: string): Promise<StoredPushConfig | undefined> {
    if (!isTaskId(taskId) || !isTaskId(id)) return undefined;
    try {
      const entry = await this.push.get(`${taskId}.${id}`);
      return entry ? kvValue<StoredPushConfig>(entry) : undefined;
    } catch (error) {
      throw busError(error);
    }
  }

  /** A task's push configs, oldest first. */
  async listPushConfigs(taskId: string): Promise<StoredPushConfig[]> {
    if (!isTaskId(taskId)) return [];
    try {
      const keys = await this.push.keys(`${taskId}.`);
      const out: StoredPushConfig[] = [];
      for (const key of keys) {
        const entry = await this.push.get(key);
        if (entry) out.push(kvValue<StoredPushConfig>(entry));
      }
      return out.sort((a, b) => a.createdAt - b.createdAt || a.config.id.localeCompare(b.config.id));
    } catch (error) {
      throw busError(error);
    }
  }

  async deletePushConfig(taskId: string, id: string): Promise<void> {
    if (!isTaskId(taskId) || !isTaskId(id)) return;
    try {
      await this.push.delete(`${taskId}.${id}`);
    } catch (error) {
      throw busError(error);
    }
  }
}
