/**
 * Softmax top-k of logits on the host (the predict command and the web app's predict panel).
 *
 * @module
 */

/** Softmax of each row and its top-k, the lower index winning ties. */
export function topK(
  logits: Float32Array,
  options: { rows: number; k: number },
): [number, number][][] {
  const { rows, k } = options;
  const c = logits.length / rows;
  const out: [number, number][][] = [];
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * c, (r + 1) * c);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    const p = Array.from(row, (v) => {
      const e = Math.exp(v - max);
      sum += e;
      return e;
    });
    const idx = p.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
    out.push(idx.map((i) => [i, p[i] / sum]));
  }
  return out;
}
