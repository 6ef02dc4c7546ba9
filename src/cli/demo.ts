import { MeshClient } from '@a2a-mesh/client';
import type { CollabEvent, Json, RpcError } from '@a2a-mesh/protocol';
import type { Bus } from '../bus/bus.js';
import { connectNatsBus } from '../bus/nats.js';
import { createLogger } from '../log.js';
import { createMeshNode, type MeshNode } from '../node.js';
import { seededRandom } from '../util/random.js';

/** Options of `a2a-mesh demo`. */
export interface DemoOptions {
  /** Idea agents (1-8). */
  agents: number;
  /** Seed for the agents' choices. */
  seed: number;
  /** Where the transcript goes (default stdout). */
  write?: (line: string) => void;
  /** Use running nodes (WebSocket URLs) instead of starting any; agents are spread across them. */
  urls?: string[];
  /** Start `nodes` in-process nodes on this NATS (comma-separated URLs) instead of one embedded node. */
  nats?: string;
  /** How many nodes to start with `nats` (default 2). */
  nodes?: number;
}

interface DemoMesh {
  urls: string[];
  describe: string;
  close(): Promise<void>;
}

async function startMesh(options: DemoOptions): Promise<DemoMesh> {
  if (options.urls && options.urls.length > 0) {
    return {
      urls: options.urls,
      describe: `running nodes ${options.urls.join(', ')}`,
      close: async () => {},
    };
  }
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', pretty: false });
  if (!options.nats) {
    const node = await createMeshNode({ port: 0, logger });
    return {
      urls: [node.url],
      describe: `embedded node ${node.nodeId} at ${node.url}`,
      close: () => node.close(),
    };
  }
  const nodes: MeshNode[] = [];
  const buses: Bus[] = [];
  const count = Math.max(1, options.nodes ?? 2);
  for (let i = 0; i < count; i++) {
    const nodeId = `demo-${i + 1}-${process.pid}`;
    const bus = await connectNatsBus({ servers: options.nats, nodeId });
    buses.push(bus);
    nodes.push(await createMeshNode({ port: 0, logger, bus, nodeId }));
  }
  return {
    urls: nodes.map((n) => n.url),
    describe: `${count} nodes on NATS ${options.nats}: ${nodes.map((n) => `${n.nodeId} ${n.url}`).join(', ')}`,
    close: async () => {
      for (const n of nodes) await n.close();
      for (const b of buses) await b.close();
    },
  };
}

interface Idea {
  id: string;
  text: string;
  by: string;
}

interface Board {
  ideas: Idea[];
  votes: Record<string, number>;
}

const TOPIC = 'How can a remote team cut its meeting time in half?';
const NAMES = ['ada', 'grace', 'linus', 'margaret', 'alan', 'barbara', 'edsger', 'radia'];
const IDEAS = [
  'Replace daily status meetings with written async updates',
  'Default every meeting to 25 minutes instead of 30',
  'No-meeting Wednesdays, protected in everyone\u2019s calendar',
  'Every meeting needs an agenda doc, or it is cancelled',
  'Record decisions in one shared log so nobody meets to re-decide',
  'Rotate a facilitator who ends the meeting when the agenda is done',
  'Replace recurring syncs with a weekly demo video thread',
  'Cap attendees at the people who must decide; others read the notes',
  'Move brainstorming to a shared board agents fill before the call',
  'Cancel any recurring meeting nobody defends at the quarterly review',
];

/** The board as this demo shapes it. */
function boardOf(state: Json): Board {
  return state as unknown as Board;
}

