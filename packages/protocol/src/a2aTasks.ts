import { z } from 'zod';
import { MessageSchema, PartSchema } from './a2a.js';
import { IdSchema, MetadataSchema } from './common.js';

/**
 * A2A v1.0 tasks as the JSON-RPC binding carries them (camelCase, enum names as strings), and the
 * mesh's own task protocol between a node and the agent that executes a task.
 */

/** URI of the mesh's per-task event sequence extension (A2A issue #1986), declared in every gateway card. */
export const TASK_SEQUENCE_EXTENSION = 'urn:a2a-mesh:extension:task-sequence:v1';

/** A2A v1.0 task states (proto enum names). */
export const TaskStateSchema = z.enum([
  'TASK_STATE_UNSPECIFIED',
  'TASK_STATE_SUBMITTED',
  'TASK_STATE_WORKING',
  'TASK_STATE_COMPLETED',
  'TASK_STATE_FAILED',
  'TASK_STATE_CANCELED',
  'TASK_STATE_INPUT_REQUIRED',
  'TASK_STATE_REJECTED',
  'TASK_STATE_AUTH_REQUIRED',
]);
export type TaskState = z.infer<typeof TaskStateSchema>;

/** States after which a task takes no more messages or events. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set([
  'TASK_STATE_COMPLETED',
  'TASK_STATE_FAILED',
  'TASK_STATE_CANCELED',
  'TASK_STATE_REJECTED',
]);
/** States in which a task waits for the client (a follow-up message or out-of-band authorization). */
export const INTERRUPTED_TASK_STATES: ReadonlySet<TaskState> = new Set([
  'TASK_STATE_INPUT_REQUIRED',
  'TASK_STATE_AUTH_REQUIRED',
]);

/** True for completed, failed, canceled and rejected. */
export function isTerminalState(state: TaskState | undefined): boolean {
  return state !== undefined && TERMINAL_TASK_STATES.has(state);
}

/** A task's status; `timestamp` is ISO 8601 UTC. */
export const TaskStatusSchema = z.looseObject({
  state: TaskStateSchema,
  message: MessageSchema.optional(),
  timestamp: z.string().optional(),
});
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** An output of a task. */
export const ArtifactSchema = z.looseObject({
  artifactId: z.string().min(1).max(256),
  name: z.string().optional(),
  description: z.string().optional(),
  parts: z.array(PartSchema).min(1),
  metadata: MetadataSchema.optional(),
  extensions: z.array(z.string()).optional(),
});
export type Artifact = z.infer<typeof ArtifactSchema>;

/** An A2A v1.0 Task. */
export const TaskSchema = z.looseObject({
  id: z.string().min(1),
  contextId: z.string().optional(),
  status: TaskStatusSchema,
  artifacts: z.array(ArtifactSchema).optional(),
  history: z.array(MessageSchema).optional(),
  metadata: MetadataSchema.optional(),
});
export type Task = z.infer<typeof TaskSchema>;

export const TaskStatusUpdateEventSchema = z.looseObject({
  taskId: z.string().optional(),
  contextId: z.string().optional(),
  status: TaskStatusSchema,
  metadata: MetadataSchema.optional(),
});
export type TaskStatusUpdateEvent = z.infer<typeof TaskStatusUpdateEventSchema>;

export const TaskArtifactUpdateEventSchema = z.looseObject({
  taskId: z.string().optional(),
  contextId: z.string().optional(),
  artifact: ArtifactSchema,
  append: z.boolean().optional(),
  lastChunk: z.boolean().optional(),
  metadata: MetadataSchema.optional(),
});
export type TaskArtifactUpdateEvent = z.infer<typeof TaskArtifactUpdateEventSchema>;

/** One streamed item: exactly one of `task`, `message`, `statusUpdate`, `artifactUpdate`. */
export const StreamResponseSchema = z.union([
  z.object({ task: TaskSchema }).strict(),
  z.object({ message: MessageSchema }).strict(),
  z.object({ statusUpdate: TaskStatusUpdateEventSchema }).strict(),
  z.object({ artifactUpdate: TaskArtifactUpdateEventSchema }).strict(),
]);
export type StreamResponse = z.infer<typeof StreamResponseSchema>;

/** `SendMessage` result: the task, or a direct message. */
export type SendMessageResponse = { task: Task } | { message: Message };
type Message = z.infer<typeof MessageSchema>;

export const AuthenticationInfoSchema = z.looseObject({
  scheme: z.string().min(1).max(64),
  credentials: z.string().max(8192).optional(),
});

