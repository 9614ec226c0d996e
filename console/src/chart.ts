import { useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { html } from './html.ts';

export interface Series {
  label: string;
  /** A CSS custom property of style.css (its colour follows light and dark). */
  color: string;
  values: Array<number | null>;
}

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

/**
 * The theme's colours, read once: each read of a computed style recalculates the page's styles when a chart
 * inserted before it has changed the DOM, and a page of four charts paid that a dozen times. Read again after the
 * colour scheme changes.
 */
const colours = new Map<string, string>();
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => colours.clear());
function cssVar(name: string): string {
  let v = colours.get(name);
  if (v === undefined) colours.set(name, (v = getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'));
  return v;
}

/**
 * What the chart draws, as a string: a page that renders again with the same figures (its operator's role
 * answered, a filter typed) keeps its charts instead of building them anew.
 */
const signatureOf = (p: { title: string; times: number[]; series: Series[]; height?: number }): string =>
  `${p.title}|${p.height ?? ''}|${p.times.join(',')}|${p.series.map((s) => `${s.label}:${s.color}:${s.values.join(',')}`).join('|')}`;

/**
 * A time-series chart (uPlot, canvas). `times` are seconds since the epoch. The caption and a text summary of
 * each series' total are what screen readers get; the canvas itself is hidden from them.
 */
export function Chart(props: { title: string; times: number[]; series: Series[]; bars?: boolean; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  // Drawn from the resize observer's first report (after layout, before the frame is painted), not at mount: it
  // carries the box's width, where reading `clientWidth` at mount forced a layout of the whole page for each chart
  // (every chart mounted before had changed it). Later reports redraw it only when the width has changed.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const height = props.height ?? 220;
    let plot: uPlot | null = null;
    let width = 0;
    const draw = (w: number) => {
      const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
      plot = new uPlot(
        {
          width: w,
          height,
          legend: { live: false },
          cursor: { drag: { x: false, y: false } },
          axes: [axis, { ...axis, size: 56, values: (_u: uPlot, splits: number[]) => splits.map((v) => compact.format(v)) }],
          series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: cssVar(s.color), width: 2, fill: props.bars ? cssVar(s.color) + '33' : undefined, points: { show: false } }))],
        },
        [props.times, ...props.series.map((s) => s.values)],
        el,
      );
      el.querySelector('canvas')?.setAttribute('aria-hidden', 'true');
    };
    const resize = new ResizeObserver((entries) => {
      const now = Math.max(280, Math.round(entries[0]!.contentRect.width));
      if (plot && now === width) return;
      width = now;
      if (plot) plot.setSize({ width, height });
      else draw(width);
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot?.destroy();
    };
  }, [signatureOf(props)]);
  const totals = props.series.map((s) => `${s.label}: ${s.values.reduce<number>((a, b) => a + (b ?? 0), 0).toLocaleString('en')}`).join(', ');
  return html`<figure class="chart">
    <figcaption>${props.title} <span class="sr-only">(totals: ${totals})</span></figcaption>
    <div ref=${box} class="chart-box"></div>
  </figure>`;
}
