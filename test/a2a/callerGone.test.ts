import { connect } from 'node:http2';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Bus, LogFollower } from '../../src/bus/bus.js';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { eventually } from '../helpers/node.js';
import { startAgent, startGatewayNode, userMessage } from './helpers.js';

/**
 * A caller that goes away before its answer (HTTP/1.1 request aborted, HTTP/2 stream reset) stops
 * what the node was doing for it: the blocking SendMessage's wait on the task's log and the SSE
 * stream's follower are closed at once, although the task keeps running. An answered request
 * leaves nothing open either.
 */

/** An in-process bus that counts the task-log followers currently open. */
function countingBus(): { bus: Bus; open: () => number } {
  const inner = new EmbeddedBus();
  let open = 0;
  const bus = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'follow') {
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      }
      return (name: string, from: number): LogFollower => {
        const follower = target.follow(name, from);
        if (!name.startsWith('a2atask.')) return follower;
        open++;
        let closed = false;
        const close = follower.close.bind(follower);
        follower.close = () => {
          if (!closed) open--;
          closed = true;
          close();
        };
        return follower;
      };
    },
  });
  onTestFinished(() => inner.close());
  return { bus, open: () => open };
}

const body = (method: string, text: string) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { message: userMessage(text) } });

describe('A2A gateway: a caller that goes away', () => {
  it('HTTP/1.1: an aborted blocking SendMessage and an aborted SSE stream close their followers', async () => {
    const { bus, open } = countingBus();
    const node = await startGatewayNode({ bus });
    await startAgent(node, 'worker');
    const url = `${node.url.replace(/^ws/, 'http').replace(/\/mesh$/, '')}/agents/worker/a2a`;
    for (const method of ['SendMessage', 'SendStreamingMessage']) {
      const abort = new AbortController();
      const pending = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
        body: body(method, 'slow'),
        signal: abort.signal,
      }).then(async (res) => {
        // The stream's headers come first; read until the abort.
        await res.text();
      });
      pending.catch(() => {});
      await eventually(() => expect(open()).toBe(1));
      abort.abort();
      await expect(pending).rejects.toThrow();
      await eventually(() => expect(open()).toBe(0));
    }
  });

  it('HTTP/2: a reset stream closes the wait; an answered SendMessage leaves nothing open', async () => {
    const { bus, open } = countingBus();
    const node = await startGatewayNode({ bus });
    await startAgent(node, 'worker');
    const session = connect(node.url.replace(/^ws/, 'http').replace(/\/mesh$/, ''));
    onTestFinished(() => session.close());
    const post = () =>
      session.request({
        ':method': 'POST',
        ':path': '/agents/worker/a2a',
        'content-type': 'application/json',
        'a2a-version': '1.0',
      });

    const slow = post();
    slow.on('error', () => {});
    slow.end(body('SendMessage', 'slow'));
    await eventually(() => expect(open()).toBe(1));
    slow.close();
    await eventually(() => expect(open()).toBe(0));

    const answered = post();
    const chunks: Buffer[] = [];
    answered.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => answered.on('end', resolve));
    answered.end(body('SendMessage', 'reply hi'));
    await ended;
    const reply = JSON.parse(Buffer.concat(chunks).toString()) as { result: { message: { parts: unknown } } };
    expect(reply.result.message.parts).toEqual([{ text: 'echo: reply hi' }]);
    await eventually(() => expect(open()).toBe(0));
  });
});