function describe(
  ev: CollabEvent | { type: 'resync'; offset: number },
  ideas: Map<string, Idea>,
): string | undefined {
  if (ev.type === 'resync') return `(resynchronised at offset ${ev.offset})`;
  const d = ev.data as Record<string, Json>;
  // `ev.data` follows the event type's shape (docs/protocol.md).
  switch (ev.type) {
    case 'started':
      return `${ev.from} started "${String(d.topic)}"`;
    case 'joined':
      return `${String(d.agentId)} joined as ${String(d.role)}`;
    case 'left':
      return `${String(d.agentId)} left (${String(d.reason)})`;
    case 'presence':
      return `${String(d.agentId)} is ${String(d.status)}`;
    case 'shared':
      return `${ev.from}: ${typeof d.content === 'string' ? d.content : JSON.stringify(d.content)}`;
    case 'state': {
      const patch = d.patch as { op: string; path: string; value?: Json }[];
      return patch
        .map((op) => {
          if (op.path === '/ideas/-') {
            const idea = op.value as unknown as Idea;
            ideas.set(idea.id, idea);
            return `${ev.from} pinned idea ${idea.id} to the board`;
          }
          if (op.path.startsWith('/votes/')) {
            const id = op.path.slice('/votes/'.length);
            return `${ev.from} voted for ${id} (now ${String(op.value)})`;
          }
          return `${ev.from} ${op.op} ${op.path}`;
        })
        .join('; ');
    }
    case 'ended':
      return `${ev.from} ended the session`;
    default:
      return undefined;
  }
}

