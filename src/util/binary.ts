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

/**
 * A node-internal value written to the bus, encoded on first use of `bytes`. A bus that stores bytes
 * (NATS) writes `bytes`; the embedded bus keeps the value itself and hands it to its readers as
 * `decoded`, so on one node a value is never encoded or decoded (profiled: msgpack was 8% of an
 * embedded node serving A2A SendMessage). Readers share the value: it must not be changed once
 * written, like the task records and log entries it carries (built anew, never changed in place).
 */
export class Packed<T = unknown> {
  #bytes: Uint8Array | undefined;

  constructor(readonly value: T) {}

  get bytes(): Uint8Array {
    this.#bytes ??= packr.pack(this.value);
    return this.#bytes;
  }
}
