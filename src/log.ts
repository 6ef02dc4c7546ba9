import pino, { type Logger } from 'pino';

/** Options of the root logger. */
export interface LoggerOptions {
  /** pino level (default: env `LOG_LEVEL`, else `info`). */
  level?: string;
  /** Pretty output (default: when stdout is a TTY). */
  pretty?: boolean;
}

/** The one root logger of a process: JSON lines, or pino-pretty when stdout is a TTY. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (!pretty) return pino({ level, base: { pid: process.pid } });
  return pino({
    level,
    transport: {
      target: 'pino-pretty',
      options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
    },
  });
}
