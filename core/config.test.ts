import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { ValidationError } from './errors.ts';

const spec = {
  port: { type: 'integer', flag: 'port', env: 'APP_PORT', default: 8080, description: 'port', schema: { minimum: 1, maximum: 65535 } },
  level: { type: 'string', flag: 'level', env: 'APP_LEVEL', default: 'info', description: 'level', schema: { enum: ['info', 'debug'] } },
  name: { type: 'string', flag: 'name', env: 'APP_NAME', description: 'name' },
  on: { type: 'boolean', flag: 'on', env: 'APP_ON', default: false, description: 'switch' },
} as const;

describe('loadConfig', () => {
  it('takes flags over environment over file over defaults, and freezes the result', () => {
    const config = loadConfig(spec, { flags: { port: '9000' }, env: { APP_PORT: '1', APP_LEVEL: 'debug' }, file: { name: 'from-file' } });
    expect(config).toEqual({ port: 9000, level: 'debug', name: 'from-file', on: false });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every invalid value at once, naming where each came from', () => {
    let error: unknown;
    try {
      loadConfig(spec, { flags: { port: 'abc' }, env: { APP_LEVEL: 'loud', APP_ON: 'maybe' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const fields = (error as ValidationError).fieldErrors.map((f) => f.path).sort();
    expect(fields).toEqual(['--port', 'APP_LEVEL', 'APP_ON']);
    expect((error as Error).message).toContain('must be one of info, debug, got "loud"');
  });

  it('checks ranges', () => {
    expect(() => loadConfig(spec, { flags: { port: '70000' } })).toThrow(/--port: must be <= 65535/);
  });
});
