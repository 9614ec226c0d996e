import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { closeOf, closePayload, frame, parseFrames, rawClient, rssOf, sleep, startRawUpstream, until, type RawConn, type RawUpstream } from '../helpers/ws-raw.ts';

// A live session's frames pass through keygate as they came, only their headers read. Here both ends are raw
// TCP sockets (the upstream answers the handshake itself), so what each end receives is checked byte for byte:
// every length form split at every header offset, frames that came with either handshake, and what a hostile
// upstream may send (frames no server may send, a close no endpoint may send, an oversized frame, a flood).

const servers = useServers();
const MAX = 70_000; // above 65535, so the 64-bit length form carries a message the cap allows
let upstream: RawUpstream;
/** What the upstream does with the next connection (answer the handshake at once, unless a test says otherwise). */
let onConn: (c: RawConn) => void = (c) => c.accept();
let kg: KeygateProcess;
let key: string;

beforeAll(async () => {
  upstream = await startRawUpstream((c) => onConn(c));
  kg = await servers.keygate({ upstream: upstream.url, config: { websocket: { maxPayloadBytes: MAX } } });
  ({ key } = await createTenant(kg, { name: 'hostile-upstream', plan: 'pro' }));
});
afterAll(async () => {
  await upstream?.close();
});

/** A session between a raw client and the raw upstream. */
async function session(after?: Buffer) {
  const next = upstream.next();
  const client = await rawClient(kg, key, '/v1/voice/raw/stream', after);
  const up = await next;
  return { client, up };
}

/** Writes `parts` one at a time, each as its own segment (a pause between, so keygate reads them apart). */
async function writeApart(socket: { write(b: Buffer): boolean }, parts: Buffer[]): Promise<void> {
  for (const p of parts) {
    socket.write(p);
    await sleep(3);
  }
}

/** A frame cut at every offset of its header (and one into its payload): the pieces for each cut, in order. */
function cutEverywhere(f: Buffer, headerLength: number): Buffer[][] {
  const cuts: Buffer[][] = [];
  for (let at = 1; at <= Math.min(headerLength + 1, f.length - 1); at++) cuts.push([f.subarray(0, at), f.subarray(at)]);
  return cuts;
}

const LENGTHS = [0, 1, 125, 126, 127, 65_535, 65_536, MAX];
const headerLength = (len: number, masked: boolean) => 2 + (len < 126 ? 0 : len < 65_536 ? 2 : 8) + (masked ? 4 : 0);

describe('frames pass through byte for byte', () => {
  it('relays every length form cut at every header offset, both ways, exactly as sent', async () => {
    const { client, up } = await session();
    for (const [from, to, masked] of [[client, up, true], [up, client, false]] as const) {
      const sent: Buffer[] = [];
      for (const len of LENGTHS) {
        for (const pieces of cutEverywhere(frame(2, randomBytes(len), { mask: masked ? undefined : null }), headerLength(len, masked))) {
          sent.push(...pieces);
          await writeApart(from.socket, pieces);
        }
      }
      // Control frames of every allowed size, between them: empty, and 125 bytes.
      for (const f of [frame(9, Buffer.alloc(0), { mask: masked ? undefined : null }), frame(10, randomBytes(125), { mask: masked ? undefined : null })]) {
        sent.push(f);
        await writeApart(from.socket, [f.subarray(0, 1), f.subarray(1)]);
      }
      const expected = Buffer.concat(sent);
      expect(await until(() => to.bytes() >= expected.length)).toBe(true);
      expect(to.read().equals(expected)).toBe(true);
      to.keep = false; // the next direction's check starts from nothing
    }
    client.socket.destroy();
  });

  it('relays frames that came in the same packet as either handshake, an incomplete header among them', async () => {
    const fromClient = [frame(1, 'with the request'), frame(2, randomBytes(300)), frame(9, 'ping')];
    const fromUpstream = [frame(1, 'with the 101', { mask: null }), frame(2, randomBytes(70_000), { mask: null }), frame(10, 'pong', { mask: null })];
    const clientTail = frame(2, randomBytes(10));
    const upstreamTail = frame(1, 'after the 101', { mask: null });
    onConn = (c) => c.accept(Buffer.concat([...fromUpstream, upstreamTail.subarray(0, 1)]));
    try {
      const { client, up } = await session(Buffer.concat([...fromClient, clientTail.subarray(0, 3)]));
      await sleep(50);
      client.socket.write(clientTail.subarray(3));
      up.socket.write(upstreamTail.subarray(1));
      const toUp = Buffer.concat([...fromClient, clientTail]);
      const toClient = Buffer.concat([...fromUpstream, upstreamTail]);
      expect(await until(() => up.bytes() >= toUp.length && client.bytes() >= toClient.length)).toBe(true);
      expect(up.read().equals(toUp)).toBe(true);
      expect(client.read().equals(toClient)).toBe(true);
      client.socket.destroy();
    } finally {
      onConn = (c) => c.accept();
    }
  });
});

