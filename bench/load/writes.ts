/**
 * Load for scenario 3: writers on one or more nodes share into one collaboration as fast as a window
 * of in-flight shares allows; readers (one per node) check the offsets they receive are contiguous.
 */

import { closedLoop } from '../lib/closedLoop.js';
import { mapLimit, RawAgent, sleep } from '../lib/rawAgent.js';
import type { WritesRunResult, WritesSetupArgs } from '../procs/commands.js';

interface Reader {
  agent: RawAgent;
  last: number;
  events: number;
  contiguous: boolean;
}

let writers: RawAgent[] = [];
let readers: Reader[] = [];
let collaborationId = '';

export async function writesSetup(a: WritesSetupArgs): Promise<{ collaborationId: string; setupMs: number }> {
  const t0 = performance.now();
  writers = await mapLimit(a.writerUrls, 8, (url, i) => RawAgent.connect(url, `${a.prefix}-w${i}`));
  const readerAgents = await mapLimit(a.readerUrls, 8, (url, i) =>
    RawAgent.connect(url, `${a.prefix}-r${i}`),
  );
  const started = await writers[0]!.call<{ collaborationId: string }>('collaboration/start', {
    topic: 'write rate',
    visibility: 'public',
  });
  collaborationId = started.collaborationId;
  for (const w of writers) await w.call('collaboration/join', { collaborationId });
  readers = [];
  for (const agent of readerAgents) {
    const r = await agent.call<{ offset: number }>('collaboration/join', { collaborationId });
    const reader: Reader = { agent, last: r.offset, events: 0, contiguous: true };
    agent.onEvent = (frame) => {
      const m = JSON.parse(frame.toString()) as { params: { offset: number } };
      if (m.params.offset !== reader.last + 1) reader.contiguous = false;
      reader.last = m.params.offset;
      reader.events++;
    };
    readers.push(reader);
  }
  await sleep(200);
  return { collaborationId, setupMs: performance.now() - t0 };
}

export async function writesRun(a: {
  warmupMs: number;
  durationMs: number;
  window: number;
}): Promise<WritesRunResult> {
  let lastOffset = 0;
  const content = { text: 'a short idea, about the size agents share' };
  const ops = writers.flatMap((w) =>
    Array.from({ length: a.window }, () => async () => {
      const r = await w.call<{ offset: number }>('collaboration/share', { collaborationId, content });
      lastOffset = Math.max(lastOffset, r.offset);
    }),
  );
  const loop = await closedLoop(ops, { warmupMs: a.warmupMs, durationMs: a.durationMs, drainMs: 10_000 });
  const end = Date.now() + 5_000;
  while (readers.some((r) => r.last < lastOffset) && Date.now() < end) await sleep(20);
  return {
    ...loop,
    contiguous: readers.every((r) => r.contiguous && r.last >= lastOffset),
    readerEvents: readers.map((r) => r.events),
    lastOffset,
  };
}

export function writesClose(): void {
  for (const w of writers) w.close();
  for (const r of readers) r.agent.close();
  writers = [];
  readers = [];
}
