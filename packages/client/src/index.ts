/** The mesh client: one agent's session to the mesh, resumed across reconnects. */

/** Protocol types that appear in the client's API. */
export type {
  AgentEntry,
  CollabEvent,
  Connector,
  ConvDeliverParams,
  HelloResult,
  Json,
  Member,
  MessageInput,
  PatchOperation,
  RequestOptions,
  SendMessageResponse,
  StreamResponse,
  Task,
  TaskState,
  TopicMessage,
} from '@a2a-mesh/protocol';
/** Error classes the client rejects with: RpcError (the node said no, see `.reason`), MeshError (local). */
export { MeshError, RpcError } from '@a2a-mesh/protocol';
/** A2A calls to other mesh agents over the session (`client.a2a`), and their task streams. */
export type { A2ATasks, SendTaskMessageOptions, TaskEventStream, TaskStreamItem } from './a2aTasks.js';
/** Reconnect policy: initial and max delay (full jitter), max attempts. */
export type { ReconnectOptions } from './backoff.js';
/** Options, handler and parameter types of `MeshClient`. */
export type {
  AgentCardInput,
  MeshClientOptions,
  MeshTransport,
  StartConversationParams,
  SubscribeOptions,
} from './client.js';
export { MeshClient } from './client.js';
/** A joined collaboration (local copy, event stream, calls), and its option and item types. */
export type {
  CollabItem,
  CollaborationHandle,
  CollabResync,
  CollabStats,
  HistoryQuery,
  ShareOptions,
  UpdateOptions,
} from './collaboration.js';
/** The conversation handler an agent registers with `onConversation`, and what it receives. */
export type { ConversationContext, ConversationHandler } from './conversations.js';
/** The executor API for serving A2A tasks (`client.onTask`), modelled on `@a2a-js/sdk`'s AgentExecutor. */
export type { ArtifactInput, TaskContext, TaskExecutor } from './executor.js';
/** Runs an unchanged `@a2a-js/sdk` AgentExecutor as a mesh task executor. */
export { fromA2AExecutor } from './executorSdkAdapter.js';
/** Text or an A2A message, as every SDK call that sends a message accepts it. */
export type { MessageLike } from './messages.js';
/** Turns text or a partial A2A message into a full one (generated `messageId`, given role). */
export { toMessage } from './messages.js';
/** Connection status union yielded by `MeshClient.status()`. */
export type { ClientStatus } from './status.js';
/** A topic subscription: an async iterable of messages that survives reconnects. */
export type { TopicSubscription } from './topics.js';
/** Options of `webSocketConnector`, and the WebSocket constructor shape it accepts. */
export type { WebSocketConnectorOptions, WebSocketConstructor } from './webSocket.js';
/** A Connector over the WHATWG WebSocket (browser, Node 22, or `ws`), for custom setups. */
export { webSocketConnector } from './webSocket.js';