/**
 * `from` sends a text frame, then `bad`: what its peer read (that frame, then keygate's close, then nothing), and
 * what `from` itself was sent (keygate's close).
 */
async function afterSending(from: 'client' | 'upstream', bad: Buffer) {
  const { client, up } = await session();
  const [sender, receiver] = from === 'client' ? [client, up] : [up, client];
  sender.socket.write(frame(1, 'before', { mask: from === 'client' ? undefined : null }));
  await until(() => receiver.frames().length === 1);
  sender.socket.write(bad);
  await until(() => receiver.frames().some((f) => f.opcode === 8) && sender.frames().some((f) => f.opcode === 8), 3_000);
  await sleep(20); // anything keygate wrongly sent after its close
  client.socket.destroy();
  return { received: receiver.frames(), rest: parseFrames(receiver.read()).rest, sent: sender.frames() };
}

/** Client frames (each under 126 bytes of payload, or 126 for the oversized ping) as a server would send them: unmasked. */
function unmaskAll(bytes: Buffer): Buffer {
  return Buffer.concat(parseFrames(bytes).frames.map((f) => frame(f.opcode, f.payload, { fin: f.fin, rsv: f.rsv, mask: null })));
}

describe('what no endpoint may send is never relayed', () => {
  // Each as the client would send it; the upstream's copy is the same frame unmasked (a masked one is itself bad).
  const bad: Record<string, { bytes: Buffer; relayed?: number[] }> = {
    'reserved bit 1': { bytes: frame(2, 'rsv', { rsv: 0x40 }) },
    'reserved bit 3': { bytes: frame(1, 'rsv', { rsv: 0x10 }) },
    'opcode 3': { bytes: frame(3, 'op') },
    'opcode 11': { bytes: frame(11, 'op') },
    'fragmented ping': { bytes: frame(9, 'ping', { fin: false }) },
    'ping of 126 bytes': { bytes: frame(9, Buffer.alloc(126)) },
    'continuation outside a message': { bytes: frame(0, 'cont') },
    // The first fragment is a frame like any other: relayed; the second is not.
    'a message inside a message': { bytes: Buffer.concat([frame(2, 'one', { fin: false }), frame(1, 'two')]), relayed: [2] },
    'close with 1 byte': { bytes: frame(8, Buffer.from([0x03])) },
    'close 1005': { bytes: frame(8, closePayload(1005)) },
    'close 1006': { bytes: frame(8, closePayload(1006, 'abnormal')) },
    'close 999': { bytes: frame(8, closePayload(999)) },
    'close 1004': { bytes: frame(8, closePayload(1004)) },
    'close 1015': { bytes: frame(8, closePayload(1015)) },
    'close 2999': { bytes: frame(8, closePayload(2999)) },
    'close 5000': { bytes: frame(8, closePayload(5000)) },
    'close with a reason that is not UTF-8': { bytes: frame(8, closePayload(1000, Buffer.from([0x6f, 0x6b, 0xc3, 0x28]))) },
  };
  for (const from of ['upstream', 'client'] as const) {
    const cases = Object.entries(bad).map(([what, c]) => [what, from === 'client' ? c.bytes : unmaskAll(c.bytes), c.relayed ?? []] as const);
    if (from === 'upstream') cases.push(['masked', frame(2, 'masked'), []]);
    else cases.push(['unmasked', frame(2, 'unmasked', { mask: null }), []]);
    for (const [what, bytes, relayed] of cases) {
      it(`from the ${from}, ${what}: its peer gets 1002 after what came before, and nothing of it; it gets 1002`, async () => {
        const got = await afterSending(from, bytes);
        expect(got.received.map((f) => f.opcode)).toEqual([1, ...relayed, 8]);
        expect(got.received[0]!.payload.toString()).toBe('before');
        expect(closeOf(got.received.at(-1)!)).toEqual({ code: 1002, reason: 'protocol_error' });
        expect(got.rest).toBe(0); // nothing after the close, not even part of a frame
        expect(got.sent.map((f) => [f.opcode, f.masked])).toEqual([[8, from === 'client' ? false : true]]);
        expect(closeOf(got.sent[0]!)).toEqual({ code: 1002, reason: 'protocol_error' });
      });
    }
  }

  it('relays a close every endpoint may send as it came: codes, reasons, none', async () => {
    for (const payload of [closePayload(1000, 'bye'), closePayload(1001), closePayload(1011, 'ünïcødé'), closePayload(1014), closePayload(3000, 'app'), closePayload(4999, 'x'.repeat(123)), Buffer.alloc(0)]) {
      const { client, up } = await session();
      up.socket.write(frame(8, payload, { mask: null }));
      await until(() => client.frames().length === 1);
      expect(client.frames().map((f) => [f.opcode, f.payload.toString('hex')])).toEqual([[8, payload.toString('hex')]]);
      client.socket.write(frame(8, payload));
      await until(() => up.frames().length === 1);
      expect(up.frames().map((f) => [f.opcode, f.payload.toString('hex')])).toEqual([[8, payload.toString('hex')]]);
      await client.closed;
    }
  });

  it('never relays an oversized message from either side: 1009 before any of it, whatever length form claims it', async () => {
    for (const from of ['upstream', 'client'] as const) {
      for (const claim of [MAX + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2n ** 63n - 1n]) {
        const got = await afterSending(from, frame(2, randomBytes(1000), { mask: from === 'client' ? undefined : null, claim, form: 64 }));
        expect({ from, claim, frames: got.received.map((f) => f.opcode) }).toEqual({ from, claim, frames: [1, 8] });
        expect(closeOf(got.received[1]!)).toEqual({ code: 1009, reason: 'message_too_large' });
        expect(got.rest).toBe(0);
        expect(closeOf(got.sent[0]!)).toEqual({ code: 1009, reason: 'message_too_large' });
      }
    }
  });

  it('never relays a frame whose 64-bit length has its most significant bit set, from either side: 1002, not 1009', async () => {
    // The most significant bit of a 64-bit length must be 0 (RFC 6455 5.2): with it set the frame is malformed, not
    // large, even when the other 63 bits are a length the cap allows (4 bytes here, all of them sent).
    for (const from of ['upstream', 'client'] as const) {
      for (const claim of [2n ** 63n, 2n ** 63n + 4n, 2n ** 64n - 1n]) {
        const got = await afterSending(from, frame(2, randomBytes(4), { mask: from === 'client' ? undefined : null, claim, form: 64 }));
        expect({ from, claim, frames: got.received.map((f) => f.opcode) }).toEqual({ from, claim, frames: [1, 8] });
        expect(closeOf(got.received[1]!)).toEqual({ code: 1002, reason: 'protocol_error' });
        expect(got.rest).toBe(0);
        expect(closeOf(got.sent[0]!)).toEqual({ code: 1002, reason: 'protocol_error' });
      }
    }
  });
});

