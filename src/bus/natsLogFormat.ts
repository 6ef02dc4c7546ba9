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

/** The offset a stored message carries: 1, 2, ... for entries, 0 for a deletion marker. */
export function offsetOf(
  msg: StoredMsg | { headers?: MsgHdrs | undefined },
  log: string,
  seq: number,
): number {
  const h = 'header' in msg ? msg.header : msg.headers;
  if (h?.get(DELETED_HEADER)) return 0;
  const offset = Number(h?.get(OFFSET_HEADER));
  if (!Number.isSafeInteger(offset) || offset < 1) {
    throw new MeshError(
      'protocol',
      `log ${log}: message at stream sequence ${seq} carries no ${OFFSET_HEADER} header`,
    );
  }
  return offset;
}

/** The stream description carrying the epoch. */
export function describe(prefix: string, epoch: string): string {
  return `a2a-mesh logs under ${prefix}.*; epoch=${epoch}`;
}

/** The epoch written into the stream description, if any. */
export function epochOf(description: string | undefined): string | undefined {
  return description ? /epoch=([A-Za-z0-9]+)/.exec(description)?.[1] : undefined;
}
