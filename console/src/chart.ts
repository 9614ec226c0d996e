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

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

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
  // In the commit that mounts it, so the chart is drawn in the same frame as the page's figures.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    let width = Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: props.height ?? 220,
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
        axes: [axis, { ...axis, size: 56, values: (_u: uPlot, splits: number[]) => splits.map((v) => compact.format(v)) }],
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: cssVar(s.color), width: 2, fill: props.bars ? cssVar(s.color) + '33' : undefined, points: { show: false } }))],
      },
      [props.times, ...props.series.map((s) => s.values)],
      el,
    );
    el.querySelector('canvas')?.setAttribute('aria-hidden', 'true');
    // The observer also reports the size it starts with: the chart is redrawn only when the width has changed.
    const resize = new ResizeObserver(() => {
      const now = Math.max(280, el.clientWidth);
      if (now === width) return;
      width = now;
      plot.setSize({ width, height: props.height ?? 220 });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [signatureOf(props)]);
  const totals = props.series.map((s) => `${s.label}: ${s.values.reduce<number>((a, b) => a + (b ?? 0), 0).toLocaleString('en')}`).join(', ');
  return html`<figure class="chart">
    <figcaption>${props.title} <span class="sr-only">(totals: ${totals})</span></figcaption>
    <div ref=${box} class="chart-box"></div>
  </figure>`;
}
