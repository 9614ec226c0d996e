import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/keygate.ts';
import { freePort } from '../helpers/ports.ts';
import { run } from '../helpers/tools.ts';

// The README's five-minute walkthrough, run as written: its fenced shell blocks, terminal 1's in the background
// (the upstream and `npm start`), terminal 2's in one shell after it, in the order they appear. Only the three
// ports are moved to free ones (3000, 8080 and 9090 may be taken on a shared machine): through the environment
// keygate and the CLI read (UPSTREAM_URL, PORT, OPS_PORT) and by rewriting `3000` and `localhost:8080`.

interface Block {
  terminal: 1 | 2;
  text: string;
}

function walkthrough(): Block[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Five minutes'), readme.indexOf('\n## ', readme.indexOf('## Five minutes') + 1));
  const blocks: Block[] = [];
  let terminal: 1 | 2 = 1;
  for (const m of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const text = m[1]!;
    const marked = /^# terminal ([12])\n/.exec(text);
    if (marked) terminal = Number(marked[1]) as 1 | 2;
    blocks.push({ terminal, text });
  }
  return blocks;
}

describe('README walkthrough', () => {
  it('has a terminal 1 that starts keygate and terminal 2 blocks that use jq and the CLI', () => {
    const blocks = walkthrough();
    expect(blocks.filter((b) => b.terminal === 1)).toHaveLength(1);
    expect(blocks[0]!.text).toContain('npm start');
    const second = blocks.filter((b) => b.terminal === 2).map((b) => b.text).join('');
    expect(second).toContain('jq');
    expect(second).toContain('npx keygate');
  });

  it('works when its commands are run as written, against the keygate terminal 1 starts', async () => {
    const blocks = walkthrough();
    const [upstream, port, opsPort] = [await freePort(), await freePort(), await freePort()];
    const moved = (text: string) => text.replaceAll('listen(3000)', `listen(${upstream})`).replaceAll('localhost:8080', `localhost:${port}`);
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', UPSTREAM_URL: `http://127.0.0.1:${upstream}`, PORT: String(port), OPS_PORT: String(opsPort) };

    // Terminal 1, in its own process group (npm start, and the upstream started with &), stopped as a whole.
    const first = spawn('bash', ['-c', moved(blocks[0]!.text)], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    first.stdout.on('data', (c: Buffer) => (out += c.toString()));
    first.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await expect.poll(() => out.includes('"msg":"keygate listening"'), { timeout: 120_000, interval: 250 }).toBe(true);

      const script = blocks.filter((b) => b.terminal === 2).map((b) => moved(b.text)).join('\n');
      const second = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: root, env });
      expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
      const lines = second.stdout.split('\n');
      // echo "$TENANT $KEY"
      expect(lines[0]).toMatch(/^ten_\w+ kg_sk_\w+$/);
      // The upstream saw the tenant and the key's id, not the key.
      const headers = JSON.parse(second.stdout.slice(second.stdout.indexOf('{'), second.stdout.indexOf('}\n') + 1)) as Record<string, string>;
      expect(headers['x-tenant-id']).toBe(lines[0]!.split(' ')[0]);
      expect(headers['x-api-key-id']).toMatch(/^key_/);
      expect(JSON.stringify(headers)).not.toContain(lines[0]!.split(' ')[1]);
      // The dialer: 200 on a read, insufficient_permissions on a write, listed, then revoked.
      expect(lines).toContain('200');
      expect(lines).toContain('"insufficient_permissions"');
      expect(second.stdout).toMatch(/^ID\s+NAME\s+TYPE/m);
      expect(second.stdout).toContain('revoked key_');
      expect(lines.filter(Boolean).at(-1)).toBe('"invalid_api_key"');
    } finally {
      if (first.exitCode === null) {
        const closed = new Promise((r) => first.once('close', r));
        process.kill(-first.pid!, 'SIGTERM');
        await closed;
      }
    }
  }, 180_000);
});
