// An idle keygate gives its garbage and its spare young generation back to the system through V8's memory
// reducer: a few seconds after the traffic stops it runs one or two compacting collections, and the heap goes
// from what start-up or the last burst left (30 MB committed at start) to what is alive (15 MB). Node 24's V8
// starts it only when every allocation rate it tracks is low, and it takes a rate of exactly zero for a high
// one. One of those rates is allocation on the embedder's heap (cppgc), which in Node only node:vm uses: a
// process that never compiles a vm.Script reports zero there, so the reducer never runs, and the heap stays
// as it was until its watchdog fires, 100 s after the last full collection (and again after every burst).
// A vm.Script compiled every 30 s keeps that rate above zero (it decays to exactly zero about 100 s after the
// last allocation), so the other two rates decide, as they did before Node 24. It costs a few microseconds a
// minute. Measured in bench/README.md ("Memory": the memory reducer).

// Only while keygate is idle, though: the reducer's collections are full, compacting ones (several ms each), and
// a busy relay of voice sessions allocates so little on the JS heap that V8 would take it for idle too and pause
// it for them (a voice relay at 250 sessions, 640-byte frames: p99 +5 to +7.5 ms with every-30-s nudges, +2.3
// without; bench/README.md "Voice relay"). Every CHECK_MS the process's CPU time since the last check is read; the
// nudge is made only when it was under IDLE_SHARE of the interval (start-up, traffic or sessions are more), and
// at most every NUDGE_MS.

const CHECK_MS = 2_000;
const NUDGE_MS = 30_000;
const IDLE_SHARE = 0.02;

/** Keeps V8's memory reducer able to run whenever this process goes idle; the timer never holds the process. */
export function keepMemoryReducerArmed(): () => void {
  const { Script } = process.getBuiltinModule('node:vm');
  let last = process.cpuUsage();
  let nudgedAt = -Infinity;
  const timer = setInterval(() => {
    const used = process.cpuUsage(last);
    last = process.cpuUsage();
    const idle = (used.user + used.system) / 1000 < CHECK_MS * IDLE_SHARE;
    const now = performance.now();
    if (!idle || now - nudgedAt < NUDGE_MS) return;
    nudgedAt = now;
    void new Script('');
  }, CHECK_MS).unref();
  return () => clearInterval(timer);
}
