import { useState } from 'preact/hooks';
import { get, type UsageRow } from '../api.ts';
import { Chart } from '../chart.ts';
import { html } from '../html.ts';
import { Failure, Loading, useLoad } from '../ui.ts';

const DAY_MS = 86_400_000;
const timeOf = (period: string) => Date.parse(period.length === 13 ? `${period}:00:00Z` : `${period}T00:00:00Z`) / 1000;

/** Usage charts of a tenant (or one of its keys): per hour over 7 days, or per day over 90. */
export function UsageCharts(props: { tenantId: string; keyId?: string }) {
  const [span, setSpan] = useState<'hour' | 'day'>('hour');
  const key = props.keyId ? `&keyId=${props.keyId}` : '';
  const query = span === 'hour' ? 'granularity=hour' : `granularity=day&from=${new Date(Date.now() - 89 * DAY_MS).toISOString().slice(0, 10)}`;
  const [rows, error] = useLoad(() => get<{ data: UsageRow[] }>(`/tenants/${props.tenantId}/usage?${query}${key}`).then((r) => r.data), [props.tenantId, props.keyId, span]);
  const times = rows?.map((r) => timeOf(r.period)) ?? [];
  const per = span === 'hour' ? 'hour, last 7 days' : 'day, last 90 days';
  return html`<section aria-labelledby="usage-h">
    <div class="row spread">
      <h2 id="usage-h">Usage</h2>
      <div role="group" aria-label="Chart period" class="seg">
        <button type="button" aria-pressed=${span === 'hour'} onClick=${() => setSpan('hour')}>Hourly, 7 days</button>
        <button type="button" aria-pressed=${span === 'day'} onClick=${() => setSpan('day')}>Daily, 90 days</button>
      </div>
    </div>
    ${error ? html`<${Failure} error=${error} />` : !rows ? html`<${Loading} />` : html`
      <div data-testid="usage-total" class="muted">Requests in this view: <strong>${rows.reduce((n, r) => n + r.requests, 0).toLocaleString('en')}</strong></div>
      <${Chart} title=${`Requests per ${per}`} times=${times} series=${[
        { label: 'allowed', color: '--c-ok', values: rows.map((r) => r.allowed) },
        { label: 'refused (401/403)', color: '--c-403', values: rows.map((r) => r.denied) },
        { label: 'refused (429)', color: '--c-429', values: rows.map((r) => r.rateLimited) },
      ]} />
      <${Chart} title=${`WebSocket sessions per ${per}`} height=${160} times=${times} series=${[
        { label: 'sessions', color: '--c-401', values: rows.map((r) => r.sessions) },
        { label: 'session minutes', color: '--c-503', values: rows.map((r) => Math.round((r.sessionSeconds / 60) * 10) / 10) },
      ]} />`}
  </section>`;
}

/** This month's requests against the plan's monthly quota: what is left at the end of each day. */
export function BurnDown(props: { tenantId: string; quota: number | null }) {
  const now = new Date();
  const first = `${now.toISOString().slice(0, 7)}-01`;
  const [rows, error] = useLoad(() => get<{ data: UsageRow[] }>(`/tenants/${props.tenantId}/usage?granularity=day&from=${first}`).then((r) => r.data), [props.tenantId]);
  if (error) return html`<${Failure} error=${error} />`;
  if (!rows) return html`<${Loading} />`;
  let used = 0;
  const cumulative = rows.map((r) => (used += r.allowed));
  const title = props.quota === null ? `Requests this month: ${used.toLocaleString('en')} (the plan sets no monthly quota)` : `Quota burn-down: ${used.toLocaleString('en')} of ${props.quota.toLocaleString('en')} requests used this month`;
  return html`<${Chart} title=${title} height=${160} times=${rows.map((r) => timeOf(r.period))} series=${[
    { label: 'used', color: '--c-429', values: cumulative },
    ...(props.quota === null ? [] : [{ label: 'left', color: '--c-ok', values: cumulative.map((c) => Math.max(0, props.quota! - c)) }]),
  ]} />`;
}
