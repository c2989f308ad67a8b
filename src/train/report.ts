/**
 * `report.html`: a self-contained page (inline SVG, no scripts or external files) with the
 * loss and accuracy curves, the learning-rate curve, per-class accuracy bars and the
 * confusion matrix with class names.
 *
 * @module
 */

import type { MetricRecord } from "./loggers.ts";

/** What the report shows. */
export interface ReportInput {
  /** Page title (the run name). */
  title: string;
  /** Every logged record of the run. */
  records: readonly MetricRecord[];
  /** Class names, index order. */
  classNames: readonly string[];
  /** Confusion matrix, rows = true class, columns = predicted (counts); null when unknown. */
  confusion: number[][] | null;
  /** Where the confusion matrix and per-class accuracy come from, e.g. "test (best checkpoint)". */
  evalLabel: string;
  /** Per-class accuracy (recall), index order; null when unknown. */
  perClass: number[] | null;
  /** Short facts shown as a table (config summary, timings, final metrics). */
  facts: Record<string, string | number>;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

interface Series {
  name: string;
  points: [number, number][];
}

/** A line chart of several series (x = epoch or step). */
function lineChart(
  title: string,
  xLabel: string,
  series: Series[],
  yRange: [number, number] | null = null,
): string {
  const W = 460;
  const H = 260;
  const L = 60;
  const R = 10;
  const T = 28;
  const B = 40;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => isFinite(x) && isFinite(y));
  if (!pts.length) {
    return `<svg width="${W}" height="60" xmlns="http://www.w3.org/2000/svg"><text x="10" y="30">${
      esc(title)
    }: no data</text></svg>`;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  if (yRange) [y0, y1] = yRange;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const parts: string[] = [];
  parts.push(
    `<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  );
  parts.push(
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${
      H - T - B
    }" fill="none" stroke="#888"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${sy(y)}" y2="${sy(y)}" stroke="#eee"/>`,
      `<text x="${L - 4}" y="${sy(y) + 4}" text-anchor="end" font-size="10">${fmtNum(y)}</text>`,
    );
  }
  // Epochs and steps are integers: tick at integers only.
  const span = x1 - x0;
  const stepX = Math.max(1, Math.ceil(span / 5));
  for (let x = Math.ceil(x0); x <= x1 + 1e-9; x += stepX) {
    parts.push(
      `<text x="${sx(x)}" y="${H - B + 14}" text-anchor="middle" font-size="10">${
        fmtNum(x)
      }</text>`,
    );
  }
  parts.push(
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle" font-size="11">${
      esc(xLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const good = s.points.filter(([x, y]) => isFinite(x) && isFinite(y));
    if (!good.length) return;
    const d = good.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join("");
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8"/>`);
    for (const [x, y] of good.length <= 60 ? good : []) {
      parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.2" fill="${c}"/>`);
    }
    parts.push(
      `<rect x="${L + 8}" y="${T + 6 + i * 14}" width="10" height="3" fill="${c}"/>`,
      `<text x="${L + 22}" y="${T + 11 + i * 14}" font-size="10">${esc(s.name)}</text>`,
    );
  });
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">${
    parts.join("")
  }</svg>`;
}

/** A horizontal bar chart of values in [0, 1] (per-class accuracy), as inline SVG. */
export function barChart(title: string, names: readonly string[], values: number[]): string {
  const rowH = 18;
  const L = 140;
  const W = 460;
  const H = 30 + names.length * rowH + 10;
  const parts = [
    `<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  ];
  values.forEach((v, i) => {
    const y = 28 + i * rowH;
    const w = Math.max(0, Math.min(1, v)) * (W - L - 60);
    parts.push(
      `<text x="${L - 6}" y="${y + 12}" text-anchor="end" font-size="11">${
        esc(names[i] ?? String(i))
      }</text>`,
      `<rect x="${L}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${
        COLORS[0]
      }"/>`,
      `<text x="${L + w + 4}" y="${y + 12}" font-size="10">${fmtNum(v)}</text>`,
    );
  });
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">${
    parts.join("")
  }</svg>`;
}

/** The confusion matrix (rows: true class, columns: predicted) as inline SVG. */
export function confusionChart(names: readonly string[], m: number[][]): string {
  const n = m.length;
  const cell = Math.max(14, Math.min(48, Math.floor(520 / Math.max(1, n))));
  const L = 130;
  const T = 40;
  const W = Math.max(L + n * cell + 20, 560);
  const H = T + n * cell + 120;
  const rowMax = m.map((r) => Math.max(1, r.reduce((a, b) => a + b, 0)));
  const parts = [
    `<text x="8" y="16" font-weight="bold">Confusion matrix (rows: true, columns: predicted; shade = row share)</text>`,
  ];
  for (let i = 0; i < n; i++) {
    parts.push(
      `<text x="${L - 6}" y="${T + i * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${
        esc(names[i] ?? String(i))
      }</text>`,
    );
    const cx = L + i * cell + cell / 2;
    const cy = T + n * cell + 6;
    parts.push(
      `<text x="${cx}" y="${cy}" font-size="11" transform="rotate(60 ${cx} ${cy})">${
        esc(names[i] ?? String(i))
      }</text>`,
    );
    for (let j = 0; j < n; j++) {
      const share = m[i][j] / rowMax[i];
      const shade = Math.round(255 - share * 200);
      const fill = i === j
        ? `rgb(${shade},${Math.round(255 - share * 120)},${shade})`
        : `rgb(255,${shade},${shade})`;
      parts.push(
        `<rect x="${L + j * cell}" y="${
          T + i * cell
        }" width="${cell}" height="${cell}" fill="${fill}" stroke="#ccc"/>`,
      );
      if (cell >= 22) {
        parts.push(
          `<text x="${L + j * cell + cell / 2}" y="${
            T + i * cell + cell / 2 + 4
          }" text-anchor="middle" font-size="10">${m[i][j]}</text>`,
        );
      }
    }
  }
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">${
    parts.join("")
  }</svg>`;
}

function series(
  records: readonly MetricRecord[],
  name: string,
  x: "epoch" | "step",
  label = name,
): Series {
  const points: [number, number][] = [];
  for (const r of records) {
    const v = r.metrics[name];
    if (v !== undefined) points.push([x === "epoch" ? r.epoch : r.step, v]);
  }
  return { name: label, points };
}

/**
 * The curves of a run as inline SVG charts: loss per epoch, loss per logged step, accuracy
 * per epoch and the learning rate (the report page and the web app's live view).
 */
export function curveCharts(r: readonly MetricRecord[]): string[] {
  const lrName =
    [...new Set(r.flatMap((x) => Object.keys(x.metrics)))].find((k) => k.startsWith("lr-")) ??
      "lr-AdamW";
  const charts = [
    lineChart("Loss per epoch", "epoch", [
      series(r, "train/loss_epoch", "epoch", "train"),
      series(r, "val/loss", "epoch", "val"),
    ]),
    lineChart("Training loss per logged step", "global step", [
      series(r, "train/loss_step", "step", "train/loss_step"),
    ]),
    lineChart("Accuracy per epoch", "epoch", [
      series(r, "train/acc_top1", "epoch", "train top-1"),
      series(r, "val/acc_top1", "epoch", "val top-1"),
      series(r, "val/acc_top5", "epoch", "val top-5"),
    ], [0, 1]),
    lineChart(`Learning rate (${lrName})`, "epoch", [series(r, lrName, "epoch", lrName)]),
  ];
  return charts;
}

/** Renders the report page. */
export function renderReport(input: ReportInput): string {
  const charts = curveCharts(input.records);
  if (input.perClass) {
    charts.push(
      barChart(`Per-class accuracy, ${input.evalLabel}`, input.classNames, input.perClass),
    );
  }
  const facts = Object.entries(input.facts).map(([k, v]) =>
    `<tr><th>${esc(k)}</th><td>${esc(typeof v === "number" ? fmtNum(v) : v)}</td></tr>`
  ).join("");
  const cm = input.confusion
    ? `<h2>Confusion matrix, ${esc(input.evalLabel)}</h2>${
      confusionChart(input.classNames, input.confusion)
    }`
    : "";
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(input.title)}</title>
<style>body{font-family:sans-serif;margin:20px;color:#222}svg{margin:6px;background:#fff}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
.charts{display:flex;flex-wrap:wrap}</style></head>
<body><h1>${esc(input.title)}</h1>
<table>${facts}</table>
<h2>Curves</h2><div class="charts">${charts.join("\n")}</div>
${cm}
</body></html>
`;
}
