import { useState } from 'preact/hooks';
import { call, get, fmt, type ApiKey, type Me, type Page, type Plan, type Tenant } from '../api.ts';
import { html } from '../html.ts';
import { Badge, Confirm, Failure, Loading, ShowOnce, useLoad } from '../ui.ts';
import { BurnDown, UsageCharts } from './usage.ts';

interface Summary {
  tenant: Tenant;
  plan: Plan;
  keyCount: number;
}

export function TenantPage(props: { tenantId: string; me: Me }) {
  // The summary, the charts' series and the keys are fetched at once, not one after another: only the burn-down
  // waits for the plan's quota (its series is fetched meanwhile).
  const [summary, error] = useLoad(() => get<Summary>(`/tenants/${props.tenantId}/summary`), [props.tenantId]);
  if (error) return html`<h1 tabindex="-1">Tenant</h1><${Failure} error=${error} />`;
  const tenant = summary?.tenant;
  const plan = summary?.plan;
  return html`<p class="crumbs"><a href="#/tenants">Tenants</a> /</p>
    <h1 tabindex="-1">${tenant?.name ?? 'Tenant'}</h1>
    ${!summary || !tenant || !plan ? html`<${Loading} />` : html`<dl class="facts">
      <div><dt>Id</dt><dd><code>${tenant.id}</code></dd></div>
      <div><dt>Plan</dt><dd>${plan.name}</dd></div>
      <div><dt>Status</dt><dd><${Badge} ok=${tenant.status === 'active'}>${tenant.status}<//></dd></div>
      <div><dt>Keys</dt><dd>${fmt.n(summary.keyCount)} of ${fmt.n(tenant.maxKeys)}</dd></div>
      <div><dt>Plan limits</dt><dd>${fmt.limit(plan.requestsPerMinute.max)}/min, ${fmt.limit(plan.requestsPerDay.max)}/day</dd></div>
      <div><dt>Audit</dt><dd><a href=${`#/audit/${tenant.id}`}>Audit log</a></dd></div>
    </dl>`}
    <${UsageCharts} tenantId=${props.tenantId} />
    <${BurnDown} tenantId=${props.tenantId} quota=${plan ? plan.requestsPerMonth.max : undefined} />
    <${Keys} tenantId=${props.tenantId} me=${props.me} />`;
}

/** Keys per page of the table (and of the one quota-use read beside it). */
const KEYS_PER_PAGE = 50;

type Pending = { kind: 'rotate' | 'revoke' | 'disable' | 'enable'; key: ApiKey } | null;

