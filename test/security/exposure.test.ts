import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/auth/apiKeys.js';
import {
  authConfig,
  type NodeCommandOptions,
  redactUrl,
  securityOptions,
} from '../../src/cli/nodeCommand.js';
import { createMeshNode } from '../../src/index.js';
import { eventually, startNode, testLogger } from '../helpers/node.js';
import { startNodeProcess } from '../helpers/nodeProcess.js';
import { captureLog, wire } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/a2a-mesh.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('a safe default on a public interface', () => {
  it('createMeshNode refuses auth none on a non-loopback host unless told; then it warns', async () => {
    await expect(createMeshNode({ host: '0.0.0.0', port: 0, logger: testLogger })).rejects.toMatchObject({
      code: 'bad_config',
    });
    await expect(createMeshNode({ host: '0.0.0.0', port: 0, logger: testLogger })).rejects.toBeInstanceOf(
      MeshError,
    );
    const log = captureLog('info');
    const node = await startNode({ host: '0.0.0.0', insecureNoAuth: true, logger: log.logger });
    expect(log.lines.some((l) => l.includes('INSECURE') && l.includes('"level":40'))).toBe(true);
    await node.close();
    // With auth the same host is fine; in-memory only nodes never listen.
    const secured = await startNode({
      host: '0.0.0.0',
      auth: { mode: 'apikey', keys: [{ agentId: 'a', sha256: hashApiKey('k') }] },
    });
    expect(secured.port).toBeGreaterThan(0);
    await startNode({ host: '0.0.0.0', listen: false });
  });

  it('the CLI exits on --host 0.0.0.0 without auth, runs with --insecure-no-auth, and with --auth apikey', async () => {
    const refused = await run(['node', '--host', '0.0.0.0', '--port', '0', '--log-level', 'info']);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('without authentication');

    const insecure = await startNodeProcess('insecure', ['--host', '0.0.0.0', '--insecure-no-auth']);
    expect(insecure.output()).toContain('INSECURE');
    await insecure.kill();

    const dir = await mkdtemp(join(tmpdir(), 'mesh-cli-'));
    const keys = join(dir, 'keys.json');
    const made = await run(['apikey', '--agent', 'cli-agent']);
    expect(made.code).toBe(0);
    const key = /key \(.*\): (mk_\S+)/.exec(made.out)![1]!;
    const entry = JSON.parse(/entry for the --api-keys file: (\{.*\})/.exec(made.out)![1]!) as object;
    await writeFile(keys, JSON.stringify({ keys: [entry] }));
    const audit = join(dir, 'audit.log');
    const secured = await startNodeProcess('secured', [
      '--host',
      '0.0.0.0',
      '--auth',
      'apikey',
      '--api-keys',
      keys,
      '--audit-log',
      audit,
    ]);
    const c = await wire(secured.url, { authorization: `Bearer ${key}` });
    expect((await c.call('mesh/hello', {})).result?.agentId).toBe('cli-agent');
    const bad = await wire(secured.url, { authorization: 'Bearer mk_wrong' });
    expect((await bad.closed).code).toBe(4001);
    c.close();
    await eventually(async () => {
      const text = await readFile(audit, 'utf8');
      expect(text).toContain('"audit":"authenticated"');
      expect(text).toContain('"audit":"auth_failed"');
    });
    await secured.kill();
    const everything = secured.output() + (await readFile(audit, 'utf8')) + made.out.replace(key, '');
    expect(everything).not.toContain(key);
    expect(everything).not.toContain('mk_wrong');
  });

  it('flags map to node options; NATS URLs are logged without credentials', () => {
    const base = {
      auth: 'jwt',
      jwksUrl: 'https://idp.example/jwks',
      jwtIssuer: 'a, b',
      jwtAudience: 'mesh',
      jwtClockSkewMs: 5000,
      jwtIdentityClaim: 'agent',
      rateLimits: 'auto',
      agentRequestsPerSec: 50,
      maxConnectionsPerAgent: 4,
      maxMembers: 10,
      maxSubscriptions: 7,
      maxStateBytes: 1000,
      topicsDefault: 'deny',
      insecureNoAuth: false,
      helloTimeoutMs: 5000,
    } as unknown as NodeCommandOptions;
    expect(authConfig(base)).toEqual({
      mode: 'jwt',
      jwksUrl: 'https://idp.example/jwks',
      issuer: ['a', 'b'],
      audience: ['mesh'],
      clockSkewMs: 5000,
      identityClaim: 'agent',
    });
    expect(securityOptions(base)).toMatchObject({
      rateLimits: { agentRequestsPerSec: 50 },
      quotas: { maxConnectionsPerAgent: 4, maxMembersPerCollaboration: 10 },
      maxSubscriptions: 7,
      policy: { topicsDefault: 'deny' },
    });
    expect(securityOptions({ ...base, rateLimits: 'off' }).rateLimits).toBe(false);
    expect(redactUrl('nats://user:s3cret@nats-1:4222')).not.toContain('s3cret');
    expect(redactUrl('nats://tok3n@nats-1:4222')).not.toContain('tok3n');
    expect(redactUrl('nats://nats-1:4222')).toBe('nats://nats-1:4222');
  });
});

describe('the root logger', () => {
  it('redacts credential fields whatever logs them', async () => {
    const { createLogger } = await import('../../src/log.js');
    const { Writable } = await import('node:stream');
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', pretty: false });
    // Re-create with a capturing destination and the same options.
    const pino = (await import('pino')).default;
    const { REDACT_PATHS } = await import('../../src/log.js');
    const sink = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const captured = pino({ redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } }, sink);
    captured.info(
      { params: { token: 'T0KEN' }, headers: { authorization: 'Bearer S3CRET' }, nats: { pass: 'P4SS' } },
      'x',
    );
    expect(lines.join('')).not.toMatch(/T0KEN|S3CRET|P4SS/);
    expect(logger.level).toBe('info');
  });
});