/** Runs the scripted brainstorm on an embedded node; resolves with the process exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const count = Math.min(Math.max(options.agents, 1), NAMES.length);
  const random = seededRandom(options.seed);
  const mesh = await startMesh(options);
  const clients: MeshClient[] = [];
  const connect = async (agentId: string, card?: ConstructorParameters<typeof MeshClient>[0]['card']) => {
    // Agents are spread across the nodes: each starts on the next node and fails over to the others.
    const k = clients.length % mesh.urls.length;
    const urls = [...mesh.urls.slice(k), ...mesh.urls.slice(0, k)];
    const c = new MeshClient({ urls, agentId, ...(card ? { card } : {}) });
    clients.push(c);
    await c.connect();
    return c;
  };

  try {
    out(`a2a-mesh demo: ${mesh.describe}`);
    out(`topic: ${TOPIC}\n`);

    const critic = await connect('critic', {
      name: 'Critic',
      description: 'Finds the weak spot in a proposal',
      skills: [{ id: 'critique', name: 'Critique', tags: ['review'] }],
    });
    critic.onConversation(async (turn) => {
      const text = turn.message.parts.map((p) => p.text ?? '').join(' ');
      if (/agree|fair|ok/i.test(text))
        return 'Then pilot it for two weeks and measure hours saved per person.';
      return `Risk: "${text.slice(0, 60)}" only works if people actually read the written updates. Who checks?`;
    });

    const facilitator = await connect('facilitator', {
      name: 'Facilitator',
      skills: [{ id: 'facilitate', name: 'Facilitate', tags: ['brainstorm'] }],
    });
    const { collaborationId } = await facilitator.startCollaboration({
      topic: TOPIC,
      state: { ideas: [], votes: {} },
      metadata: { format: 'brainstorm' },
    });
    const board = await facilitator.joinCollaboration(collaborationId);
    await board.setPresence('facilitating');
    const ideas = new Map<string, Idea>();
    const transcript = (async () => {
      for await (const ev of board.events()) {
        const line = describe(ev, ideas);
        if (line) out(`  [${String(ev.offset).padStart(3)}] ${line}`);
        if (ev.type === 'ended') return;
      }
    })();

    // Idea agents join, share ideas and pin them to the board, concurrently.
    const names = NAMES.slice(0, count);
    const pool = [...IDEAS].sort(() => random() - 0.5);
    const agents = await Promise.all(
      names.map((n) =>
        connect(n, { name: n, skills: [{ id: 'ideas', name: 'Ideas', tags: ['brainstorm'] }] }),
      ),
    );
    if (mesh.urls.length > 1) {
      const where = [critic, facilitator, ...agents].map((c) => `${c.agentId}@${c.nodeId}`).join(' ');
      out(`  agents: ${where}\n`);
    }
    const handles = await Promise.all(agents.map((a) => a.joinCollaboration(collaborationId)));
    await board.share(`Welcome! Share ideas, pin them to the board, then vote for the two you like best.`, {
      kind: 'note',
    });
    await Promise.all(
      handles.map(async (h, i) => {
        for (let k = 0; k < 2; k++) {
          const text = pool[(i * 2 + k) % pool.length]!;
          const id = `${names[i]}-${k + 1}`;
          await h.share(text, { kind: 'idea', idempotencyKey: id });
          await h.update([{ op: 'add', path: '/ideas/-', value: { id, text, by: names[i]! } }]);
        }
      }),
    );

    // Votes are compare-and-set updates: a conflict means someone voted meanwhile, so re-read and retry.
    let conflicts = 0;
    await Promise.all(
      handles.map(async (h, i) => {
        await h.waitForOffset(board.offset, { timeoutMs: 5000 });
        const all = boardOf(h.state).ideas.filter((x) => x.by !== names[i]);
        const picks = [...all].sort(() => random() - 0.5).slice(0, 2);
        for (const pick of picks) {
          for (;;) {
            const votes = boardOf(h.state).votes;
            const current = votes[pick.id] ?? 0;
            try {
              await h.update([{ op: 'add', path: `/votes/${pick.id}`, value: current + 1 }], {
                ifOffset: h.offset,
              });
              break;
            } catch (error) {
              if ((error as RpcError).reason !== 'state_conflict') throw error;
              conflicts++;
              await h.waitForOffset(((error as RpcError).data.currentOffset as number) ?? h.offset + 1, {
                timeoutMs: 5000,
              });
            }
          }
        }
      }),
    );

    // A conversation with whoever offers the "critique" skill.
    const votesNow = boardOf(board.state).votes;
    const top = [...boardOf(board.state).ideas].sort(
      (a, b) => (votesNow[b.id] ?? 0) - (votesNow[a.id] ?? 0),
    )[0]!;
    out('');
    out(`  ${names[0]} asks an agent with skill "critique" about the leading idea:`);
    const asker = agents[0]!;
    const convo = await asker.startConversation({ to: { skill: 'critique' }, message: top.text });
    out(`    ${names[0]} -> ${convo.agentId}: ${top.text}`);
    out(`    ${convo.agentId}: ${convo.reply.parts.map((p) => p.text).join(' ')}`);
    const next = await asker.continueConversation(
      convo.conversationId,
      'Fair point: the facilitator will check the updates are read.',
    );
    out(`    ${names[0]} -> ${convo.agentId}: Fair point: the facilitator will check the updates are read.`);
    out(`    ${convo.agentId}: ${next.reply.parts.map((p) => p.text).join(' ')}`);
    await asker.endConversation(convo.conversationId);
    await handles[0]!.share(`Critic says: ${next.reply.parts.map((p) => p.text).join(' ')}`, {
      kind: 'note',
    });
    out('');

    // A late joiner catches up from snapshot + log and must see exactly the facilitator's board.
    const late = await connect('hopper');
    await handles[0]!.waitForOffset(board.offset, { timeoutMs: 5000 });
    const lateHandle = await late.joinCollaboration(collaborationId);
    await board.waitForOffset(lateHandle.offset, { timeoutMs: 5000 });
    const same = JSON.stringify(lateHandle.state) === JSON.stringify(board.state);
    await board.end();
    await transcript;

    const final = boardOf(board.state);
    out('');
    out(
      `late joiner hopper caught up at offset ${lateHandle.offset}: board ${same ? 'identical to the facilitator\u2019s' : 'DIFFERENT (bug)'}`,
    );
    out(`compare-and-set conflicts resolved by retrying: ${conflicts}`);
    out('');
    out('final board:');
    const ranked = [...final.ideas].sort(
      (a, b) => (final.votes[b.id] ?? 0) - (final.votes[a.id] ?? 0) || a.id.localeCompare(b.id),
    );
    for (const idea of ranked) {
      const v = final.votes[idea.id] ?? 0;
      out(`  ${String(v).padStart(2)} vote${v === 1 ? ' ' : 's'}  ${idea.text}  (${idea.by})`);
    }
    return same ? 0 : 1;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await mesh.close();
  }
}
