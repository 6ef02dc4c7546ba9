import type { TaskPushNotificationConfig } from '@a2a-mesh/protocol';
import {
  type Bus,
  type KvBucket,
  KvConflictError,
  type LogFollower,
  OffsetConflictError,
} from '../bus/bus.js';
import { busError } from '../services/busErrors.js';
import { pack, unpack } from '../util/binary.js';
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

/** An entry read from a task's log. */
export interface SequencedEntry {
  sequence: number;
  entry: TaskLogEntry;
}

/**
 * Tasks on the bus: the record in KV bucket `a2a-tasks` (key: task id), the entries in log
 * `a2atask.<id>`, push configs in bucket `a2a-push` (key `<taskId>.<configId>`). Appends are
 * compare-and-set on the log, so every entry is validated against exactly the state it follows.
 */
export class TaskStore {
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
    try {
      await this.tasks.create(taskId, pack(record));
    } catch (error) {
      throw busError(error);
    }
  }

  /** The current record: the KV value caught up with any log entries written after it. */
  async load(taskId: string): Promise<TaskRecord | undefined> {
    if (!isTaskId(taskId)) return undefined;
    try {
      const entry = await this.tasks.get(taskId);
      if (!entry) return undefined;
      return await this.#catchUp(taskId, unpack<TaskRecord>(entry.value));
    } catch (error) {
      throw busError(error);
    }
  }

  async #catchUp(taskId: string, record: TaskRecord): Promise<TaskRecord> {
    let current = record;
    for (;;) {
      const entries = await this.bus.read(taskLog(taskId), current.sequence + 1, PAGE);
      for (const e of entries) current = applyEntry(current, unpack<TaskLogEntry>(e.data), e.offset);
      if (entries.length < PAGE) return current;
    }
  }

  /**
   * Appends the entries `build` derives from the current record (none: nothing is written), retrying
   * on a concurrent append. `build` may throw to refuse. Returns the record after them and their offsets.
   */
  async append(
    taskId: string,
    build: (record: TaskRecord) => TaskLogEntry[],
  ): Promise<{ record: TaskRecord; sequences: number[]; entries: TaskLogEntry[] }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await this.load(taskId);
      if (!record) throw new Error(`task ${taskId} vanished`);
      const entries = build(record);
      if (entries.length === 0) return { record, sequences: [], entries };
      const sequences: number[] = [];
      let next = record;
      try {
        for (const entry of entries) {
          const offset = await this.bus.append(taskLog(taskId), pack(entry), {
            expectedLastOffset: next.sequence,
          });
          next = applyEntry(next, entry, offset);
          sequences.push(offset);
        }
      } catch (error) {
        if (error instanceof OffsetConflictError && sequences.length === 0) continue;
        if (error instanceof OffsetConflictError) {
          // Part went in: the rest is rebuilt against the new state by the caller's next call.
          await this.#persist(taskId);
          return { record: next, sequences, entries: entries.slice(0, sequences.length) };
        }
        throw busError(error);
      }
      await this.#persist(taskId);
      return { record: next, sequences, entries };
    }
    throw busError(new Error(`task ${taskId}: too much write contention`));
  }

  /** Folds the log into the KV record (compare-and-set; whoever wins has folded the same entries). */
  async #persist(taskId: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.tasks.get(taskId);
      if (!entry) return;
      const stored = unpack<TaskRecord>(entry.value);
      const current = await this.#catchUp(taskId, stored);
      if (current.sequence === stored.sequence) return;
      try {
        await this.tasks.update(taskId, pack(current), entry.revision);
        return;
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw error;
      }
    }
  }

  /** Every stored record (as of its last fold; may trail the log by an in-flight append). */
  async list(): Promise<TaskRecord[]> {
    try {
      const keys = await this.tasks.keys();
      const out: TaskRecord[] = [];
      for (const key of keys) {
        const entry = await this.tasks.get(key);
        if (entry) out.push(unpack<TaskRecord>(entry.value));
      }
      return out;
    } catch (error) {
      throw busError(error);
    }
  }

  /** Entries from `fromSequence` on, live. */
  follow(taskId: string, fromSequence: number): AsyncIterable<SequencedEntry> & { close(): void } {
    const follower: LogFollower = this.bus.follow(taskLog(taskId), fromSequence);
    return {
      close: () => follower.close(),
      async *[Symbol.asyncIterator]() {
        for await (const e of follower) yield { sequence: e.offset, entry: unpack<TaskLogEntry>(e.data) };
      },
    };
  }

  // ---------------------------------------------------------------- push configs

  async putPushConfig(stored: StoredPushConfig): Promise<void> {
    try {
      await this.push.put(`${stored.config.taskId}.${stored.config.id}`, pack(stored));
    } catch (error) {
      throw busError(error);
    }
  }

  async getPushConfig(taskId: string, id: string): Promise<StoredPushConfig | undefined> {
    if (!isTaskId(taskId) || !isTaskId(id)) return undefined;
    try {
      const entry = await this.push.get(`${taskId}.${id}`);
      return entry ? unpack<StoredPushConfig>(entry.value) : undefined;
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
        if (entry) out.push(unpack<StoredPushConfig>(entry.value));
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
