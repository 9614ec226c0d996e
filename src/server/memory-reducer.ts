// An idle keygate gives its garbage and its spare young generation back to the system through V8's memory
// reducer: a few seconds after the traffic stops it runs one or two compacting collections, and the heap goes
// from what start-up or the last burst left (30 MB committed at start) to what is alive (15 MB). Node 24's V8
// starts it only when every allocation rate it tracks is low, and it takes a rate of exactly zero for a high
// one. One of those rates is allocation on the embedder's heap (cppgc), which in Node only node:vm uses: a
// process that never compiles a vm.Script reports zero there, so the reducer never runs, and the heap stays
// as it was until its watchdog fires, 100 s after the last full collection (and again after every burst).
// A vm.Script compiled every 30 s keeps that rate above zero (it decays to exactly zero about 100 s after the
// last allocation), so the other two rates decide, as they did before Node 24. It costs a few microseconds a
// minute and does nothing while keygate is busy: the reducer acts only on an idle heap. Measured in
// bench/README.md ("Memory": the memory reducer).

const NUDGE_MS = 30_000;

/** Keeps V8's memory reducer able to run whenever this process goes idle; the timer never holds the process. */
export function keepMemoryReducerArmed(): () => void {
  const { Script } = process.getBuiltinModule('node:vm');
  const nudge = () => void new Script('');
  nudge();
  const timer = setInterval(nudge, NUDGE_MS).unref();
  return () => clearInterval(timer);
}