function Keys(props: { tenantId: string; me: Me }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [pending, setPending] = useState<Pending>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [page, error, reload] = useLoad(() => get<Page<ApiKey>>(`/tenants/${props.tenantId}/api-keys?limit=${KEYS_PER_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), [props.tenantId, cursor]);
  const month = new Date().toISOString().slice(0, 7);
  const ids = page?.data.map((k) => k.id).join(',') ?? '';
  // This month's requests of every key on the page, in one call (for the quota-use column).
  const [used] = useLoad(
    () => (ids ? get<{ data: Array<{ keyId: string; requests: number }> }>(`/tenants/${props.tenantId}/keys-usage?period=${month}&keyIds=${ids}`).then((r) => new Map(r.data.map((u) => [u.keyId, u.requests]))) : Promise.resolve(new Map<string, number>())),
    [props.tenantId, ids],
  );
  const base = `/tenants/${props.tenantId}/api-keys`;
  const act = async () => {
    if (!pending) return;
    const { kind, key } = pending;
    if (kind === 'revoke') await call('DELETE', `${base}/${key.id}`);
    else if (kind === 'rotate') setSecret((await call<{ key: string }>('POST', `${base}/${key.id}/rotate`, { gracePeriodSeconds: 0 })).key);
    else await call('PATCH', `${base}/${key.id}`, { isActive: kind === 'enable' });
    reload();
  };
  const f = filter.toLowerCase();
  const shown = page?.data.filter((k) => !f || (k.name ?? '').toLowerCase().includes(f) || k.prefix.toLowerCase().includes(f) || k.id.toLowerCase().includes(f)) ?? [];
  const write = props.me.role === 'write';
  return html`<section aria-labelledby="keys-h">
    <h2 id="keys-h">API keys</h2>
    <div class="row">
      <label for="key-filter">Filter by name, prefix or id</label>
      <input id="key-filter" type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
    </div>
    ${write ? html`<${CreateKey} tenantId=${props.tenantId} onCreated=${(k: string) => { setSecret(k); reload(); }} />` : null}
    ${error ? html`<${Failure} error=${error} />` : !page ? html`<${Loading} />` : html`
      <div class="scroll"><table data-testid="keys">
        <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Status</th><th scope="col">Last used</th>
          <th scope="col">Limits</th><th scope="col">Requests this month / quota</th>${write ? html`<th scope="col">Actions</th>` : null}</tr></thead>
        <tbody>${shown.map((k) => html`<tr data-key=${k.id}>
          <td><a href=${`#/tenants/${props.tenantId}/keys/${k.id}`}>${k.name ?? k.id}</a></td>
          <td><code>${k.prefix}…</code></td>
          <td><${Badge} ok=${k.isActive}>${k.isActive ? 'active' : 'disabled'}<//></td>
          <td>${fmt.date(k.lastUsedAt)}</td>
          <td>${fmt.limit(k.rateLimit.requestsPerMinute)}/min, ${fmt.limit(k.rateLimit.requestsPerDay)}/day</td>
          <td>${quotaUse(used?.get(k.id), k.quota?.requestsPerMonth ?? null)}</td>
          ${write ? html`<td class="actions">
            <button type="button" onClick=${() => setPending({ kind: 'rotate', key: k })}>Rotate</button>
            <button type="button" onClick=${() => setPending({ kind: k.isActive ? 'disable' : 'enable', key: k })}>${k.isActive ? 'Disable' : 'Enable'}</button>
            <button type="button" class="danger" onClick=${() => setPending({ kind: 'revoke', key: k })}>Revoke</button>
          </td>` : null}
        </tr>`)}</tbody>
      </table></div>
      <div class="row">
        ${cursor ? html`<button type="button" onClick=${() => setCursor(null)}>First page</button>` : null}
        ${page.nextCursor ? html`<button type="button" onClick=${() => setCursor(page.nextCursor)}>Next page</button>` : null}
      </div>`}
    <${Confirm} open=${pending !== null} onClose=${() => setPending(null)} onConfirm=${act}
      title=${pending ? `${pending.kind[0]!.toUpperCase()}${pending.kind.slice(1)} ${pending.key.name ?? pending.key.id}?` : ''}
      action=${pending ? `${pending.kind[0]!.toUpperCase()}${pending.kind.slice(1)} key` : ''}
      message=${pending?.kind === 'revoke' ? 'The key stops working at once, everywhere, and cannot be restored.' : pending?.kind === 'rotate' ? 'The current value stops working at once; the new value is shown once.' : pending?.kind === 'disable' ? 'Requests with this key are refused until it is enabled again.' : 'Requests with this key are accepted again.'} />
    <${ShowOnce} secret=${secret} onClose=${() => setSecret(null)} />
  </section>`;
}

function quotaUse(used: number | undefined, quota: number | null): string {
  if (used === undefined) return '…';
  if (quota === null) return `${fmt.n(used)} (no quota)`;
  return `${fmt.n(used)} / ${fmt.n(quota)} (${Math.min(100, Math.round((used / quota) * 1000) / 10)}%)`;
}

function CreateKey(props: { tenantId: string; onCreated: (key: string) => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value;
    try {
      const created = await call<{ key: string }>('POST', `/tenants/${props.tenantId}/api-keys`, { name });
      form.reset();
      setError(null);
      props.onCreated(created.key);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return html`<details class="panel">
    <summary>Create a key</summary>
    <form class="row" onSubmit=${submit}>
      <label for="new-key-name">Name</label><input id="new-key-name" name="name" required maxlength="100" />
      <button type="submit" class="primary">Create key</button>
    </form>
    ${error && html`<${Failure} error=${error} />`}
  </details>`;
}
