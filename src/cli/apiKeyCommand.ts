import { IdSchema } from '@a2a-mesh/protocol';
import { generateApiKey, hashApiKey } from '../auth/apiKeys.js';

/** `a2a-mesh apikey --agent <id>`: prints a new key (give it to the agent) and its entry for the key file. */
export function runApiKey(agentId: string): number {
  if (!IdSchema.safeParse(agentId).success) {
    process.stderr.write('agent ids are 1-128 characters of A-Z a-z 0-9 _ - (not starting with _ or -)\n');
    return 2;
  }
  const key = generateApiKey();
  process.stdout.write(
    `key (give it to ${agentId}; it is not stored anywhere): ${key}\n` +
      `entry for the --api-keys file: ${JSON.stringify({ agentId, sha256: hashApiKey(key) })}\n`,
  );
  return 0;
}
