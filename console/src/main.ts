import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, get, setSignedOutHandler, type Me } from './api.ts';
import { html } from './html.ts';
import { loadSettled, loadStarted, routeChanged } from './ready.ts';
import { AuditPage } from './pages/audit.ts';
import { FleetPage } from './pages/fleet.ts';
import { KeyPage } from './pages/key.ts';
import { Login } from './pages/login.ts';
import { TenantPage } from './pages/tenant.ts';
import { TenantsPage } from './pages/tenants.ts';
import { WebhooksPage } from './pages/webhooks.ts';
import './style.css';

// The app's modules are evaluated: what the benchmark subtracts from navigation to see loading versus data.
performance.mark('kg:boot');

/** Routes live in the fragment (#/tenants/…), so the server serves one page and the back button works. */
function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, '') || 'fleet').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => {
      setRoute(parse());
      routeChanged();
      // Focus the page's heading, so keyboard and screen-reader users land on the new page.
      requestAnimationFrame(() => document.querySelector<HTMLElement>('main h1')?.focus());
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV = [
  ['fleet', 'Fleet'],
  ['tenants', 'Tenants'],
  ['audit', 'Audit log'],
  ['webhooks', 'Webhooks'],
] as const;

function Page(props: { route: string[]; me: Me }) {
  const [section, id, sub, subId] = props.route;
  if (section === 'tenants' && id && sub === 'keys' && subId) return html`<${KeyPage} tenantId=${id} keyId=${subId} me=${props.me} />`;
  if (section === 'tenants' && id) return html`<${TenantPage} tenantId=${id} me=${props.me} />`;
  if (section === 'tenants') return html`<${TenantsPage} me=${props.me} />`;
  if (section === 'audit') return html`<${AuditPage} tenantId=${id ?? ''} />`;
  if (section === 'webhooks') return html`<${WebhooksPage} me=${props.me} />`;
  return html`<${FleetPage} />`;
}

// The session is checked as soon as the app runs, beside (not before) the first page's own calls.
loadStarted();
const session: Promise<Me | null> = get<Me>('/whoami').catch(() => null);

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const route = useRoute();
  useEffect(() => {
    setSignedOutHandler(() => setMe(null));
    session.then(setMe).finally(loadSettled);
  }, []);
  useEffect(() => {
    if (me && location.pathname !== '/console' && location.pathname !== '/console/') history.replaceState(null, '', `/console${location.hash || '#/fleet'}`);
    if (me === null && location.pathname !== '/console/login') history.replaceState(null, '', `/console/login${location.hash}`);
  }, [me]);
  const onLogin = location.pathname.startsWith('/console/login');
  if (me === null) return html`<${Login} onSignedIn=${setMe} />`;
  if (me === undefined && onLogin) return html`<main id="main"><p role="status">Loading…</p></main>`;
  // The page's data is fetched while the session is checked, not after: until the check answers the page is
  // shown as to a read operator (no write buttons). Without a session both answer 401, and sign-in is shown.
  const who: Me = me ?? { name: '…', role: 'read' };
  const signOut = async () => {
    await call('POST', '/console/logout').catch(() => {});
    setMe(null);
  };
  return html`<a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="#/fleet">keygate</a>
      <nav aria-label="Sections">
        <ul>
          ${NAV.map(([path, label]) => html`<li><a href=${`#/${path}`} aria-current=${route[0] === path ? 'page' : undefined}>${label}</a></li>`)}
        </ul>
      </nav>
      <div class="who">
        <span data-testid="operator">${who.name} <span class="badge">${who.role}</span></span>
        <button type="button" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1"><${Page} route=${route} me=${who} /></main>`;
}

render(html`<${App} />`, document.getElementById('app')!);
