import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig, packageRoot } from '../../../src/config/load.ts';
import { configSchema } from '../../../src/config/schema.ts';

const file = join(packageRoot, 'config', 'default.yaml');

describe('config/default.yaml', () => {
  it('states exactly the schema defaults, for every option', () => {
    expect(parse(readFileSync(file, 'utf8'))).toEqual(configSchema.parse({}));
  });

  it('documents every option with a comment', () => {
    // An option line (`name: value` at the top level or one level down) must have a comment above it,
    // possibly shared with the options right above it (e.g. redis.sentinels and redis.sentinelName).
    const lines = readFileSync(file, 'utf8').split('\n');
    const option = /^( {0,2})([A-Za-z]+):\s*\S/;
    const undocumented = lines.flatMap((line, i) => {
      const m = option.exec(line);
      if (!m) return [];
      let j = i - 1;
      while (j >= 0 && option.exec(lines[j]!)?.[1] === m[1]) j--;
      return lines[j]?.trim().startsWith('#') ? [] : [m[2]!];
    });
    expect(undocumented).toEqual([]);
  });

  it('overlays KEYGATE_CONFIG and the environment, and reports all problems at once', () => {
    const c = loadConfig({ env: { PORT: '7000', REDIS_URL: 'redis://localhost:6379', LOG_LEVEL: 'warn' } });
    expect(c.server.port).toBe(7000);
    expect(c.redis.url).toBe('redis://localhost:6379');
    expect(c.logging.level).toBe('warn');
    try {
      loadConfig({ env: { PORT: 'x', LOG_LEVEL: 'loud', KEYGATE_PEPPER: 'short' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.map((p) => p.path).sort()).toEqual([
        'keys.pepper (from KEYGATE_PEPPER)',
        'logging.level (from LOG_LEVEL)',
        'server.port (from PORT)',
      ]);
    }
  });

  it('refuses a WebSocket idle timeout that is not longer than the ping interval (a silent side would go unpinged)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-ws-'));
    const file = join(dir, 'keygate.yaml');
    writeFileSync(file, 'websocket:\n  pingIntervalSeconds: 30\n  idleTimeoutSeconds: 30\n');
    try {
      loadConfig({ env: { KEYGATE_CONFIG: file } });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([expect.objectContaining({ path: 'websocket.idleTimeoutSeconds', message: expect.stringMatching(/longer than pingIntervalSeconds/) })]);
    }
  });
});
