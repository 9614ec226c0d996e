/**
 * With several worker processes (server/workers.ts) a scrape reaches one of them, chosen by the connection;
 * `/metrics` must still describe the whole group. A worker sets this to ask the primary for the group's
 * metrics, aggregated by prom-client (counters and histograms summed, gauges by their aggregator). The group
 * answer is the classic text format: exemplars belong to one process and are not aggregated.
 */
let group: (() => Promise<string>) | null = null;

export function scrapeGroupWith(scrape: () => Promise<string>): void {
  group = scrape;
}

/** The group's scrape in a worker; null in a single process. */
export const groupScrape = (): (() => Promise<string>) | null => group;
