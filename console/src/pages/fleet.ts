import { get, fmt } from '../api.ts';
import { Chart } from '../chart.ts';
import { html } from '../html.ts';
import { Badge, Failure, Loading, useLoad } from '../ui.ts';

type Bucket = 'allowed' | '401' | '403' | '429' | '503' | 'other';
interface Fleet {
  generatedAt: string;
  store: string;
  redis: { status: string; latencyMs: number | null } | null;
  decisionsPerMinute: Array<{ at: string; counts: Record<Bucket, number> }>;
  topTenants: { data: Array<{ id: string; name: string; plan: string; requestsToday: number }>; scanned: number; truncated: boolean };
  blockedAddresses: Array<{ ip: string; blockedAt: string; blockedUntil: string }>;
  webhooks: { enabled: boolean; endpoints: number; failing: number; disabled: number; deadLetters: number };
}
interface Overview {
  tenants: number;
  keys: number;
  requestsToday: number;
  sessionsToday: number;
}

const SERIES: Array<[Bucket, string, string]> = [
  ['allowed', 'allowed', '--c-ok'],
  ['401', '401', '--c-401'],
  ['403', '403', '--c-403'],
  ['429', '429', '--c-429'],
  ['503', '503', '--c-503'],
];

export function FleetPage() {
  const [data, error] = useLoad(() => Promise.all([get<Fleet>('/fleet'), get<Overview>('/overview')]), []);
  if (error) return html`<h1 tabindex="-1">Fleet</h1><${Failure} error=${error} />`;
  if (!data) return html`<h1 tabindex="-1">Fleet</h1><${Loading} />`;
  const [fleet, overview] = data;
  const minutes = fleet.decisionsPerMinute;
  const times = minutes.map((m) => Date.parse(m.at) / 1000);
  const series = SERIES.map(([b, label, color]) => ({ label, color, values: minutes.map((m) => m.counts[b]) }));
  const redisUp = fleet.redis?.status === 'up';
  const hooks = fleet.webhooks;
  return html`<h1 tabindex="-1">Fleet</h1>
    <section class="cards" aria-label="Summary">
      <div class="card"><h2>Tenants</h2><p class="big">${fmt.n(overview.tenants)}</p></div>
      <div class="card"><h2>Keys</h2><p class="big">${fmt.n(overview.keys)}</p></div>
      <div class="card"><h2>Requests today</h2><p class="big">${fmt.n(overview.requestsToday)}</p></div>
      <div class="card"><h2>Store</h2><p class="big"><${Badge} ok=${redisUp}>${fleet.store === 'memory' ? 'memory' : `Redis ${fleet.redis?.status ?? 'unknown'}`}<//></p>
        <p class="muted">${fleet.redis?.latencyMs !== null && fleet.redis?.latencyMs !== undefined ? `${fleet.redis.latencyMs} ms` : ''}</p></div>
      <div class="card"><h2>Webhooks</h2>
        ${hooks.enabled
          ? html`<p class="big"><${Badge} ok=${hooks.failing + hooks.disabled === 0}>${hooks.endpoints} endpoints<//></p>
              <p class="muted">${hooks.failing} failing, ${hooks.disabled} disabled, ${hooks.deadLetters} dead letters</p>`
          : html`<p class="muted">off (webhooks.enabled)</p>`}</div>
    </section>
    <${Chart} title="Requests per minute by decision (this replica, last 3 hours)" times=${times} series=${series} />
    <div class="two">
      <section aria-labelledby="top-h">
        <h2 id="top-h">Top tenants today</h2>
        ${fleet.topTenants.data.length === 0
          ? html`<p class="muted">No requests yet today.</p>`
          : html`<div class="scroll"><table>
              <thead><tr><th scope="col">Tenant</th><th scope="col">Plan</th><th scope="col" class="num">Requests</th></tr></thead>
              <tbody>${fleet.topTenants.data.map((t) => html`<tr><td><a href=${`#/tenants/${t.id}`}>${t.name}</a></td><td>${t.plan}</td><td class="num">${fmt.n(t.requestsToday)}</td></tr>`)}</tbody>
            </table></div>`}
      </section>
      <section aria-labelledby="blocked-h">
        <h2 id="blocked-h">Blocked addresses</h2>
        ${fleet.blockedAddresses.length === 0
          ? html`<p class="muted">None blocked now (this replica).</p>`
          : html`<div class="scroll"><table>
              <thead><tr><th scope="col">Address</th><th scope="col">Blocked until</th></tr></thead>
              <tbody>${fleet.blockedAddresses.map((b) => html`<tr><td><code>${b.ip}</code></td><td>${fmt.date(b.blockedUntil)}</td></tr>`)}</tbody>
            </table></div>`}
      </section>
    </div>
    <p class="muted">As of ${fmt.date(fleet.generatedAt)}.</p>`;
}
