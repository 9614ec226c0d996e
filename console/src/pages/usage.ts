import { useState } from 'preact/hooks';
import { get, type UsageRow } from '../api.ts';
import { Chart } from '../chart.ts';
import { html } from '../html.ts';
import { Failure, Loading, useLoad } from '../ui.ts';

const DAY_MS = 86_400_000;
/** Colours of the refusal codes' series, the most frequent first (the rest are summed as "other codes"). */
const CODE_COLORS = ['--c-429', '--c-403', '--c-401', '--c-503', '--c-a', '--c-b'];

/** The codes refused in this view, most frequent first, with their totals. */
function codesOf(rows: UsageRow[]): Array<[string, number]> {
  const totals = new Map<string, number>();
  for (const r of rows) for (const [code, n] of Object.entries(r.refusals ?? {})) totals.set(code, (totals.get(code) ?? 0) + n);
  return [...totals].sort((a, b) => b[1] - a[1]);
}

function RefusalsByCode(props: { rows: UsageRow[]; times: number[]; per: string }) {
  const codes = codesOf(props.rows);
  if (codes.length === 0) return html`<p class="muted" data-testid="refusals-by-code">No refusals in this view.</p>`;
  const shown = codes.slice(0, CODE_COLORS.length - 1);
  const rest = codes.slice(shown.length).map(([c]) => c);
  const series = shown.map(([code], i) => ({ label: code, color: CODE_COLORS[i]!, values: props.rows.map((r) => r.refusals?.[code] ?? 0) }));
  if (rest.length) series.push({ label: 'other codes', color: CODE_COLORS.at(-1)!, values: props.rows.map((r) => rest.reduce((n, c) => n + (r.refusals?.[c] ?? 0), 0)) });
  return html`<${Chart} title=${`Refusals by code per ${props.per}`} height=${160} times=${props.times} series=${series} />
    <p class="muted" data-testid="refusals-by-code">Refusals in this view: ${codes.map(([code, n], i) => html`${i ? ', ' : ''}<code>${code}</code> ${n.toLocaleString('en')}`)}</p>`;
}
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
      ${props.keyId ? null : html`<${RefusalsByCode} rows=${rows} times=${times} per=${per} />`}
      <${Chart} title=${`WebSocket sessions per ${per}`} height=${160} times=${times} series=${[
        { label: 'sessions', color: '--c-401', values: rows.map((r) => r.sessions) },
        { label: 'session minutes', color: '--c-503', values: rows.map((r) => Math.round((r.sessionSeconds / 60) * 10) / 10) },
      ]} />`}
  </section>`;
}

/** This month's requests against the plan's monthly quota: what is left at the end of each day. */
export function BurnDown(props: { tenantId: string; quota: number | null | undefined }) {
  const now = new Date();
  const first = `${now.toISOString().slice(0, 7)}-01`;
  const [rows, error] = useLoad(() => get<{ data: UsageRow[] }>(`/tenants/${props.tenantId}/usage?granularity=day&from=${first}`).then((r) => r.data), [props.tenantId]);
  if (error) return html`<${Failure} error=${error} />`;
  // undefined: the plan (and so the quota) is still being read.
  if (!rows || props.quota === undefined) return html`<${Loading} />`;
  let used = 0;
  const cumulative = rows.map((r) => (used += r.allowed));
  const title = props.quota === null ? `Requests this month: ${used.toLocaleString('en')} (the plan sets no monthly quota)` : `Quota burn-down: ${used.toLocaleString('en')} of ${props.quota.toLocaleString('en')} requests used this month`;
  return html`<${Chart} title=${title} height=${160} times=${rows.map((r) => timeOf(r.period))} series=${[
    { label: 'used', color: '--c-429', values: cumulative },
    ...(props.quota === null ? [] : [{ label: 'left', color: '--c-ok', values: cumulative.map((c) => Math.max(0, (props.quota as number) - c)) }]),
  ]} />`;
}
