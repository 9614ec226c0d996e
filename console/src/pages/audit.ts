import { useState } from 'preact/hooks';
import { html } from '../html.ts';
import { Failure, Loading, useLoad } from '../ui.ts';
import { AuditTable, readAudit } from './audit-list.ts';

/** A tenant's audit log (each tenant has its own), or the platform's, filtered by action, actor and key. */
export function AuditPage(props: { tenantId: string }) {
  const [tenant, setTenant] = useState(props.tenantId);
  const [filters, setFilters] = useState({ action: '', actor: '', keyId: '' });
  const submit = (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value.trim();
    setFilters({ action: v('action'), actor: v('actor'), keyId: v('keyId') });
    setTenant(v('tenant'));
    if (v('tenant') !== props.tenantId) history.replaceState(null, '', `#/audit${v('tenant') ? `/${v('tenant')}` : ''}`);
  };
  const [found, error] = useLoad(
    () => readAudit(tenant || null, (e) => (!filters.action || e.action.includes(filters.action)) && (!filters.actor || e.actor.includes(filters.actor)) && (!filters.keyId || e.keyId === filters.keyId)),
    [tenant, filters],
  );
  return html`<h1 tabindex="-1">Audit log</h1>
    <form class="filters" onSubmit=${submit}>
      <div><label for="audit-tenant">Tenant id (empty: the platform's log)</label><input id="audit-tenant" name="tenant" value=${tenant} pattern="ten_[0-9A-Za-z]{26}" /></div>
      <div><label for="audit-action">Action contains</label><input id="audit-action" name="action" placeholder="key.revoked" /></div>
      <div><label for="audit-actor">Actor contains</label><input id="audit-actor" name="actor" placeholder="operator:alice" /></div>
      <div><label for="audit-key">Key id</label><input id="audit-key" name="keyId" /></div>
      <div><button type="submit" class="primary">Show</button></div>
    </form>
    <p class="muted" data-testid="audit-scope">${tenant ? html`Tenant <code>${tenant}</code>'s audit log.` : "The platform's audit log: writes that belong to no tenant (webhook endpoints). Each tenant has its own: enter its id, or open it from the tenant's page."}</p>
    ${error ? html`<${Failure} error=${error} />` : !found ? html`<${Loading} />` : html`
      <${AuditTable} entries=${found.data} tenantId=${tenant || null} />
      ${found.more ? html`<p class="muted">Searched the newest 500 entries.</p>` : null}`}`;
}
