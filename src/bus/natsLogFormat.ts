import { MeshError } from '@a2a-mesh/protocol';
import type { StoredMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { LOG_KINDS } from './bus.js';

// How logs are laid out on JetStream: stream name and subjects, entry headers, the epoch field.

/** Header carrying an entry's offset in its log (0 on a deletion marker). */
export const OFFSET_HEADER = 'Mesh-Offset';
/** Header with a random id per `append` call, to recognise our own message behind a duplicate ack. */
export const APPEND_HEADER = 'Mesh-Append';
/** Header marking a deletion marker: the log was deleted here and starts again from offset 1. */
export const DELETED_HEADER = 'Mesh-Deleted';

/** The name of the stream holding every log under `prefix`. */
export function logStreamName(prefix: string): string {
  return `${prefix.toUpperCase().replace(/[^A-Z0-9_-]/g, '_')}_LOGS`;
}

/** The subjects of that stream, one per log kind: `<prefix>.collab.*.log`, `<prefix>.conv.*.log`, ... */
export function logStreamSubjects(prefix: string): string[] {
  return LOG_KINDS.map((kind) => `${prefix}.${kind}.*.log`);
}

/** Header of a batch message: how many entries it carries (absent on a message of one entry). */
export const COUNT_HEADER = 'Mesh-Count';

type LogMessage = StoredMsg | { headers?: MsgHdrs | undefined };

function headersOf(msg: LogMessage): MsgHdrs | undefined {
  return 'header' in msg ? msg.header : msg.headers;
}

function malformed(log: string, seq: number, what: string): MeshError {
  return new MeshError('protocol', `log ${log}: message at stream sequence ${seq} ${what}`);
}

/** The offset a stored message carries (its first entry's): 1, 2, ... for entries, 0 for a deletion marker. */
export function offsetOf(msg: LogMessage, log: string, seq: number): number {
  const h = headersOf(msg);
  if (h?.get(DELETED_HEADER)) return 0;
  const offset = Number(h?.get(OFFSET_HEADER));
  if (!Number.isSafeInteger(offset) || offset < 1) {
    throw malformed(log, seq, `carries no ${OFFSET_HEADER} header`);
  }
  return offset;
}

/** How many entries a stored message carries: 1 without a `Mesh-Count` header, 0 on a deletion marker. */
export function countOf(msg: LogMessage, log: string, seq: number): number {
  const h = headersOf(msg);
  if (h?.get(DELETED_HEADER)) return 0;
  const raw = h?.get(COUNT_HEADER);
  if (!raw) return 1;
  const count = Number(raw);
  if (!Number.isSafeInteger(count) || count < 1) throw malformed(log, seq, `has ${COUNT_HEADER} ${raw}`);
  return count;
}

/** The offset of the last entry a stored message carries (0 on a deletion marker). */
export function lastOffsetOf(msg: LogMessage, log: string, seq: number): number {
  const first = offsetOf(msg, log, seq);
  return first === 0 ? 0 : first + countOf(msg, log, seq) - 1;
}

/**
 * The payload of a batch message: each entry as a 4-byte big-endian length followed by its bytes.
 * A single entry is published as is, without framing or `Mesh-Count`, as before batches existed.
 */
export function encodeBatch(entries: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const e of entries) size += 4 + e.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    view.setUint32(at, e.length);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

/** The entries' data of a stored message, in offset order (views into its payload, not copies). */
export function entriesOf(msg: LogMessage & { data: Uint8Array }, log: string, seq: number): Uint8Array[] {
  const count = countOf(msg, log, seq);
  if (count === 0) return [];
  const data = msg.data;
  if (!headersOf(msg)?.get(COUNT_HEADER)) return [data];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (out.length < count && at + 4 <= data.length) {
    const length = view.getUint32(at);
    if (at + 4 + length > data.length) break;
    out.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  if (out.length !== count || at !== data.length) {
    throw malformed(log, seq, `does not hold the ${count} entries its ${COUNT_HEADER} announces`);
  }
  return out;
}

/** The stream description carrying the epoch. */
export function describe(prefix: string, epoch: string): string {
  return `a2a-mesh logs under ${prefix}.*; epoch=${epoch}`;
}

/** The epoch written into the stream description, if any. */
export function epochOf(description: string | undefined): string | undefined {
  return description ? /epoch=([A-Za-z0-9]+)/.exec(description)?.[1] : undefined;
}
