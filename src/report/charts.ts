/**
 * The report's charts as standalone SVG documents, drawn by Apache ECharts' server-side SVG renderer
 * (no DOM, no browser): training curves, retriever vs two-stage per metric, the retrieval-subset share.
 * Each function takes plain numbers and returns the SVG text; nothing here reads files.
 */
import * as echarts from "echarts";
import type { TrainingCurve } from "./run-data.js";
import { PAPER_ROWS, type PaperRow } from "./table.js";

/** Colour-blind-safe palette (Okabe–Ito), one colour per run or series. */
export const PALETTE: readonly string[] = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#CC79A7",
  "#56B4E9",
  "#F0E442",
  "#000000",
];

export interface ChartSize {
  width?: number;
  height?: number;
}

/** Renders an ECharts option to an SVG string (animation off, white background). */
export function renderSvg(option: echarts.EChartsOption, size: ChartSize = {}): string {
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width: size.width ?? 760,
    height: size.height ?? 420,
  });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: "#ffffff",
      color: [...PALETTE],
      // The metrics ECharts lays text out with (no canvas on the server) are Helvetica's.
      textStyle: { fontFamily: "Helvetica, Arial, sans-serif" },
      ...option,
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

const TITLE_STYLE = { fontSize: 15, fontWeight: "bold" as const };

export interface NamedCurve {
  /** Legend entry, e.g. the run's name. */
  name: string;
  curve: TrainingCurve;
  /** Step of the weights kept (best validation): a dashed line on the validation panel. */
  best?: number | null;
}

/**
 * Two stacked panels sharing the x axis (optimizer steps): training loss on top, the validation metric
 * below; one colour per run in both.
 */
export function trainingCurvesChart(
  curves: readonly NamedCurve[],
  options: { title: string; xName?: string } & ChartSize,
): string {
  const metric = curves[0]?.curve.validationMetric ?? "Recall@10";
  const series: echarts.SeriesOption[] = [];
  curves.forEach(({ name, curve, best }, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    series.push({
      type: "line",
      name,
      xAxisIndex: 0,
      yAxisIndex: 0,
      data: curve.loss.map((p) => [p.x, p.y]),
      showSymbol: curve.loss.length <= 40,
      symbolSize: 4,
      lineStyle: { width: 1.6, color },
      itemStyle: { color },
    });
    series.push({
      type: "line",
      name,
      xAxisIndex: 1,
      yAxisIndex: 1,
      data: curve.validation.map((p) => [p.x, p.y]),
      showSymbol: true,
      symbolSize: 6,
      lineStyle: { width: 1.6, color },
      itemStyle: { color },
      ...(best === undefined || best === null
        ? {}
        : {
            markLine: {
              silent: true,
              symbol: "none",
              lineStyle: { color, type: "dashed", width: 1 },
              label: { formatter: "best", color, fontSize: 10 },
              data: [{ xAxis: best }],
            },
          }),
    });
  });
  const xName = options.xName ?? "iteration";
  // Both panels span the same steps, so a validation point sits under the loss of the same step.
  const xs = curves.flatMap(({ curve }) => [...curve.loss, ...curve.validation].map((p) => p.x));
  const xMax = xs.length > 0 ? Math.max(...xs) : 1;
  return renderSvg(
    {
      title: { text: options.title, left: "center", top: 6, textStyle: TITLE_STYLE },
      legend: { top: 32, itemGap: 24, data: curves.map((c) => c.name) },
      grid: [
        { left: 70, right: 30, top: 78, height: "30%" },
        { left: 70, right: 30, bottom: 58, height: "30%" },
      ],
      xAxis: [
        { type: "value", gridIndex: 0, min: 0, max: xMax, axisLabel: { show: false } },
        {
          type: "value",
          gridIndex: 1,
          min: 0,
          max: xMax,
          name: xName,
          nameLocation: "middle",
          nameGap: 28,
        },
      ],
      yAxis: [
        {
          type: "value",
          gridIndex: 0,
          name: "training loss",
          nameLocation: "middle",
          nameGap: 48,
          scale: true,
        },
        {
          type: "value",
          gridIndex: 1,
          name: `validation ${metric}`,
          nameLocation: "middle",
          nameGap: 48,
          scale: true,
        },
      ],
      series,
    },
    { width: options.width ?? 760, height: options.height ?? 520 },
  );
}

