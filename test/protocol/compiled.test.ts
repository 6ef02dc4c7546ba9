import {
  compiledOnUse,
  Methods,
  SendMessageRequestSchema,
  TaskExecuteParamsSchema,
} from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

/**
 * Per-message schemas run compiled (`compiledOnUse`): the same data out for valid input, the same
 * issues for invalid input, as the schema's own parse.
 */
const message = {
  messageId: 'm1',
  role: 'ROLE_USER',
  parts: [{ text: 'hi' }],
  metadata: { a: [1, { b: null }] },
};
const cases: [string, z.ZodType, unknown[]][] = [
  [
    'SendMessage',
    SendMessageRequestSchema,
    [
      { message },
      { message, configuration: { historyLength: 2, returnImmediately: true }, extra: 'kept?' },
      { message: { ...message, role: 'ROLE_NOBODY' } },
      { message: { ...message, parts: [] } },
      { message: { ...message, metadata: { bad: Number.NaN } } },
      {},
      null,
    ],
  ],
  [
    'task/execute',
    TaskExecuteParamsSchema,
    [
      { taskId: 't', contextId: 'c', message },
      { taskId: 't', contextId: 'c', message, from: { agentId: 'a-1' } },
      { taskId: 1, contextId: 'c', message },
      { taskId: 't', contextId: 'c', message, from: { agentId: '-bad' } },
    ],
  ],
  [
    'collaboration/share',
    Methods['collaboration/share'].params,
    [
      { collaborationId: 'c1', content: { text: 'x' } },
      { collaborationId: 'c1', content: Number.NaN },
      { collaborationId: '', content: 1 },
    ],
  ],
];

describe('compiledOnUse', () => {
  for (const [name, schema, inputs] of cases) {
    it(`${name}: the same results and issues as the schema`, () => {
      const compiled = compiledOnUse(schema);
      let failures = 0;
      for (const input of inputs) {
        const want = schema.safeParse(input);
        const got = compiled.safeParse(input);
        expect(got.success).toBe(want.success);
        if (want.success) expect(got.data).toEqual(want.data);
        else {
          failures++;
          expect(got.error?.issues).toEqual(want.error.issues);
        }
      }
      expect(failures).toBeGreaterThan(0);
    });
  }
});
