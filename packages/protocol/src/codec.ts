import { Packr } from 'msgpackr';
import { MeshError } from './errors.js';

/** Default largest frame a codec accepts, in bytes (1 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** WebSocket subprotocol names; the suffix names the codec. */
export const Subprotocol = {
  Json: 'a2a-mesh.v1.json',
  Msgpack: 'a2a-mesh.v1.msgpack',
} as const;
export type Subprotocol = (typeof Subprotocol)[keyof typeof Subprotocol];

/** Encodes and decodes one JSON-RPC message or batch per frame, refusing input over a size limit. */
export interface Codec {
  readonly name: 'json' | 'msgpack';
  readonly subprotocol: Subprotocol;
  /** True when frames are binary (WebSocket binary frames, `Uint8Array`). */
  readonly binary: boolean;
  encode(value: unknown): string | Uint8Array;
  /** Throws MeshError `too_large` over `maxBytes` (checked before parsing) or `protocol` when malformed. */
  decode(frame: string | Uint8Array, maxBytes?: number): unknown;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function sizeOf(frame: string | Uint8Array): number {
  // A string's UTF-8 length is at most 3 bytes per UTF-16 unit; count exactly only near the limit.
  return typeof frame === 'string' ? frame.length : frame.byteLength;
}

function checkSize(frame: string | Uint8Array, maxBytes: number): void {
  let size = sizeOf(frame);
  if (typeof frame === 'string' && size * 3 > maxBytes && size <= maxBytes)
    size = textEncoder.encode(frame).byteLength;
  if (size > maxBytes)
    throw new MeshError('too_large', `message of ${size} bytes exceeds the ${maxBytes}-byte limit`);
}

/** JSON text codec (`a2a-mesh.v1.json`). */
export const jsonCodec: Codec = {
  name: 'json',
  subprotocol: Subprotocol.Json,
  binary: false,
  encode: (value) => JSON.stringify(value),
  decode(frame, maxBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    checkSize(frame, maxBytes);
    let text: string;
    try {
      text = typeof frame === 'string' ? frame : textDecoder.decode(frame);
    } catch (cause) {
      throw new MeshError('protocol', 'frame is not valid UTF-8', { cause });
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new MeshError('protocol', 'frame is not valid JSON', { cause });
    }
  },
};

// Plain maps (not Map objects), no records/structures on the wire so any msgpack peer can read frames.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

/** MessagePack binary codec (`a2a-mesh.v1.msgpack`), using msgpackr with plain maps. */
export const msgpackCodec: Codec = {
  name: 'msgpack',
  subprotocol: Subprotocol.Msgpack,
  binary: true,
  encode: (value) => packr.pack(value),
  decode(frame, maxBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    checkSize(frame, maxBytes);
    if (typeof frame === 'string') throw new MeshError('protocol', 'msgpack frames must be binary');
    try {
      return packr.unpack(frame);
    } catch (cause) {
      throw new MeshError('protocol', 'frame is not valid MessagePack', { cause });
    }
  },
};

/** The codec for a negotiated subprotocol, or undefined when unknown. */
export function codecFor(subprotocol: string): Codec | undefined {
  if (subprotocol === Subprotocol.Json) return jsonCodec;
  if (subprotocol === Subprotocol.Msgpack) return msgpackCodec;
  return undefined;
}
