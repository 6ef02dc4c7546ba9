import pino, { type Logger } from 'pino';

/** Options of the root logger. */
export interface LoggerOptions {
  /** pino level (default: env `LOG_LEVEL`, else `info`). */
  level?: string;
  /** Pretty output (default: when stdout is a TTY). */
  pretty?: boolean;
}

/**
 * Field paths never written, whatever a caller logs by mistake: credentials in params, headers and
 * options. The node logs none of them on purpose; this is the second line of defence.
 */
export const REDACT_PATHS: readonly string[] = [
  'token',
  '*.token',
  'params.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'pass',
  '*.pass',
  'secret',
  '*.secret',
  'apiKey',
  '*.apiKey',
];

const redact = { paths: [...REDACT_PATHS], censor: '[redacted]' };

/** The one root logger of a process: JSON lines, or pino-pretty when stdout is a TTY. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (!pretty) return pino({ level, base: { pid: process.pid }, redact });
  return pino({
    level,
    redact,
    transport: {
      target: 'pino-pretty',
      options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
    },
  });
}