describe("keygate's memory, whatever a side sends", () => {
  // The claim: a sender is not read while its receiver's socket holds more than 64 KiB, so keygate holds about
  // 128 KiB per direction. A side that never reads is flooded with 64 MiB; keygate's resident set must not grow
  // by anything like it (the kernel's socket buffers are outside it).
  const TOTAL = 64 * 1024 * 1024;
  const GROWTH = 24 * 1024 * 1024;

  /** Writes `total` bytes of `unit` repeated, waiting for drain; resolves with how much was written after `ms` of no drain, and a promise for all of it. */
  function flood(socket: RawConn['socket'], unit: Buffer, total: number) {
    const chunk = Buffer.concat(Array.from({ length: Math.ceil((256 * 1024) / unit.length) }, () => unit));
    let written = 0;
    const all = (async () => {
      while (written < total && !socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
    })();
    return { written: () => written, all, total: Math.ceil(total / chunk.length) * chunk.length };
  }

  for (const [what, unit] of [
    ['a ping flood', frame(9, Buffer.alloc(125, 7), { mask: null })],
    ['a message flood', frame(2, Buffer.alloc(MAX, 7), { mask: null })],
  ] as const) {
    it(`${what} from the upstream to a client that does not read: bounded, then delivered whole`, async () => {
      const { client, up } = await session();
      client.keep = false;
      client.socket.pause();
      const before = await rssOf(kg.proc.pid!);
      const f = flood(up.socket, unit, TOTAL);
      await sleep(2_000);
      const held = f.written();
      const grown = (await rssOf(kg.proc.pid!)) - before;
      console.log(`${what}, client not reading: upstream wrote ${(held / 2 ** 20).toFixed(1)} MiB of ${TOTAL / 2 ** 20}; keygate RSS +${(grown / 2 ** 20).toFixed(1)} MiB`);
      expect(held).toBeLessThan(TOTAL / 2);
      expect(grown).toBeLessThan(GROWTH);
      client.socket.resume();
      await f.all;
      expect(await until(() => client.bytes() >= f.total, 20_000)).toBe(true);
      expect(client.bytes()).toBe(f.total);
      client.socket.destroy();
    });
  }

  it('a flood from the client to an upstream that does not read: bounded, then delivered whole', async () => {
    const { client, up } = await session();
    up.keep = false;
    up.socket.pause();
    const before = await rssOf(kg.proc.pid!);
    const f = flood(client.socket, frame(2, Buffer.alloc(MAX, 7)), TOTAL);
    await sleep(2_000);
    const held = f.written();
    const grown = (await rssOf(kg.proc.pid!)) - before;
    console.log(`client flood, upstream not reading: client wrote ${(held / 2 ** 20).toFixed(1)} MiB of ${TOTAL / 2 ** 20}; keygate RSS +${(grown / 2 ** 20).toFixed(1)} MiB`);
    expect(held).toBeLessThan(TOTAL / 2);
    expect(grown).toBeLessThan(GROWTH);
    up.socket.resume();
    await f.all;
    expect(await until(() => up.bytes() >= f.total, 20_000)).toBe(true);
    expect(up.bytes()).toBe(f.total);
    client.socket.destroy();
  });
});
