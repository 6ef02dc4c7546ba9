/**
 * The mesh client's Node-only entry, `@a2a-mesh/client/node`: the HTTP/2 session transport, which
 * needs `node:http2` and so stays out of the browser entry. `MeshClient` itself comes from the main entry.
 */

/** Options of `http2Connector` / `http2Transport`. */
export type { Http2ConnectorOptions } from './http2.js';
/** HTTP/2 sessions (`POST /mesh/rpc` + SSE `GET /mesh/stream`): a Connector, or a transport for `MeshClient`. */
export { http2Connector, http2Transport } from './http2.js';
