import { RpcError, type TaskEvent } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { CallContext, Dispatcher } from '../rpc/dispatcher.js';
import type { Session } from '../sessions/session.js';
import { newId } from '../util/ids.js';
import { goneOnAbort, type Requester, type TaskService, type TaskStream } from './taskService.js';

/** Open task streams per session, at most this many (further ones get quota_exceeded). */
const MAX_STREAMS_PER_SESSION = 100;

interface SessionStream {
  session: Session;
  stream: TaskStream;
}

/**
 * The A2A methods over a mesh session (agents delegating to each other), and the agent side of the
 * task protocol (`task/publish`, `task/done`). Streams become `task/event` notifications on the session.
 */
export class A2ASessionMethods {
  readonly #streams = new Map<string, SessionStream>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    readonly tasks: TaskService,
    readonly extendedCard: (agentId: string) => Promise<unknown>,
    readonly log: Logger,
  ) {
    // A stream idle on a quiet task would outlive its closed session without this.
    this.#sweeper = setInterval(() => this.#sweep(), 5000);
    this.#sweeper.unref();
  }

  register(d: Dispatcher): void {
    const t = this.tasks;
    const requester = (ctx: CallContext) => ({
      id: `agent:${ctx.agentId}`,
      agentId: ctx.agentId,
      claims: ctx.principal.claims,
    });
    // With authentication on, an agent sees only the tasks it requested or executes.
    const viewer = (ctx: CallContext): { viewer?: Requester } | undefined =>
      ctx.principal.method === 'none' ? undefined : { viewer: requester(ctx) };
    d.register('SendMessage', (p, ctx) =>
      t.sendMessage(p.agentId, p, requester(ctx), '1.0', goneOnAbort(ctx.signal)),
    );
    d.register('SendStreamingMessage', async (p, ctx) =>
      this.#open(ctx, await t.streamMessage(p.agentId, p, requester(ctx), '1.0')),
    );
    d.register('GetTask', (p, ctx) => t.getTask(p.id, p.historyLength, viewer(ctx)));
    d.register('ListTasks', (p, ctx) => t.listTasks(p.agentId, p, viewer(ctx)?.viewer));
    d.register('CancelTask', (p, ctx) => t.cancelTask(p.id, viewer(ctx)));
    d.register('SubscribeToTask', async (p, ctx) =>
      this.#open(ctx, await t.subscribe(p.id, p.lastSequence, viewer(ctx))),
    );
    d.register('CreateTaskPushNotificationConfig', (p, ctx) =>
      t.createPushConfig(p.taskId, p, '1.0', viewer(ctx)),
    );
    d.register('GetTaskPushNotificationConfig', (p, ctx) => t.getPushConfig(p.taskId, p.id, viewer(ctx)));
    d.register('ListTaskPushNotificationConfigs', async (p, ctx) => ({
      configs: await t.listPushConfigs(p.taskId, viewer(ctx)),
      nextPageToken: '',
    }));
    d.register('DeleteTaskPushNotificationConfig', async (p, ctx) => {
      await t.deletePushConfig(p.taskId, p.id, viewer(ctx));
      return {};
    });
    d.register('GetExtendedAgentCard', (p) => this.extendedCard(p.agentId));
    d.register('task/publish', async (p, ctx) => {
      const { sequence, ended } = await t.publish(ctx.agentId, p.taskId, p.event);
      return ended ? { sequence, ended } : { sequence };
    });
    d.register('task/done', async (p, ctx) => {
      await t.done(ctx.agentId, p.taskId, p.error);
      return {};
    });
    d.register('task/unsubscribe', (p, ctx) => {
      const s = this.#streams.get(p.subscriptionId);
      if (!s || s.session !== ctx.session) {
        throw RpcError.of('SubscriptionNotFound', `no task stream ${p.subscriptionId} on this session`, {
          subscriptionId: p.subscriptionId,
        });
      }
      s.stream.close();
      return {};
    });
  }

  /** Registers a stream and starts pumping it once the response (with its id) has gone out. */
  #open(ctx: CallContext, stream: TaskStream): { subscriptionId: string } {
    let mine = 0;
    for (const s of this.#streams.values()) if (s.session === ctx.session) mine++;
    if (mine >= MAX_STREAMS_PER_SESSION) {
      stream.close();
      throw RpcError.of('QuotaExceeded', 'too many open task streams on this session', {
        limit: MAX_STREAMS_PER_SESSION,
      });
    }
    const subscriptionId = newId();
    this.#streams.set(subscriptionId, { session: ctx.session, stream });
    ctx.afterResponse(() => void this.#pump(subscriptionId, ctx.session, stream));
    return { subscriptionId };
  }

  async #pump(subscriptionId: string, session: Session, stream: TaskStream): Promise<void> {
    let taskId = '';
    let ended = false;
    try {
      for await (const d of stream) {
        if (session.closed) return;
        const e = d.event;
        taskId ||=
          'task' in e
            ? e.task.id
            : 'message' in e
              ? (e.message.taskId ?? '')
              : 'statusUpdate' in e
                ? (e.statusUpdate.taskId ?? '')
                : (e.artifactUpdate.taskId ?? '');
        const params: TaskEvent = { subscriptionId, taskId, sequence: d.sequence, event: e, final: d.final };
        session.notify('task/event', params);
        ended = d.final;
      }
    } catch (error) {
      this.log.debug({ subscriptionId, err: error }, 'task stream failed');
    } finally {
      this.#streams.delete(subscriptionId);
      // The stream ended without a final event (turn end, close): say so, without an event.
      if (!ended && !session.closed) session.notify('task/event', { subscriptionId, taskId, final: true });
    }
  }

  #sweep(): void {
    for (const s of this.#streams.values()) if (s.session.closed) s.stream.close();
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const s of this.#streams.values()) s.stream.close();
  }
}
