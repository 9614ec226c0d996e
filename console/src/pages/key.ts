import { get, fmt, type ApiKey, type Me } from '../api.ts';
import { html } from '../html.ts';
import { Badge, Failure, Loading, useLoad } from '../ui.ts';
import { AuditTable, readAudit } from './audit-list.ts';
import { UsageCharts } from './usage.ts';

export function KeyPage(props: { tenantId: string; keyId: string; me: Me }) {
  const [found, error] = useLoad(() => get<ApiKey>(`/tenants/${props.tenantId}/api-keys/${props.keyId}`).then((key): { key: ApiKey | null } => ({ key }), (e: unknown) => {
    // A revoked key is gone from the store; its audit trail (and its usage) remains.
    if ((e as { status?: number }).status === 404) return { key: null };
    throw e;
  }), [props.tenantId, props.keyId]);
  // undefined while it is read: the usage charts and the audit trail are fetched meanwhile, not after it.
  const key = found ? found.key : undefined;
  const [audit, auditError] = useLoad(() => readAudit(props.tenantId, (e) => e.keyId === props.keyId), [props.tenantId, props.keyId]);
  return html`<p class="crumbs"><a href="#/tenants">Tenants</a> / <a href=${`#/tenants/${props.tenantId}`}>tenant</a> /</p>
    <h1 tabindex="-1">${key?.name ?? props.keyId}</h1>
    ${error ? html`<${Failure} error=${error} />` : key === undefined ? html`<${Loading} />` : key === null ? html`<p class="muted">This key no longer exists (revoked); its audit trail is below.</p>` : html`
      <dl class="facts">
        <div><dt>Id</dt><dd><code>${key.id}</code></dd></div>
        <div><dt>Prefix</dt><dd><code>${key.prefix}…</code></dd></div>
        <div><dt>Type</dt><dd>${key.keyType}</dd></div>
        <div><dt>Status</dt><dd><${Badge} ok=${key.isActive}>${key.isActive ? 'active' : 'disabled'}<//></dd></div>
        <div><dt>Last used</dt><dd>${fmt.date(key.lastUsedAt)}</dd></div>
        <div><dt>Expires</dt><dd>${fmt.date(key.expiresAt)}</dd></div>
        <div><dt>Limits</dt><dd>${fmt.limit(key.rateLimit.requestsPerMinute)}/min, ${fmt.limit(key.rateLimit.requestsPerDay)}/day</dd></div>
        <div><dt>Permissions</dt><dd>${key.permissions.join(', ')}</dd></div>
        <div><dt>Created by</dt><dd>${key.createdBy}</dd></div>
      </dl>`}
    ${key === null ? null : html`<${UsageCharts} tenantId=${props.tenantId} keyId=${props.keyId} />`}
    <section aria-labelledby="trail-h">
      <h2 id="trail-h">Audit trail</h2>
      ${auditError ? html`<${Failure} error=${auditError} />` : !audit ? html`<${Loading} />` : html`<${AuditTable} entries=${audit.data} tenantId=${props.tenantId} />`}
    </section>`;
}
