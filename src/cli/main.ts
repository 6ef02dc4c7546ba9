import { Command, InvalidArgumentError, Option } from 'commander';

// Each command's module is imported when that command runs, so `node` does not load the demo's
// client, nor `apikey` the node.

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('a port is an integer from 0 to 65535');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected an integer >= 0');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command()
  .name('a2a-mesh')
  .description('Real-time collaboration mesh for AI agents')
  .showHelpAfterError();

program
  .command('node')
  .description('run a mesh node (embedded bus by default; --nats to join a multi-node mesh)')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'TCP port (0 picks a free one)', port, 7420)
  .option('--node-id <id>', 'node id (default: random)')
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default(process.env.LOG_LEVEL ?? 'info'),
  )
  .option('--max-message-bytes <n>', 'largest inbound frame', positive, 1024 * 1024)
  .option('--max-queue-bytes <n>', 'largest send backlog per connection', positive, 8 * 1024 * 1024)
  .option('--heartbeat-ms <n>', 'WebSocket ping interval', positive, 25_000)
  .option(
    '--presence-ttl-ms <n>',
    "presence entry TTL; a crashed node's agents go offline within ~1.5x",
    positive,
    15_000,
  )
  .option(
    '--nats <urls>',
    'join a multi-node mesh over NATS (comma-separated server URLs)',
    process.env.A2A_MESH_NATS,
  )
  .option('--nats-prefix <prefix>', 'subject, stream and bucket prefix', 'mesh')
  .option('--nats-token <token>', 'NATS token (or env A2A_MESH_NATS_TOKEN)', process.env.A2A_MESH_NATS_TOKEN)
  .option('--nats-user <user>', 'NATS user')
  .option(
    '--nats-pass <password>',
    'NATS password (or env A2A_MESH_NATS_PASS)',
    process.env.A2A_MESH_NATS_PASS,
  )
  .option('--nats-creds <file>', 'NATS .creds file (JWT + nkey seed)')
  .option('--tls-cert <file>', 'serve TLS (h2 + http/1.1 via ALPN, wss) with this certificate chain (PEM)')
  .option('--tls-key <file>', 'private key for --tls-cert (PEM)')
  .option('--tls-ca <file>', 'require client certificates signed by this CA (mutual TLS)')
  .option('--public-url <url>', "base URL put in A2A agent cards (default: from each request's Host)")
  .option(
    '--push-allow-hosts <hosts>',
    'webhook hosts allowed although private or loopback (comma-separated)',
    (v: string) =>
      v
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean),
  )
  .option('--nats-tls-ca <file>', 'CA file to trust for NATS TLS')
  .option('--nats-tls-cert <file>', 'client certificate for NATS TLS')
  .option('--nats-tls-key <file>', 'client key for NATS TLS')
  .option(
    '--nats-replicas <n>',
    'replicas of the log stream and KV buckets (3 on a 3-server cluster)',
    positive,
    1,
  )
  .addOption(
    new Option('--auth <mode>', 'how agents authenticate (none: agents name themselves, loopback only)')
      .choices(['none', 'apikey', 'jwt'])
      .default('none'),
  )
  .option('--insecure-no-auth', 'allow --auth none on a non-loopback --host (logs a warning)', false)
  .option('--api-keys <file>', 'JSON file of API keys stored as SHA-256 (see `a2a-mesh apikey`)')
  .option('--jwt-secret-file <file>', 'HS256 secret (at least 32 bytes)')
  .option('--jwt-public-key <file>', 'RS256/ES256 public key: PEM (SPKI), JWK or JWK Set')
  .option('--jwks-url <url>', 'JWK Set URL (keys cached; an unknown kid triggers a re-fetch)')
  .option('--jwt-issuer <iss>', 'required iss (comma-separated: any of)')
  .option('--jwt-audience <aud>', 'required aud (comma-separated: any of)')
  .option('--jwt-algorithms <list>', 'accepted algorithms among HS256,RS256,ES256 (default: by key source)')
  .option('--jwt-clock-skew-ms <n>', 'tolerance on exp/nbf', nonNegative, 30_000)
  .option('--jwt-identity-claim <claim>', 'claim holding the agent id', 'sub')
  .addOption(
    new Option('--topics-default <rule>', 'topics allowed when a credential has no topics claim')
      .choices(['allow', 'deny'])
      .default('allow'),
  )
  .option('--audit-log <file>', 'append audit records (JSON lines) to this file (default: the node log)')
  .addOption(
    new Option('--rate-limits <when>', 'token-bucket rate limits (auto: on when --auth is not none)')
      .choices(['auto', 'on', 'off'])
      .default('auto'),
  )
  .option('--agent-requests-per-sec <n>', 'requests per second per agent (burst 2x)', positive)
  .option('--agent-bytes-per-sec <n>', 'inbound bytes per second per agent (burst 2x)', positive)
  .option('--ip-connections-per-sec <n>', 'new connections per second per IP', positive)
  .option('--max-connections-per-agent <n>', 'sessions per agent on this node', positive, 64)
  .option('--max-subscriptions <n>', 'topic subscriptions per session', positive, 100)
  .option('--max-members <n>', 'members per collaboration', positive, 1000)
  .option('--max-state-bytes <n>', 'largest collaboration state (JSON bytes)', positive, 1024 * 1024)
  .option(
    '--hello-timeout-ms <n>',
    'close sessions without a successful mesh/hello after this (auth on)',
    nonNegative,
    10_000,
  )
  .action(async (opts) => {
    const { runNode } = await import('./nodeCommand.js');
    await runNode(opts);
  });

program
  .command('apikey')
  .description(
    'print a new API key and the line to add to the --api-keys file (the file keeps only its hash)',
  )
  .requiredOption('--agent <id>', 'the agent id the key authenticates')
  .action(async (opts: { agent: string }) => {
    const { runApiKey } = await import('./apiKeyCommand.js');
    process.exitCode = runApiKey(opts.agent);
  });

program
  .command('demo')
  .description('run a scripted multi-agent brainstorm on an embedded node and print the transcript')
  .option('--agents <n>', 'idea agents besides the facilitator, critic and late joiner', positive, 3)
  .option('--seed <n>', 'random seed for the agents', positive, 7)
  .option(
    '--urls <urls>',
    'use running nodes (comma-separated ws:// URLs) instead of starting one',
    (v: string) =>
      v
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean),
  )
  .option('--nats <urls>', 'start nodes on this NATS (comma-separated URLs) instead of an embedded node')
  .option('--nodes <n>', 'how many nodes to start with --nats', positive, 2)
  .action(async (opts) => {
    const { runDemo } = await import('./demo.js');
    process.exitCode = await runDemo(opts);
  });

await program.parseAsync(process.argv);