export interface BarGroup {
  /** Legend entry, e.g. "Retriever (all test users)". */
  name: string;
  metrics: Record<string, number>;
}

/** Grouped bars: one group per paper row (M@5 … R@10), one bar per series, values printed on the bars. */
export function metricBarsChart(
  groups: readonly BarGroup[],
  options: { title: string; subtitle?: string; rows?: readonly PaperRow[] } & ChartSize,
): string {
  const rows = options.rows ?? PAPER_ROWS;
  return renderSvg(
    {
      title: {
        text: options.title,
        subtext: options.subtitle,
        left: "center",
        top: 6,
        textStyle: TITLE_STYLE,
      },
      legend: { bottom: 8, itemGap: 28 },
      grid: { left: 60, right: 24, top: options.subtitle ? 76 : 56, bottom: 64 },
      xAxis: { type: "category", data: rows.map((r) => r.label) },
      yAxis: { type: "value", name: "test metric", nameLocation: "middle", nameGap: 44 },
      series: groups.map((g) => ({
        type: "bar",
        name: g.name,
        barMaxWidth: 38,
        data: rows.map((r) => {
          const v = g.metrics[r.key];
          return v === undefined || !Number.isFinite(v) ? null : v;
        }),
        label: {
          show: true,
          position: "top",
          fontSize: 10,
          formatter: (p: { value?: unknown }) => (typeof p.value === "number" ? p.value.toFixed(3) : ""),
        },
      })),
    },
    options,
  );
}

export interface ShareBar {
  /** Row label, e.g. the run's name. */
  name: string;
  /** Users whose label is among the candidates. */
  covered: number;
  users: number;
}

/**
 * One horizontal 100% bar per run: the share of test users whose label the retriever put among the
 * candidates (the ranker can only help them) and the share it missed.
 */
export function subsetShareChart(
  bars: readonly ShareBar[],
  options: { title: string; numCandidates: number } & ChartSize,
): string {
  const pct = (n: number, d: number) => (d > 0 ? (100 * n) / d : 0);
  const height = options.height ?? Math.max(200, 130 + 46 * bars.length);
  const label = (p: { value?: unknown; dataIndex: number }, part: "in" | "out") => {
    const b = bars[p.dataIndex]!;
    const n = part === "in" ? b.covered : b.users - b.covered;
    return typeof p.value === "number" && p.value >= 8 ? `${p.value.toFixed(1)}% (${n})` : "";
  };
  return renderSvg(
    {
      title: { text: options.title, left: "center", top: 6, textStyle: TITLE_STYLE },
      legend: { bottom: 6, itemGap: 28 },
      grid: { left: 150, right: 30, top: 44, bottom: 56 },
      xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      yAxis: { type: "category", data: bars.map((b) => b.name), inverse: true },
      series: [
        {
          type: "bar",
          stack: "users",
          name: `label in the top ${options.numCandidates} (retrieval subset)`,
          data: bars.map((b) => pct(b.covered, b.users)),
          barMaxWidth: 30,
          itemStyle: { color: PALETTE[2] },
          label: {
            show: true,
            color: "#ffffff",
            formatter: (p: { value?: unknown; dataIndex: number }) => label(p, "in"),
          },
        },
        {
          type: "bar",
          stack: "users",
          name: "label not retrieved",
          data: bars.map((b) => 100 - pct(b.covered, b.users)),
          barMaxWidth: 30,
          itemStyle: { color: "#c8c8c8" },
          label: {
            show: true,
            color: "#333333",
            formatter: (p: { value?: unknown; dataIndex: number }) => label(p, "out"),
          },
        },
      ],
    },
    { width: options.width ?? 760, height },
  );
}
