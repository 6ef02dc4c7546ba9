import { Command, InvalidArgumentError, Option } from 'commander';
import { runDemo } from './demo.js';
import { runNode } from './nodeCommand.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('a port is an integer from 0 to 65535');
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
  .action(async (opts) => {
    await runNode(opts);
  });

program
  .command('demo')
  .description('run a scripted multi-agent brainstorm on an embedded node and print the transcript')
  .option('--agents <n>', 'idea agents besides the facilitator, critic and late joiner', positive, 3)
  .option('--seed <n>', 'random seed for the agents', positive, 7)
  .action(async (opts) => {
    process.exitCode = await runDemo(opts);
  });

await program.parseAsync(process.argv);
