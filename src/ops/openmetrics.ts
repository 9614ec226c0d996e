import { Registry, type Metric, type OpenMetricsContentType } from './prom-client.ts';

// The OpenMetrics exposition of keygate's registry, for scrapers that ask for it (Prometheus sends
// `Accept: application/openmetrics-text` first): the one format that carries exemplars, which is how a
// latency bucket points at a trace. prom-client formats it; what this adds is a view of the registry.
//
// Why a view and not `registry.setContentType()`: prom-client's OpenMetrics pass renames every registered
// counter in place (`x_total` becomes `x`, printed back as `x_total`), which would then print the classic
// format's counters without their suffix, and it reads the content type after an await, so two scrapes in
// different formats at once would mix. The view holds each metric by reference and does the renaming on the
// copy it hands over.

export const OPENMETRICS_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

type Snapshot = { name: string; type: string };
/** What the registry holds: a metric, and for keygate's hot histograms the exposition's own getter. */
type Source = { name: string; get(): Promise<Snapshot>; getForPromString?: () => Promise<Snapshot> };

/** Whether a scrape's Accept header asks for OpenMetrics (any version; keygate serves 1.0.0). */
export const wantsOpenMetrics = (accept: string | undefined): boolean => accept !== undefined && accept.includes('application/openmetrics-text');

export function openMetricsView(registry: Registry): () => Promise<string> {
  return () => {
    const view = new Registry<OpenMetricsContentType>();
    view.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const metric of registry.getMetricsAsArray() as unknown as Source[]) {
      const get = async (): Promise<Snapshot> => {
        const snapshot = metric.getForPromString ? await metric.getForPromString() : await metric.get();
        return snapshot.type === 'counter' ? { ...snapshot, name: snapshot.name.replace(/_total$/, '') } : snapshot;
      };
      view.registerMetric({ name: metric.name, get } as unknown as Metric);
    }
    return view.metrics();
  };
}
