import { get, fmt, type AuditEntry, type Page } from '../api.ts';
import { html } from '../html.ts';

/** Audit pages read per view (100 entries each): the newest 500 entries are searched. */
const PAGES = 5;

/** A tenant's audit log, or the platform's (`tenantId` null: writes that belong to no tenant, such as webhook endpoints). */
export async function readAudit(tenantId: string | null, keep: (e: AuditEntry) => boolean): Promise<{ data: AuditEntry[]; more: boolean }> {
  const out: AuditEntry[] = [];
  let cursor: string | null = null;
  const path = tenantId ? `/tenants/${tenantId}/audit-log` : '/audit-log';
  for (let i = 0; i < PAGES; i++) {
    const page: Page<AuditEntry> = await get<Page<AuditEntry>>(`${path}?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.data.filter(keep));
    cursor = page.nextCursor;
    if (!cursor) return { data: out, more: false };
  }
  return { data: out, more: true };
}

export function AuditTable(props: { entries: AuditEntry[]; tenantId: string | null }) {
  if (props.entries.length === 0) return html`<p class="muted">No matching entries.</p>`;
  // Focusable, so a keyboard can scroll it (the platform's entries hold no link to tab to).
  return html`<div class="scroll" tabindex="0" role="region" aria-label="Audit entries"><table data-testid="audit">
    <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Key</th><th scope="col">Details</th></tr></thead>
    <tbody>${props.entries.map((e) => html`<tr>
      <td>${fmt.date(e.at)}</td><td>${e.action}</td><td>${e.actor}</td>
      <td>${e.keyId && props.tenantId ? html`<a href=${`#/tenants/${props.tenantId}/keys/${e.keyId}`}><code>${e.keyId}</code></a>` : '—'}</td>
      <td><code class="details">${JSON.stringify(e.details)}</code></td></tr>`)}</tbody>
  </table></div>`;
}
