// When a page's data is on screen: every load a page starts (useLoad, the sign-in check) is counted while it is
// in flight, and once none is left and the browser has painted, the document gets `data-ready` and the
// performance timeline a `kg:ready` mark (a route change adds `kg:route` first). The benchmark
// (bench/console.ts) reads them; nothing else depends on them.

let pending = 0;
let generation = 0;

export function loadStarted(): void {
  pending++;
  generation++;
  document.documentElement.removeAttribute('data-ready');
}

export function loadSettled(): void {
  pending--;
  settle();
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
