import { pino, type Logger, type LoggerOptions } from 'pino';
import { redactSecrets, secretFieldNames } from './redact.ts';

export type { Logger } from 'pino';

/**
 * The one logger. JSON lines on stderr (stdout belongs to command output), secrets redacted by
 * field name at any depth and scrubbed from messages and error text.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream): Logger {
  const paths = secretFieldNames.flatMap((f) => [f, `*.${f}`, `*.*.${f}`, `headers["${f}"]`]);
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths, censor: '***' },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as typeof args;
        method.apply(this, scrubbed);
      },
    },
    serializers: {
      err: (err: unknown) => {
        if (!(err instanceof Error)) return err;
        const out: Record<string, unknown> = { type: err.name, message: redactSecrets(err.message) };
        if ('reason' in err) out.reason = (err as { reason: unknown }).reason;
        if (err.stack) out.stack = redactSecrets(err.stack);
        return out;
      },
    },
  };
  return pino(options, (destination ?? process.stderr) as pino.DestinationStream);
}