/** A webhook for a task's events. `id` is assigned by the node when absent. */
export const TaskPushNotificationConfigSchema = z.looseObject({
  tenant: z.string().optional(),
  id: IdSchema.optional(),
  taskId: z.string().optional(),
  url: z.url({ protocol: /^https?$/ }).max(2048),
  token: z.string().max(4096).optional(),
  authentication: AuthenticationInfoSchema.optional(),
});
export type TaskPushNotificationConfig = z.infer<typeof TaskPushNotificationConfigSchema>;

export const SendMessageConfigurationSchema = z.looseObject({
  acceptedOutputModes: z.array(z.string()).optional(),
  taskPushNotificationConfig: TaskPushNotificationConfigSchema.optional(),
  historyLength: z.number().int().min(0).optional(),
  returnImmediately: z.boolean().optional(),
});
export type SendMessageConfiguration = z.infer<typeof SendMessageConfigurationSchema>;

export const SendMessageRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  message: MessageSchema,
  configuration: SendMessageConfigurationSchema.optional(),
  metadata: MetadataSchema.optional(),
});
export type SendMessageRequest = z.infer<typeof SendMessageRequestSchema>;

export const GetTaskRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  id: z.string().min(1).max(256),
  historyLength: z.number().int().min(0).optional(),
});
export type GetTaskRequest = z.infer<typeof GetTaskRequestSchema>;

export const ListTasksRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  contextId: z.string().max(256).optional(),
  status: TaskStateSchema.optional(),
  pageSize: z.number().int().min(1).max(100).optional(),
  pageToken: z.string().max(1024).optional(),
  historyLength: z.number().int().min(0).optional(),
  statusTimestampAfter: z.iso.datetime({ offset: true }).optional(),
  includeArtifacts: z.boolean().optional(),
});
export type ListTasksRequest = z.infer<typeof ListTasksRequestSchema>;

export const ListTasksResponseSchema = z.object({
  tasks: z.array(TaskSchema),
  nextPageToken: z.string(),
  pageSize: z.number().int(),
  totalSize: z.number().int(),
});
export type ListTasksResponse = z.infer<typeof ListTasksResponseSchema>;

export const CancelTaskRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  id: z.string().min(1).max(256),
  metadata: MetadataSchema.optional(),
});

/** `SubscribeToTask`; `lastSequence` (the sequence extension) replays every event after it instead of a snapshot. */
export const SubscribeToTaskRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  id: z.string().min(1).max(256),
  lastSequence: z.number().int().min(0).optional(),
});
export type SubscribeToTaskRequest = z.infer<typeof SubscribeToTaskRequestSchema>;

export const TaskPushConfigRefSchema = z.looseObject({
  tenant: z.string().optional(),
  taskId: z.string().min(1).max(256),
  id: z.string().min(1).max(128),
});
export const ListTaskPushConfigsRequestSchema = z.looseObject({
  tenant: z.string().optional(),
  taskId: z.string().min(1).max(256),
  pageSize: z.number().int().min(0).max(100).optional(),
  pageToken: z.string().max(1024).optional(),
});
export const ListTaskPushConfigsResponseSchema = z.object({
  configs: z.array(TaskPushNotificationConfigSchema),
  nextPageToken: z.string(),
});
export type ListTaskPushConfigsResponse = z.infer<typeof ListTaskPushConfigsResponseSchema>;
export const CreateTaskPushConfigRequestSchema = TaskPushNotificationConfigSchema.extend({
  taskId: z.string().min(1).max(256),
});

export const GetExtendedAgentCardRequestSchema = z.looseObject({ tenant: z.string().optional() }).optional();

// ---------------------------------------------------------------- over a mesh session

/** Mesh-session params of A2A calls that address an agent: the A2A request plus the target `agentId`. */
const Target = { agentId: IdSchema };

/**
 * Notification `task/event`: one event of a stream, ordered by its per-task `sequence`; `final` marks
 * the last one. A stream that ends without a final event (its turn ended) gets `{final: true}` alone.
 */
export const TaskEventSchema = z.object({
  subscriptionId: z.string(),
  taskId: z.string(),
  sequence: z.number().int().min(0).optional(),
  event: StreamResponseSchema.optional(),
  final: z.boolean(),
});
export type TaskEvent = z.infer<typeof TaskEventSchema>;

/** Result of the streaming methods over a mesh session: events follow as `task/event` notifications. */
export const TaskStreamResultSchema = z.object({ subscriptionId: z.string() });

