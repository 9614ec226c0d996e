import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineWriter } from '../../../src/ops/log-writer.ts';

const tempFile = () => join(mkdtempSync(join(tmpdir(), 'keygate-log-')), 'out.log');

describe('LineWriter', () => {
  it('writes every line, in order, in batches; drain() resolves once all of it is in the file', async () => {
    const file = tempFile();
    const fd = openSync(file, 'w');
    const w = new LineWriter(fd, { batchChars: 1_000 });
    const lines = Array.from({ length: 5_000 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 50)}"}\n`);
    for (const line of lines) expect(w.write(line)).toBe(true);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
    expect(w.dropped).toBe(0);
    w.close();
    closeSync(fd);
  });

  it('writes any UTF-8 exactly, lines longer than a batch too', async () => {
    const file = tempFile();
    const fd = openSync(file, 'w');
    const w = new LineWriter(fd, { batchChars: 256 });
    const lines = [
      ...Array.from({ length: 300 }, (_, i) => `{"n":${i},"s":"é€😀${'ä'.repeat(i % 7)}"}\n`),
      `{"big":"${'€'.repeat(100_000)}"}\n`,
      '{"after":true}\n',
    ];
    for (const line of lines) expect(w.write(line)).toBe(true);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
    w.close();
    closeSync(fd);
  });

  it('drops lines (and counts them) instead of holding more than maxPendingChars', async () => {
    const file = tempFile();
    const fd = openSync(file, 'w');
    // No batch is due and the timer is far away: everything stays pending.
    const w = new LineWriter(fd, { batchChars: 1e9, flushIntervalMs: 60_000, maxPendingChars: 100 });
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i} ${'.'.repeat(20)}\n`);
    const accepted = lines.map((l) => w.write(l));
    expect(accepted.filter(Boolean).length).toBe(4); // 28 chars each: the 5th finds 112 pending, over the mark
    expect(w.dropped).toBe(6);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(lines.slice(0, 4).join(''));
    w.close();
    closeSync(fd);
  });

  it('flushSync() writes what is pending at once (the exit path)', () => {
    const file = tempFile();
    const fd = openSync(file, 'w');
    const w = new LineWriter(fd, { batchChars: 1e9, flushIntervalMs: 60_000 });
    w.write('a\n');
    w.write('b\n');
    w.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
    w.close();
    closeSync(fd);
  });
});
