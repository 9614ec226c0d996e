import { Counter, Histogram, type CounterConfiguration, type HistogramConfiguration } from './prom-client.ts';

type HistogramSnapshot<T extends string> = Awaited<ReturnType<Histogram<T>['get']>>;

// prom-client's Counter#inc and Histogram#observe suit occasional updates: each call builds a labels object and
// a label-hash string, looks buckets up by number-to-string keys and allocates a fresh value record. On the
// proxy's hot path (five updates per request) that measured ~7 µs per request (bench/README.md). The series
// updated per request are therefore counted here into plain numbers, bound to their labels once, and handed
// to prom-client at scrape time — counters through Counter's own `collect` hook, histograms by a Histogram
// whose exposition is built from those numbers. The registry, names, help and text format stay prom-client's.

/** A counter series bound to its label values: `inc()` adds to a plain number. */
export interface HotCounterChild {
  inc(): void;
}

/** A prom-client Counter with cheap bound children; what they count reaches the counter at every scrape. */
export class HotCounter<T extends string> extends Counter<T> {
  readonly #labelNames: readonly T[];
  readonly #children = new Map<string, { labels: Partial<Record<T, string>>; pending: number; inc(): void }>();

  constructor(config: Omit<CounterConfiguration<T>, 'collect'>) {
    super({
      ...config,
      // prom-client calls `collect` on the counter itself at every scrape.
      collect(this: Counter<T>) {
        (this as HotCounter<T>).#flush();
      },
    });
    this.#labelNames = config.labelNames ?? [];
  }

  #flush(): void {
    for (const child of this.#children.values()) {
      if (child.pending === 0) continue;
      this.inc(child.labels, child.pending);
      child.pending = 0;
    }
  }

  /** The series for these label values (in `labelNames` order), made once and reused. */
  child(...values: string[]): HotCounterChild {
    const id = values.join('\u0000');
    let child = this.#children.get(id);
    if (!child) {
      const labels = Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i]!])) as Partial<Record<T, string>>;
      const made = { labels, pending: 0, inc: () => void made.pending++ };
      this.#children.set(id, (child = made));
    }
    return child;
  }
}

/** A histogram series bound to its label values. */
export class HotSeries {
  readonly labels: Record<string, string>;
  readonly #bounds: readonly number[];
  /** Per bucket (the last one is +Inf), not cumulative. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[], labels: Record<string, string>) {
    this.#bounds = bounds;
    this.labels = labels;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** The latest exemplar of each bucket, once the series has been observed with one (tracing on). */
  exemplars: Array<Exemplar | undefined> | null = null;

  /** Counts `value`; returns its bucket's index. */
  observe(value: number): number {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
    return i;
  }

  /** Counts `value` and keeps it as its bucket's exemplar, with the trace it belongs to (OpenMetrics exemplars). */
  observeWithExemplar(value: number, traceId: string, spanId: string): void {
    const i = this.observe(value);
    (this.exemplars ??= [])[i] = { labelSet: { trace_id: traceId, span_id: spanId }, value, timestamp: Date.now() / 1000 };
  }
}

/** What prom-client prints after a bucket in the OpenMetrics format: ` # {trace_id="…"} value timestamp`. */
interface Exemplar {
  labelSet: Record<string, string>;
  value: number;
  timestamp: number;
}

type Pair = { value: number; metricName: string; labels: Record<string, string | number>; sharedLabels: Record<string, string>; exemplar?: Exemplar | null };

/**
 * A prom-client Histogram whose series count into typed arrays. `series(...)` binds label values once;
 * `observe(v)` records into the unlabelled series. The exposition is the one prom-client's Histogram prints.
 */
export class HotHistogram<T extends string> extends Histogram<T> {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly T[];
  readonly #bounds: number[];
  readonly #series = new Map<string, HotSeries>();
  #unlabelled: HotSeries | null = null;

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#labelNames = config.labelNames ?? [];
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    // prom-client's constructor installs its own `observe` on the instance; unlabelled observations go to the
    // unlabelled series here instead (labelled ones bind their values once with series(...)).
    this.observe = ((...args: unknown[]) => {
      if (args.length !== 1 || typeof args[0] !== 'number') throw new TypeError(`${this.#name}: bind label values with series(...)`);
      (this.#unlabelled ??= this.series()).observe(args[0]);
    }) as Histogram<T>['observe'];
  }

  series(...values: string[]): HotSeries {
    const id = values.join('\u0000');
    let s = this.#series.get(id);
    if (!s) {
      const labels = Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i]!]));
      this.#series.set(id, (s = new HotSeries(this.#bounds, labels)));
    }
    return s;
  }

  #pairs(): Pair[] {
    const out: Pair[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({ value: cumulative, metricName: `${this.#name}_bucket`, labels: { le }, sharedLabels: s.labels, exemplar: s.exemplars?.[i] ?? null });
      });
      out.push({ value: s.count, metricName: `${this.#name}_bucket`, labels: { le: '+Inf' }, sharedLabels: s.labels, exemplar: s.exemplars?.[this.#bounds.length] ?? null });
      out.push({ value: s.sum, metricName: `${this.#name}_sum`, labels: {}, sharedLabels: s.labels });
      out.push({ value: s.count, metricName: `${this.#name}_count`, labels: {}, sharedLabels: s.labels });
    }
    return out;
  }

  /** What the registry formats (the shape of prom-client's own Histogram#getForPromString). */
  async getForPromString() {
    return { name: this.#name, help: this.#help, type: 'histogram' as const, values: this.#pairs(), aggregator: 'sum' as const };
  }

  override async get(): Promise<HistogramSnapshot<T>> {
    const values = this.#pairs().map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return { name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' } as unknown as HistogramSnapshot<T>;
  }

  override reset(): void {
    if (!(#series in this)) return super.reset(); // called by prom-client's constructor, before ours has run
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
      s.exemplars = null;
    }
  }
}