/** A2A methods an agent calls on its node to delegate to another agent (agent-to-node). */
export const A2AMeshMethods = {
  SendMessage: {
    params: SendMessageRequestSchema.extend(Target),
    result: z.union([z.object({ task: TaskSchema }), z.object({ message: MessageSchema })]),
  },
  SendStreamingMessage: { params: SendMessageRequestSchema.extend(Target), result: TaskStreamResultSchema },
  GetTask: { params: GetTaskRequestSchema, result: TaskSchema },
  ListTasks: { params: ListTasksRequestSchema.extend(Target), result: ListTasksResponseSchema },
  CancelTask: { params: CancelTaskRequestSchema, result: TaskSchema },
  SubscribeToTask: { params: SubscribeToTaskRequestSchema, result: TaskStreamResultSchema },
  CreateTaskPushNotificationConfig: {
    params: CreateTaskPushConfigRequestSchema,
    result: TaskPushNotificationConfigSchema,
  },
  GetTaskPushNotificationConfig: {
    params: TaskPushConfigRefSchema,
    result: TaskPushNotificationConfigSchema,
  },
  ListTaskPushNotificationConfigs: {
    params: ListTaskPushConfigsRequestSchema,
    result: ListTaskPushConfigsResponseSchema,
  },
  DeleteTaskPushNotificationConfig: { params: TaskPushConfigRefSchema, result: z.object({}) },
  GetExtendedAgentCard: {
    params: z.looseObject({ tenant: z.string().optional(), ...Target }),
    result: z.unknown(),
  },
} as const;

// ---------------------------------------------------------------- node <-> executing agent

/**
 * Node-to-agent request `task/execute`: run one turn of a task. The agent answers `{}` at once
 * (accepted), publishes the turn's events with `task/publish`, then ends the turn with `task/done`,
 * unless a publish answered `ended: true` (its event closed the task and ended the turn). An agent
 * that lists it in `mesh/hello` `notifications` gets it as a notification instead (no answer: a
 * turn it cannot take is ended with `task/done` and the reason as `error`).
 */
/** The node-to-agent requests an agent may take as notifications (`mesh/hello` `notifications`). */
export const AGENT_NOTIFIABLE_METHODS: readonly string[] = ['task/execute'];

export const TaskExecuteParamsSchema = z.object({
  taskId: z.string(),
  contextId: z.string(),
  /** The message that starts this turn (`taskId` and `contextId` set). */
  message: MessageSchema,
  /** The task as it stands, for a follow-up turn (absent on the first). */
  task: TaskSchema.optional(),
  /** Tasks named by `message.referenceTaskIds` that exist. */
  referenceTasks: z.array(TaskSchema).optional(),
  configuration: SendMessageConfigurationSchema.optional(),
  metadata: MetadataSchema.optional(),
  /** Who asked: `{agentId}` for a mesh agent, absent for an HTTP client. */
  from: z.object({ agentId: IdSchema }).optional(),
});
export type TaskExecuteParams = z.infer<typeof TaskExecuteParamsSchema>;

/** Node-to-agent request `task/cancel`: stop the task's running turn and publish a canceled status. */
export const TaskCancelParamsSchema = z.object({ taskId: z.string(), contextId: z.string() });
export type TaskCancelParams = z.infer<typeof TaskCancelParamsSchema>;

/**
 * Agent-to-node `task/publish`: one event of a task this agent executes. The result is its sequence,
 * and `ended: true` when the event closed the task (a direct message or a terminal state): the node
 * wrote the turn's end with it, and no `task/done` is needed.
 */
export const TaskPublishParamsSchema = z.object({
  taskId: z.string().min(1).max(256),
  event: StreamResponseSchema,
});
export type TaskPublishParams = z.infer<typeof TaskPublishParamsSchema>;
export const TaskPublishResultSchema = z.object({
  sequence: z.number().int(),
  ended: z.boolean().optional(),
});

/** Agent-to-node `task/done`: the turn's executor returned (or threw: `error`). */
export const TaskDoneParamsSchema = z.object({
  taskId: z.string().min(1).max(256),
  error: z.string().max(4096).optional(),
});
export type TaskDoneParams = z.infer<typeof TaskDoneParamsSchema>;

/** Agent-to-node `task/unsubscribe`: stops a stream opened by `SendStreamingMessage` or `SubscribeToTask`. */
export const TaskUnsubscribeParamsSchema = z.object({ subscriptionId: z.string().min(1).max(128) });

/** Agent-to-node task-protocol methods. */
export const TaskAgentMethods = {
  'task/publish': { params: TaskPublishParamsSchema, result: TaskPublishResultSchema },
  'task/done': { params: TaskDoneParamsSchema, result: z.object({}) },
  'task/unsubscribe': { params: TaskUnsubscribeParamsSchema, result: z.object({}) },
} as const;

/** Node-to-agent task-protocol requests. */
export const TaskNodeRequests = {
  'task/execute': { params: TaskExecuteParamsSchema, result: z.object({}) },
  'task/cancel': { params: TaskCancelParamsSchema, result: z.object({}) },
} as const;
