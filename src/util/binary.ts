import { Packr } from 'msgpackr';

// Node-internal records (log entries, KV values, bus payloads): msgpack with plain maps.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

/** Encodes a node-internal value for the bus. */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes a node-internal value read from the bus. */
export function unpack<T>(data: Uint8Array): T {
  return packr.unpack(data) as T;
}
