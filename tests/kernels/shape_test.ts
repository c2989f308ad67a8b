/** Shape helpers: broadcasting, strides, axis normalisation and dim collapsing. */
import assert from "node:assert/strict";
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  normAxis,
  stridesOf,
} from "../../src/kernels/shape.ts";

Deno.test("broadcastShapes / broadcastStrides / stridesOf / normAxis", () => {
  assert.deepEqual(broadcastShapes([2, 1, 4], [3, 1]), [2, 3, 4]);
  assert.deepEqual(broadcastShapes([], [5]), [5]);
  assert.throws(() => broadcastShapes([2, 3], [4], "add"), /add: shapes \[2, 3\] and \[4\]/);
  assert.deepEqual(broadcastStrides([3, 1], [2, 3, 4]), [0, 1, 0]);
  assert.deepEqual(stridesOf([2, 3, 4]), [12, 4, 1]);
  assert.equal(normAxis(-1, 3), 2);
  assert.throws(() => normAxis(3, 3, "sum"), /sum: axis 3 out of range for 3 dims/);
});

Deno.test("collapseDims merges contiguous runs and drops unit dims, keeping element order", () => {
  // NCHW + [1, C, 1, 1]: H and W merge for every operand.
  assert.deepEqual(
    collapseDims([2, 3, 4, 5], [
      stridesOf([2, 3, 4, 5]),
      broadcastStrides([1, 3, 1, 1], [2, 3, 4, 5]),
    ]),
    { shape: [2, 3, 20], strides: [[60, 20, 1], [0, 1, 0]] },
  );
  // slice along dim 1 of [2, 6, 4] to [2, 3, 4]: dims 1-2 merge on both sides.
  assert.deepEqual(collapseDims([2, 3, 4], [[24, 4, 1], [12, 4, 1]]), {
    shape: [2, 12],
    strides: [[24, 1], [12, 1]],
  });
  // a transpose cannot merge
  assert.deepEqual(collapseDims([3, 4], [[1, 3], [4, 1]]), {
    shape: [3, 4],
    strides: [[1, 3], [4, 1]],
  });
  assert.deepEqual(collapseDims([1, 1], [[1, 1]]), { shape: [], strides: [[]] });
  assert.deepEqual(collapseDims([2, 1, 3], [[3, 3, 1]]), { shape: [6], strides: [[1]] });
});
