import { useEffect, useState } from 'preact/hooks';
import { ApiFailure, call, get, fmt, type ApiKey, type Me, type Tenant } from '../api.ts';
import { html } from '../html.ts';
import { Badge, Failure, Loading, ShowOnce, useLoad } from '../ui.ts';

interface Search {
  data: Array<Tenant & { keyCount: number }>;
  scanned: number;
  truncated: boolean;
}

export function TenantsPage(props: { me: Me }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  // Typing waits a moment before searching, so each keystroke is not a request.
  useEffect(() => {
    const t = setTimeout(() => setQuery(q), 250);
    return () => clearTimeout(t);
  }, [q]);
  const [found, error, reload] = useLoad(() => get<Search>(`/tenant-search?q=${encodeURIComponent(query)}&limit=50`), [query]);
  return html`<h1 tabindex="-1">Tenants</h1>
    <div class="row">
      <label for="tenant-q">Search by name or id</label>
      <input id="tenant-q" type="search" value=${q} onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)} />
    </div>
    ${props.me.role === 'write' ? html`<${CreateTenant} onCreated=${reload} />` : null}
    ${error ? html`<${Failure} error=${error} />` : !found ? html`<${Loading} />` : html`
      <div class="scroll"><table data-testid="tenants">
        <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Plan</th><th scope="col">Status</th><th scope="col" class="num">Keys</th></tr></thead>
        <tbody>${found.data.map((t) => html`<tr>
          <td><a href=${`#/tenants/${t.id}`}>${t.name}</a></td><td><code>${t.id}</code></td><td>${t.plan}</td>
          <td><${Badge} ok=${t.status === 'active'}>${t.status}<//></td><td class="num">${fmt.n(t.keyCount)} / ${fmt.n(t.maxKeys)}</td></tr>`)}</tbody>
      </table></div>
      <p class="muted">${found.data.length} shown${found.truncated ? `; searched the first ${fmt.n(found.scanned)} tenants` : ''}.</p>`}`;
}

function CreateTenant(props: { onCreated: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value;
    const plan = (form.elements.namedItem('plan') as HTMLInputElement).value;
    try {
      const created = await call<{ tenant: Tenant; apiKey: ApiKey & { key: string } }>('POST', '/tenants', { name, ...(plan ? { plan } : {}) });
      form.reset();
      setError(null);
      setSecret(created.apiKey.key);
      props.onCreated();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : String(err));
    }
  };
  return html`<details class="panel">
    <summary>Create a tenant</summary>
    <form class="row" onSubmit=${submit}>
      <label for="new-tenant-name">Name</label><input id="new-tenant-name" name="name" required maxlength="100" />
      <label for="new-tenant-plan">Plan</label><input id="new-tenant-plan" name="plan" placeholder="default plan" />
      <button type="submit" class="primary">Create</button>
    </form>
    ${error && html`<${Failure} error=${error} />`}
    <${ShowOnce} secret=${secret} onClose=${() => setSecret(null)} />
  </details>`;
}
