/**
 * Worker: the floor of scenario 2's topology, with no mesh code. A raw `ws` server whose clients
 * speak just enough of the mesh's JSON-RPC for the latency load (`mesh/hello`, `collaboration/start`,
 * `join`, `share`): a share is published to JetStream (file storage, one subject per collaboration)
 * and answered once stored; each relay follows every collaboration one of its clients joined with an
 * ordered consumer (as a node follows a collaboration's log) and sends each stored message to its
 * local members as an event frame built once. No validation, state fold, presence, snapshots or
 * offsets: what any relay in this topology (clients → server → JetStream → servers → clients) costs
 * on this machine.
 */
import { type ConsumerMessages, DeliverPolicy, type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { WebSocket, WebSocketServer } from 'ws';
import { serve } from '../lib/child.js';
import { loopDelayCommands } from '../lib/loopDelay.js';
import { rawWsServer } from '../lib/rawWsServer.js';
import type { JsRelayCommands } from './commands.js';

interface Rpc {
  id: number;
  method: string;
  params?: { collaborationId?: string; content?: unknown };
}

let nc: NatsConnection | undefined;
let wss: WebSocketServer | undefined;
const followed = new Map<string, { members: Set<WebSocket>; messages?: ConsumerMessages }>();
let nextCollab = 0;

serve<JsRelayCommands>(
  {
    async start(a) {
      if (wss) throw new Error('relay already started');
      nc = await connect({ servers: a.servers, name: `bench-js-relay-${process.pid}` });
      const js = jetstream(nc);
      const raw = rawWsServer();
      wss = raw.wss;
      wss.on('connection', (ws) => {
        ws.on('error', () => {});
        ws.on('message', (data: Buffer) => {
          const msg = JSON.parse(data.toString()) as Rpc;
          handle(js, a, ws, msg).then(
            (result) => ws.send(`{"jsonrpc":"2.0","id":${msg.id},"result":${JSON.stringify(result)}}`),
            (err: unknown) =>
              ws.send(
                JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32000, message: String(err) } }),
              ),
          );
        });
        ws.on('close', () => {
          for (const f of followed.values()) f.members.delete(ws);
        });
      });
      return { url: await raw.listen() };
    },
    ...loopDelayCommands(),
  },
  async () => {
    for (const f of followed.values()) f.messages?.stop();
    wss?.close();
    await nc?.close();
  },
);

async function handle(
  js: JetStreamClient,
  a: { stream: string; subjectPrefix: string; relayId: string },
  ws: WebSocket,
  msg: Rpc,
): Promise<unknown> {
  const id = msg.params?.collaborationId ?? '';
  switch (msg.method) {
    case 'mesh/hello':
      return {};
    case 'collaboration/start':
      return { collaborationId: `${a.relayId}-${nextCollab++}` };
    case 'collaboration/join': {
      let f = followed.get(id);
      if (!f) {
        f = { members: new Set() };
        followed.set(id, f);
        const consumer = await js.consumers.get(a.stream, {
          filter_subjects: `${a.subjectPrefix}.${id}`,
          deliver_policy: DeliverPolicy.New,
        });
        const members = f.members;
        const messages = await consumer.consume({
          max_messages: 256,
          expires: 120_000,
          idle_heartbeat: 1_000,
        });
        f.messages = messages;
        void (async () => {
          for await (const m of messages) {
            const frame = `{"jsonrpc":"2.0","method":"collaboration/event","params":{"collaborationId":"${id}","type":"shared","data":${m.string()}}}`;
            for (const ws of members) if (ws.readyState === ws.OPEN) ws.send(frame);
          }
        })();
      }
      f.members.add(ws);
      return {};
    }
    case 'collaboration/share': {
      const ack = await js.publish(
        `${a.subjectPrefix}.${id}`,
        JSON.stringify({ content: msg.params?.content }),
      );
      return { offset: ack.seq };
    }
    default:
      throw new Error(`unknown method ${msg.method}`);
  }
}
