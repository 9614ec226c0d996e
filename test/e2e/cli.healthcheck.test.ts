import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { root, startKeygate } from '../helpers/keygate.ts';
import { freePort } from '../helpers/ports.ts';
import { run } from '../helpers/tools.ts';
import { useServers } from '../helpers/servers.ts';

// The image's HEALTHCHECK: the chart sets the ports in the KEYGATE_CONFIG file, not in OPS_PORT, and
// the check must probe the port keygate listens on. The command under test is the Dockerfile's own.

const servers = useServers();

const healthcheckCommand = (): string[] => {
  const instruction = DockerfileParser.parse(readFileSync(join(root, 'Dockerfile'), 'utf8'))
    .getInstructions()
    .filter((i) => i.getKeyword() === 'HEALTHCHECK')
    .at(-1)!;
  const content = instruction.getArgumentsContent()!;
  return JSON.parse(content.slice(content.indexOf('['))) as string[];
};

/** Runs the HEALTHCHECK as Docker would: in the app directory, with only the container's environment. */
async function check(env: Record<string, string>) {
  const [cmd, ...args] = healthcheckCommand();
  expect(cmd).toBe('node');
  return run(process.execPath, args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } });
}

function configFile(config: object): string {
  const file = join(mkdtempSync(join(tmpdir(), 'keygate-health-')), 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

describe('keygate healthcheck (the image HEALTHCHECK)', () => {
  it('probes the internal port set in the KEYGATE_CONFIG file; 1 once keygate is gone', async () => {
    const opsPort = await freePort();
    const file = configFile({ server: { port: 0, opsPort, host: '127.0.0.1', opsHost: '127.0.0.1' } });
    const kg = await servers.keygate({ env: { KEYGATE_CONFIG: file } });
    expect(kg.opsPort).toBe(opsPort);
    const healthy = await check({ KEYGATE_CONFIG: file });
    expect({ code: healthy.code, stderr: healthy.stderr }).toEqual({ code: 0, stderr: '' });

    await kg.stop();
    const gone = await check({ KEYGATE_CONFIG: file });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`127.0.0.1:${opsPort}/healthz`);
  });

  it('lets OPS_PORT win over the file, as serve does, and reaches a wildcard bind on loopback', async () => {
    const [filePort, envPort] = [await freePort(), await freePort()];
    const file = configFile({ server: { port: 0, opsPort: filePort, host: '127.0.0.1', opsHost: '0.0.0.0' } });
    const kg = await startKeygate({ redisUrl: servers.redis.url, upstream: servers.upstream.url, env: { KEYGATE_CONFIG: file, OPS_PORT: String(envPort) } });
    try {
      expect(kg.opsPort).toBe(envPort);
      expect((await check({ KEYGATE_CONFIG: file, OPS_PORT: String(envPort) })).code).toBe(0);
      expect((await check({ KEYGATE_CONFIG: file })).code).toBe(1); // the file's port: nobody there
    } finally {
      await kg.stop();
    }
  });

  it('answers 1 (never 78: Docker reserves 2 and up) on a configuration it cannot read', async () => {
    const result = await check({ KEYGATE_CONFIG: configFile({ server: { opsPort: 'nine' } }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('server.opsPort');
  });
});
