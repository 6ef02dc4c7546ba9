/** Load for scenario 1: groups of agents, a few writers per group, every frame counted at every member. */
import type WebSocket from 'ws';
import { mapLimit, openSocket, RawAgent, sleep } from '../lib/rawAgent.js';
import type { FanoutRunArgs, FanoutRunResult, FanoutSetupArgs } from '../procs/commands.js';

/** A member as the fan-out load sees it: counts frames, and can write (mesh share or relay frame). */
interface Member {
  received: number;
  receivedBytes: number;
  onEvent: ((frame: Buffer) => void) | undefined;
  close(): void;
}

/** A raw `ws` client of the relay baseline; a writer recognises its own echoes by their prefix. */
class RelayMember implements Member {
  received = 0;
  receivedBytes = 0;
  onEvent: ((frame: Buffer) => void) | undefined;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.received++;
      this.receivedBytes += data.length;
      this.onEvent?.(data);
    });
  }
  close(): void {
    this.ws.terminate();
  }
}

interface Group {
  collaborationId: string;
  members: Member[];
  writers: Member[];
  acked: number;
}

/** Agent sets by name (the mesh's and the baseline's are connected side by side and run in turns). */
const sets = new Map<string, { mode: 'mesh' | 'ws'; groups: Group[] }>();

function total(groups: readonly Group[], field: 'received' | 'receivedBytes'): number {
  let n = 0;
  for (const g of groups) for (const m of g.members) n += m[field];
  return n;
}

/** Waits until no frame has arrived for `quietMs` (at most `timeoutMs`). */
async function settle(groups: readonly Group[], quietMs: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < end) {
    const now = total(groups, 'received');
    if (now === last) return;
    last = now;
    await sleep(quietMs);
  }
}

export async function fanoutSetup(a: FanoutSetupArgs): Promise<{ agents: number; setupMs: number }> {
  const t0 = performance.now();
  if (sets.has(a.set)) throw new Error(`agent set ${a.set} already exists`);
  const deadline = Date.now() + 60_000;
  const specs = Array.from({ length: a.groups * a.groupSize }, (_, i) => ({
    g: Math.floor(i / a.groupSize),
    id: `${a.prefix}-g${Math.floor(i / a.groupSize)}-m${i % a.groupSize}`,
  }));
  const members: Member[] =
    a.mode === 'mesh'
      ? await mapLimit(specs, 50, (s) => RawAgent.connect(a.url, s.id), deadline)
      : await mapLimit(
          specs,
          50,
          async (s) => new RelayMember(await openSocket(`${a.url}?g=${s.g}`, [])),
          deadline,
        );
  const groups: Group[] = Array.from({ length: a.groups }, (_, g) => {
    const ms = members.slice(g * a.groupSize, (g + 1) * a.groupSize);
    return { collaborationId: '', members: ms, writers: ms.slice(0, a.writersPerGroup), acked: 0 };
  });
  sets.set(a.set, { mode: a.mode, groups });
  if (a.mode === 'mesh') {
    await mapLimit(
      groups,
      20,
      async (g, i) => {
        const owner = g.members[0] as RawAgent;
        const r = await owner.call<{ collaborationId: string }>('collaboration/start', {
          topic: `fan-out ${i}`,
          visibility: 'public',
        });
        g.collaborationId = r.collaborationId;
      },
      deadline,
    );
    const joins = groups.flatMap((g) => g.members.map((m) => ({ g, m: m as RawAgent })));
    await mapLimit(
      joins,
      50,
      (j) => j.m.call('collaboration/join', { collaborationId: j.g.collaborationId }),
      deadline,
    );
    // Joined events keep arriving for a while; let them pass before measuring.
    await settle(groups, 200, 10_000);
  }
  return { agents: members.length, setupMs: performance.now() - t0 };
}

export async function fanoutRun(a: FanoutRunArgs): Promise<FanoutRunResult> {
  const set = sets.get(a.set);
  if (!set) throw new Error(`no agent set ${a.set}`);
  const { mode, groups } = set;
  let running = true;
  let errors = 0;
  let outOfOrder = 0;
  const startReceived = total(groups, 'received');
  for (const g of groups) g.acked = 0;
  const chains: Promise<void>[] = [];
  for (const g of groups) {
    for (const [w, writer] of g.writers.entries()) {
      if (mode === 'mesh') {
        const agent = writer as RawAgent;
        // A writer checks that its collaboration's offsets arrive in order (and pays the parse, like the baseline's writers).
        let lastOffset = -1;
        agent.onEvent = (frame) => {
          const m = JSON.parse(frame.toString()) as { params: { offset: number } };
          if (lastOffset >= 0 && m.params.offset !== lastOffset + 1) outOfOrder++;
          lastOffset = m.params.offset;
        };
        const content = { text: 'x'.repeat(a.payloadBytes) };
        for (let c = 0; c < a.window; c++) {
          chains.push(
            (async () => {
              while (running) {
                try {
                  await agent.call('collaboration/share', { collaborationId: g.collaborationId, content });
                  g.acked++;
                } catch {
                  errors++;
                  await sleep(10);
                }
              }
            })(),
          );
        }
      } else {
        const member = writer as RelayMember;
        const tag = `{"w":"${g.collaborationId || groups.indexOf(g)}-${w}"`;
        const tagBytes = Buffer.from(tag);
        const echoes: (() => void)[] = [];
        const lastSeq = new Map<string, number>();
        member.onEvent = (frame) => {
          const m = JSON.parse(frame.toString()) as { w: string; s: number };
          const prev = lastSeq.get(m.w);
          if (prev !== undefined && m.s !== prev + 1) outOfOrder++;
          lastSeq.set(m.w, m.s);
          if (frame.subarray(0, tagBytes.length).equals(tagBytes)) echoes.shift()?.();
        };
        let seq = 0;
        const head = `${tag},"s":`;
        const padFor = (s: number) => Math.max(0, a.payloadBytes - head.length - String(s).length - 8);
        for (let c = 0; c < a.window; c++) {
          chains.push(
            (async () => {
              while (running && member.ws.readyState === member.ws.OPEN) {
                const s = seq++;
                const echoed = new Promise<void>((r) => echoes.push(r));
                member.ws.send(`${head}${s},"p":"${'x'.repeat(padFor(s))}"}`);
                await echoed;
                g.acked++;
              }
            })(),
          );
        }
      }
    }
  }
  await sleep(a.warmupMs);
  const c0 = total(groups, 'received');
  const b0 = total(groups, 'receivedBytes');
  const t0 = performance.now();
  await sleep(a.durationMs);
  const c1 = total(groups, 'received');
  const b1 = total(groups, 'receivedBytes');
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.race([Promise.all(chains), sleep(10_000)]);
  await settle(groups, 200, 5_000);
  let expected = 0;
  let acked = 0;
  for (const g of groups) {
    expected += g.acked * g.members.length;
    acked += g.acked;
  }
  for (const g of groups) for (const m of g.writers) m.onEvent = undefined;
  const delivered = c1 - c0;
  return {
    delivered,
    seconds,
    rate: delivered / seconds,
    acked,
    frameBytes: delivered > 0 ? (b1 - b0) / delivered : 0,
    check: { received: total(groups, 'received') - startReceived, expected, outOfOrder, errors },
  };
}

export function fanoutClose(): void {
  for (const { groups } of sets.values()) for (const g of groups) for (const m of g.members) m.close();
  sets.clear();
}
