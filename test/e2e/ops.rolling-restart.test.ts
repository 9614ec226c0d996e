import { describe, expect, it } from 'vitest';
import { createTenant } from '../helpers/api.ts';
import { startBalancer, type Backend } from '../helpers/balancer.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// A rolling restart under traffic: two keygate replicas on one Redis behind a round-robin balancer that polls
// readiness; each is stopped (SIGTERM) and replaced in turn while clients keep sending. With a drain delay
// longer than the balancer's poll, no request is lost.

const servers = useServers();
const backendOf = (kg: KeygateProcess): Backend => ({ url: kg.url, readyUrl: `${kg.opsUrl}/readyz` });

/** Four clients sending requests back to back until `stop`; every answer that is not the upstream's 200 is kept. */
function traffic(url: string, key: string) {
  let stop = false;
  let sent = 0;
  const lost: string[] = [];
  const worker = async () => {
    while (!stop) {
      sent++;
      try {
        const res = await fetch(`${url}/v1/calls/x`, { headers: { 'x-api-key': key } });
        const body = await res.text();
        if (res.status !== 200) lost.push(`${res.status} ${body.slice(0, 200)}`);
      } catch (err) {
        lost.push(String((err as Error).cause ?? err));
      }
    }
  };
  const done = Promise.all([worker(), worker(), worker(), worker()]);
  return {
    async finish() {
      stop = true;
      await done;
      return { sent, lost };
    },
  };
}

describe('rolling restart behind a load balancer', () => {
  it('loses no request while each replica is stopped and replaced under traffic', async () => {
    const options = { config: { shutdown: { drainDelaySeconds: 2, timeoutSeconds: 10 } } };
    const first = [await servers.keygate(options), await servers.keygate(options)];
    const balancer = await startBalancer(first.map(backendOf));
    try {
      await Promise.all(first.map((kg) => balancer.waitReady(kg.url)));
      // enterprise: no rate limits, so every answer but the upstream's 200 is a lost request.
      const { apiKey } = await createTenant(first[0]!, { name: 'rolling', plan: 'enterprise' });
      const load = traffic(balancer.url, apiKey.key);
      await new Promise((r) => setTimeout(r, 500));
      for (const old of first) {
        const replacement = await servers.keygate(options);
        balancer.add(backendOf(replacement));
        await balancer.waitReady(replacement.url);
        expect(await old.stop('SIGTERM')).toBe(0);
        balancer.remove(old.url);
        await new Promise((r) => setTimeout(r, 300));
      }
      const { sent, lost } = await load.finish();
      expect(lost).toEqual([]);
      expect(sent).toBeGreaterThan(100);
    } finally {
      await balancer.close();
    }
  }, 90_000);
});
