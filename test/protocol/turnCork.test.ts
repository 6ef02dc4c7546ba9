import { TurnCork } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

const nextTurn = () => new Promise((r) => setImmediate(r));

function fakeWs(destroyed = false) {
  const calls: string[] = [];
  return {
    calls,
    ws: { _socket: { destroyed, cork: () => calls.push('cork'), uncork: () => calls.push('uncork') } },
  };
}

describe('TurnCork', () => {
  it('corks a socket once per event-loop turn and uncorks it at the turn’s end', async () => {
    const cork = new TurnCork();
    const { ws, calls } = fakeWs();
    cork.hold(ws);
    cork.hold(ws);
    cork.hold(ws);
    expect(calls).toEqual(['cork']);
    await nextTurn();
    expect(calls).toEqual(['cork', 'uncork']);
    cork.hold(ws);
    await nextTurn();
    expect(calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
  });

  it('does nothing without a Node socket (a browser WebSocket) or on a destroyed one', async () => {
    const cork = new TurnCork();
    expect(() => cork.hold({})).not.toThrow();
    const { ws, calls } = fakeWs(true);
    cork.hold(ws);
    await nextTurn();
    expect(calls).toEqual([]);
  });

  it('does not uncork a socket destroyed during the turn', async () => {
    const cork = new TurnCork();
    const { ws, calls } = fakeWs();
    cork.hold(ws);
    ws._socket.destroyed = true;
    await nextTurn();
    expect(calls).toEqual(['cork']);
  });
});
