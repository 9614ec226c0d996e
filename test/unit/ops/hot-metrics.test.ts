import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../../../src/ops/hot-metrics.ts';

// The hot-path series must be indistinguishable from prom-client's own in the exposition: the same values fed
// to a prom-client Histogram/Counter and to their Hot* forms give the same text, line for line.

const buckets = [0.001, 0.005, 0.01, 0.1, 1];
const values = [0.0005, 0.001, 0.003, 0.005, 0.02, 0.5, 0.5, 3, 0.0099];

describe('HotHistogram', () => {
  it('prints what prom-client Histogram prints, labelled and unlabelled', async () => {
    const plain = new Registry();
    const hot = new Registry();
    const a = new Histogram({ name: 'lat_seconds', help: 'Latency.', labelNames: ['listener'], buckets, registers: [plain] });
    const b = new HotHistogram({ name: 'lat_seconds', help: 'Latency.', labelNames: ['listener'], buckets, registers: [hot] });
    const c = new Histogram({ name: 'auth_seconds', help: 'Auth.', buckets, registers: [plain] });
    const d = new HotHistogram({ name: 'auth_seconds', help: 'Auth.', buckets, registers: [hot] });
    for (const v of values) {
      a.observe({ listener: 'public' }, v);
      b.series('public').observe(v);
      c.observe(v * 2);
      d.observe(v * 2);
    }
    a.observe({ listener: 'internal' }, 0.2);
    b.series('internal').observe(0.2);
    expect(await hot.metrics()).toBe(await plain.metrics());
    expect(await hot.getMetricsAsJSON()).toEqual(await plain.getMetricsAsJSON());
  });

  it('resets to zero and refuses labelled observe() (labels are bound with series())', async () => {
    const reg = new Registry();
    const h = new HotHistogram({ name: 'x_seconds', help: 'x', labelNames: ['l'], buckets, registers: [reg] });
    h.series('a').observe(0.5);
    h.reset();
    expect(await reg.metrics()).toContain('x_seconds_count{l="a"} 0');
    expect(() => h.observe({ l: 'a' }, 1)).toThrow(/series/);
  });
});

describe('HotCounter', () => {
  it('prints what prom-client Counter prints, with counts taken at scrape time', async () => {
    const plain = new Registry();
    const hot = new Registry();
    const a = new Counter({ name: 'req_total', help: 'Requests.', labelNames: ['method', 'class'], registers: [plain] });
    const b = new HotCounter({ name: 'req_total', help: 'Requests.', labelNames: ['method', 'class'], registers: [hot] });
    const get2xx = b.child('GET', '2xx');
    for (let i = 0; i < 5; i++) {
      a.inc({ method: 'GET', class: '2xx' });
      get2xx.inc();
    }
    a.inc({ method: 'POST', class: '4xx' });
    b.child('POST', '4xx').inc();
    expect(await hot.metrics()).toBe(await plain.metrics());
    // Counted after a scrape: the next scrape adds them.
    a.inc({ method: 'GET', class: '2xx' }, 2);
    get2xx.inc();
    get2xx.inc();
    expect(await hot.metrics()).toBe(await plain.metrics());
  });
});
