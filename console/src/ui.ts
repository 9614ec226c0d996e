import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure } from './api.ts';
import { html } from './html.ts';
import { loadSettled, loadStarted, showTogether } from './ready.ts';

/**
 * Loads `load()` when `deps` change: [value, error, reload]. The load starts in a layout effect, so loads of
 * components mounted by a parent's result start in the same commit (no frame between them), and it counts as
 * in flight (ready.ts) until its result is on the page.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | null, string | null, () => void] {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const settle = useRef<(() => void) | null>(null);
  useLayoutEffect(() => {
    let live = true;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      loadSettled();
    };
    loadStarted();
    setError(null);
    load().then(
      (v) =>
        showTogether(() => {
          if (!live) return done();
          settle.current = done;
          setValue(v);
        }),
      (e: unknown) =>
        showTogether(() => {
          if (!live) return done();
          settle.current = done;
          setError(e instanceof ApiFailure ? `${e.code}: ${e.message}` : String(e));
        }),
    );
    return () => {
      live = false;
      done();
    };
  }, [...deps, tick]);
  // The result is committed: what it mounted has started its own loads by now.
  useLayoutEffect(() => {
    settle.current?.();
    settle.current = null;
  }, [value, error]);
  return [value, error, () => setTick((t) => t + 1)];
}

export const Loading = () => html`<p class="muted" role="status">Loading…</p>`;
export const Failure = (p: { error: string }) => html`<p class="error" role="alert">${p.error}</p>`;

/** A modal dialog (native <dialog>: focus is trapped and Escape closes it). */
export function Dialog(props: { title: string; open: boolean; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return html`<dialog ref=${ref} aria-labelledby="dialog-title" onClose=${props.onClose}>
    <h2 id="dialog-title">${props.title}</h2>
    ${props.open ? props.children : null}
  </dialog>`;
}

/** Asks before a destructive action; `onConfirm` runs it (its error is shown in the dialog). */
export function Confirm(props: { title: string; message: string; action: string; open: boolean; onClose: () => void; onConfirm: () => Promise<void> }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (e) {
      setError(e instanceof ApiFailure ? `${e.code}: ${e.message}` : String(e));
    } finally {
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${props.title} open=${props.open} onClose=${props.onClose}>
    <p>${props.message}</p>
    ${error && html`<${Failure} error=${error} />`}
    <div class="row">
      <button type="button" class="danger" disabled=${busy} onClick=${run}>${props.action}</button>
      <button type="button" onClick=${props.onClose}>Cancel</button>
    </div>
  <//>`;
}

/** A secret shown once (a new key), with the API's warning. */
export function ShowOnce(props: { secret: string | null; onClose: () => void }) {
  return html`<${Dialog} title="Store this key securely" open=${props.secret !== null} onClose=${props.onClose}>
    <p>It will not be shown again.</p>
    <p><code class="secret" data-testid="new-key">${props.secret}</code></p>
    <button type="button" onClick=${props.onClose}>Done</button>
  <//>`;
}

export const Badge = (p: { ok: boolean; children: ComponentChildren }) => html`<span class=${p.ok ? 'badge ok' : 'badge bad'}>${p.children}</span>`;
