/**
 * One uPlot chart of a RateWindow. uPlot draws on a canvas, which a screen
 * reader cannot read, so the figure's label says the newest values in words
 * and the caption shows them too.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RateWindow } from './rates.js';

export interface RateChartProps {
  /** Stable id (headings and test hooks): "cpu", "nic", "disk". */
  id: string;
  title: string;
  window: RateWindow;
  /** Bumped on every new sample, so the chart redraws. */
  version: number;
  /** Series labels, in the window's order. */
  labels: readonly string[];
  /** A value as a person reads it ("25.0 %", "1.2 MiB/s"). */
  format: (value: number) => string;
  /** The least top of the y scale (10 for percent, 1 KiB for bytes). */
  floor: number;
  /** Seconds shown, the newest at the right. */
  spanSeconds: number;
  /** Why the chart has no data (no metrics stage, a backend error), if so. */
  problem?: string;
}

const COLOURS = ['#2563eb', '#d97706', '#059669'];
const HEIGHT = 160;

export function RateChart(props: RateChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { format, labels } = props;

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const width = Math.max(240, element.clientWidth);
    // The shell's colours (light or dark from the OS): a canvas does not inherit CSS.
    const css = getComputedStyle(element);
    const ink = css.getPropertyValue('--fg').trim() || '#1b1d21';
    const grid = css.getPropertyValue('--line').trim() || '#d9dce1';
    const axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const chart = new uPlot(
      {
        width,
        height: HEIGHT,
        series: [{}, ...labels.map((label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 1.5, value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)) }))],
        scales: {
          // The last `spanSeconds`, the newest point at the right edge: the line grows from the right as samples come.
          x: { time: true, range: (_u: uPlot, _min: number, max: number) => { const end = Number.isFinite(max) ? max : Date.now() / 1000; return [end - props.spanSeconds, end]; } },
          // From zero, with room above the highest point; an idle guest's flat line sits at the bottom of a readable scale.
          y: { range: (_u: uPlot, _min: number, max: number) => [0, Math.max(Number.isFinite(max) ? max * 1.15 : 0, props.floor)] },
        },
        axes: [
          // Clock times, one row, far enough apart to read.
          { ...axis, space: 90, values: (_u: uPlot, ticks: number[]) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })) },
          { ...axis, size: 90, values: (_u: uPlot, ticks: number[]) => ticks.map(format) },
        ],
        // The caption says the values; uPlot's legend would repeat it.
        legend: { show: false },
      },
      props.window.data() as uPlot.AlignedData,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(240, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [props.window, props.spanSeconds, props.floor, labels, format]);

  useEffect(() => {
    plot.current?.setData(props.window.data() as uPlot.AlignedData);
  }, [props.version, props.window]);

  const latest = labels.map((label, i) => {
    const value = props.window.latest(props.window.names[i]);
    return `${label} ${value === null ? 'no data yet' : format(value)}`;
  });
  const summary = props.problem ?? latest.join(', ');
  // The caption doubles as the legend: each series' colour before its newest value.
  const caption = props.problem
    ? props.problem
    : latest.map((text, i) => (
        <span key={i}>
          {i > 0 && ', '}
          <span class="guest-swatch" style={{ background: COLOURS[i % COLOURS.length] }} aria-hidden="true" />
          {text}
        </span>
      ));
  return (
    <figure class="guest-chart" id={`chart-${props.id}`} data-points={props.window.times.length} aria-labelledby={`chart-${props.id}-title`}>
      <figcaption>
        <span id={`chart-${props.id}-title`} class="guest-chart-title">
          {props.title}
        </span>{' '}
        <span class="guest-chart-latest" aria-live="off">
          {caption}
        </span>
      </figcaption>
      <div ref={holder} class="guest-chart-plot" role="img" aria-label={`${props.title} over the last minutes: ${summary}`} />
    </figure>
  );
}
