/**
 * Browser entry of tools/browser_check.ts: runs a representative set of our test files
 * (their `Deno.test`s, against the committed golden JSON) plus conv with each algorithm
 * forced, on the browser's WebGPU, and posts one row per check to the driver.
 *
 * @module
 */
import { registry, Unsupported } from "./deno_shim.ts";
import { errorStats, resetMaxError } from "./helpers_shim.ts";
import { getDevice } from "../../src/gpu/device.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { conv2d, conv2dInputGrad, conv2dWeightGrad } from "../../src/kernels/conv.ts";
import { assertClose, type ConvCase, flat, golden } from "./helpers_shim.ts";

import "../../tests/gpu/tensor_test.ts";
import "../../tests/kernels/matmul_test.ts";
import "../../tests/kernels/elementwise_test.ts";
import "../../tests/kernels/reduce_test.ts";
import "../../tests/kernels/vec4_paths_test.ts";
import "../../tests/kernels/shape_test.ts";
import "../../tests/kernels/conv_test.ts";
import "../../tests/kernels/pool_bn_test.ts";
import "../../tests/autograd/ops_test.ts";
import "../../tests/autograd/tape_test.ts";
import "../../tests/autograd/nn_ops_test.ts";
import "../../tests/autograd/loss_test.ts";
import "../../tests/optim/adamw_test.ts";
import "../../tests/metrics/accuracy_test.ts";
import "../../tests/nn/resnet_test.ts";
import "../../tests/models/base_classification_model_test.ts";

/** One row of the check table. */
export interface CheckRow {
  /** Test or check name. */
  name: string;
  /** Outcome; `skip` = needs a Deno API the browser lacks (or `ignore`). */
  status: "pass" | "fail" | "skip";
  /** Largest |actual − expected| over the check's golden comparisons (null: none made). */
  maxAbsError: number | null;
  /** Golden values compared. */
  compared: number;
  /** Wall time of the check. */
  ms: number;
  /** Failure or skip reason. */
  message?: string;
}

const post = (path: string, body: unknown): Promise<Response> =>
  fetch(path, { method: "POST", body: JSON.stringify(body) });

// Every golden conv geometry with each algorithm forced (conv_test.ts forces only the one
// `auto` does not pick), so both kernel families — including the generated `direct`
// kernels — run forward, dgrad and wgrad on every case.
for (const algorithm of ["direct", "im2col", "igemm"] as const) {
  registry.push({
    name: `conv2d forward/dgrad/wgrad, every golden geometry, algorithm ${algorithm}`,
    ignore: false,
    fn: async () => {
      const G = golden<{ conv: ConvCase[] }>("nn");
      for (const k of G.conv) {
        await scope(async () => {
          const opts = { stride: k.stride, padding: k.padding, dilation: k.dilation, algorithm };
          const x = Tensor.fromArray(flat(k.x), k.xShape);
          const w = Tensor.fromArray(flat(k.w), k.wShape);
          const gy = Tensor.fromArray(flat(k.gy), k.yShape);
          const tol = { rtol: 1e-4, atol: 1e-4 };
          assertClose(await conv2d(x, w, opts).toArray(), k.y, { ...tol, msg: `${k.name} y` });
          const dx = conv2dInputGrad(gy, w, { ...opts, inputShape: k.xShape });
          assertClose(await dx.toArray(), k.dx, { ...tol, msg: `${k.name} dx` });
          const dw = conv2dWeightGrad(x, gy, { ...opts, weightShape: k.wShape });
          assertClose(await dw.toArray(), k.dw, { ...tol, msg: `${k.name} dw` });
        });
      }
    },
  });
}

async function main(): Promise<void> {
  const ctx = await getDevice();
  const raw = await navigator.gpu.requestAdapter();
  const info = raw?.info;
  await post("/adapter", {
    facts: ctx.adapter,
    info: info
      ? {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
      }
      : null,
    userAgent: navigator.userAgent,
  });
  const only = new URL(location.href).searchParams.get("only");
  for (const test of registry) {
    if (only && !test.name.includes(only)) continue;
    resetMaxError();
    const t0 = performance.now();
    const row: CheckRow = {
      name: test.name,
      status: "pass",
      maxAbsError: null,
      compared: 0,
      ms: 0,
    };
    if (test.ignore) {
      row.status = "skip";
      row.message = "ignore: true";
    } else {
      try {
        await test.fn({
          step: async (_name, fn) => {
            await fn();
            return true;
          },
        });
      } catch (e) {
        const err = e as Error;
        row.status = err instanceof Unsupported ? "skip" : "fail";
        row.message = `${err?.name ?? "Error"}: ${err?.message ?? String(e)}`.slice(0, 2000);
      }
    }
    row.ms = Math.round(performance.now() - t0);
    row.compared = errorStats.compared;
    row.maxAbsError = errorStats.compared > 0 ? errorStats.maxAbs : null;
    await post("/row", row);
  }
  await post("/done", {});
}

main().catch((e) => post("/fatal", { message: String((e as Error)?.stack ?? e) }));
