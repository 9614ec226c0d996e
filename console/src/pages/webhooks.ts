import { useState } from 'preact/hooks';
import { call, get, fmt, type Me } from '../api.ts';
import { html } from '../html.ts';
import { Badge, Confirm, Failure, Loading, useLoad } from '../ui.ts';

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  failingSince: string | null;
  disabledAt: string | null;
}
interface Delivery {
  eventId: string;
  eventType: string;
  attempt: number;
  status: number | null;
  ok: boolean;
  latencyMs: number;
  error: string | null;
  at: string;
}
interface DeadLetter {
  key: string;
  endpointId: string;
  event: { id: string; type: string; createdAt?: string };
  attempts: number;
}

const DEAD_SHOWN = 25;

/** The platform's webhook endpoints (admin API), their recent deliveries and dead letters. */
export function WebhooksPage(props: { me: Me }) {
  const [endpoints, error, reloadEndpoints] = useLoad(() => get<{ data: Endpoint[] }>('/webhooks').then((r) => r.data), []);
  const [enable, setEnable] = useState<Endpoint | null>(null);
  const [dead, deadError, reloadDead] = useLoad(() => get<{ data: DeadLetter[] }>('/webhooks/dead-letters').then((r) => r.data), []);
  const [open, setOpen] = useState<string | null>(null);
  const [redeliver, setRedeliver] = useState<DeadLetter | null>(null);
  // The newest few are drawn at first: a flood of dead letters (up to 1,000 per endpoint) is a long table.
  const [allDead, setAllDead] = useState(false);
  const shownDead = dead && !allDead ? dead.slice(0, DEAD_SHOWN) : dead;
  return html`<h1 tabindex="-1">Webhooks</h1>
    <section aria-labelledby="ep-h">
      <h2 id="ep-h">Endpoints</h2>
      ${error ? html`<${Failure} error=${error} />` : !endpoints ? html`<${Loading} />` : endpoints.length === 0 ? html`<p class="muted">No platform endpoints.</p>` : html`
        <div class="scroll"><table>
          <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Health</th><th scope="col">Deliveries</th></tr></thead>
          <tbody>${endpoints.map((e) => html`<tr>
            <td><code>${e.url}</code></td><td>${e.events.join(', ')}</td>
            <td><${Badge} ok=${!e.failingSince && !e.disabledAt}>${e.disabledAt ? 'disabled' : e.failingSince ? `failing since ${fmt.date(e.failingSince)}` : 'healthy'}<//></td>
            <td class="actions"><button type="button" aria-expanded=${open === e.id} onClick=${() => setOpen(open === e.id ? null : e.id)}>Recent deliveries</button>
              ${props.me.role === 'write' && e.disabledAt ? html`<button type="button" onClick=${() => setEnable(e)}>Enable</button>` : null}</td>
          </tr>`)}</tbody>
        </table></div>
        ${open ? html`<${Deliveries} endpointId=${open} />` : null}`}
    </section>
    <section aria-labelledby="dead-h">
      <h2 id="dead-h">Dead letters</h2>
      ${deadError ? html`<${Failure} error=${deadError} />` : !dead ? html`<${Loading} />` : dead.length === 0 ? html`<p class="muted">None.</p>` : html`
        <div class="scroll"><table>
          <thead><tr><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Endpoint</th><th scope="col" class="num">Attempts</th>${props.me.role === 'write' ? html`<th scope="col">Action</th>` : null}</tr></thead>
          <tbody>${shownDead!.map((d) => html`<tr>
            <td><code>${d.event.id}</code></td><td>${d.event.type}</td><td><code>${d.endpointId}</code></td><td class="num">${d.attempts}</td>
            ${props.me.role === 'write' ? html`<td><button type="button" onClick=${() => setRedeliver(d)}>Redeliver</button></td>` : null}
          </tr>`)}</tbody>
        </table></div>
        ${dead.length > DEAD_SHOWN && !allDead ? html`<p class="row"><span class="muted">The newest ${DEAD_SHOWN} of ${fmt.n(dead.length)}.</span> <button type="button" onClick=${() => setAllDead(true)}>Show all</button></p>` : null}`}
    </section>
    <${Confirm} open=${enable !== null} onClose=${() => setEnable(null)} title="Enable this endpoint again?" action="Enable"
      message=${enable ? `Deliveries to ${enable.url} start again; what was dead-lettered meanwhile can be redelivered.` : ''}
      onConfirm=${async () => {
        await call('POST', `/webhooks/${enable!.id}/enable`);
        reloadEndpoints();
      }} />
    <${Confirm} open=${redeliver !== null} onClose=${() => setRedeliver(null)} title="Redeliver this event?" action="Redeliver"
      message=${redeliver ? `${redeliver.event.type} ${redeliver.event.id} is sent again to ${redeliver.endpointId}, with a fresh retry window.` : ''}
      onConfirm=${async () => {
        await call('POST', `/webhooks/dead-letters/${encodeURIComponent(redeliver!.key)}/redeliver`);
        reloadDead();
      }} />`;
}

function Deliveries(props: { endpointId: string }) {
  const [rows, error] = useLoad(() => get<{ data: Delivery[] }>(`/webhooks/${props.endpointId}/deliveries?limit=20`).then((r) => r.data), [props.endpointId]);
  if (error) return html`<${Failure} error=${error} />`;
  if (!rows) return html`<${Loading} />`;
  return html`<h3>Recent deliveries to <code>${props.endpointId}</code></h3>
    ${rows.length === 0 ? html`<p class="muted">None yet.</p>` : html`<div class="scroll"><table>
      <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col" class="num">Attempt</th><th scope="col">Status</th><th scope="col" class="num">ms</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr><td>${fmt.date(r.at)}</td><td>${r.eventType}</td><td class="num">${r.attempt}</td>
        <td><${Badge} ok=${r.ok}>${r.status ?? r.error ?? 'no answer'}<//></td><td class="num">${r.latencyMs}</td></tr>`)}</tbody>
    </table></div>`}`;
}
