// When a page's data is on screen: every load a page starts (useLoad, the sign-in check) is counted while it is
// in flight, and once none is left and the browser has painted, the document gets `data-ready` and the
// performance timeline a `kg:ready` mark (a route change adds `kg:route` first). The benchmark
// (bench/console.ts) reads them. The same count lets results that arrive while others are in flight be shown
// together (showTogether).

let pending = 0;
let generation = 0;

export function loadStarted(): void {
  pending++;
  generation++;
  document.documentElement.removeAttribute('data-ready');
}

export function loadSettled(): void {
  pending--;
  if (held.length && held.length >= pending) showHeld();
  settle();
}

/** How long a result may wait for the other loads in flight before it is shown on its own. */
const HOLD_MS = 120;
const held: Array<() => void> = [];
let holding: ReturnType<typeof setTimeout> | undefined;

/**
 * Results arriving while other loads are in flight are shown together, in one render and one layout, once every
 * load in flight has its result (or HOLD_MS after the first arrived): a page whose five loads each re-rendered it
 * on arrival laid out and painted it five times before its data was all there.
 */
export function showTogether(apply: () => void): void {
  held.push(apply);
  holding ??= setTimeout(showHeld, HOLD_MS);
  if (held.length >= pending) showHeld();
}

function showHeld(): void {
  clearTimeout(holding);
  holding = undefined;
  for (const apply of held.splice(0)) apply();
}

/** A new route: its page may need nothing new (all of it cached), so readiness is checked again. */
export function routeChanged(): void {
  performance.mark('kg:route');
  generation++;
  document.documentElement.removeAttribute('data-ready');
  settle();
}

/**
 * Called once a load's result is committed to the DOM. Loads of components that result mounts start in the same
 * commit (useLoad starts them in a layout effect), so `pending` already counts them; the mark waits for the
 * paint after this commit (a timer set from an animation frame runs after that frame is drawn).
 */
function settle(): void {
  const at = generation;
  requestAnimationFrame(() =>
    setTimeout(() => {
      if (pending !== 0 || at !== generation) return;
      performance.mark('kg:ready');
      document.documentElement.setAttribute('data-ready', location.hash || '#/fleet');
    }),
  );
}
