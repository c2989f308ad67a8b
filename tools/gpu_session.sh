#!/usr/bin/env bash
# The GPU checks of issue 12 as one prepared call on a machine that has only a GPU driver
# (the device tool's machines: no Deno, no Vulkan loader, no network).
#
#   tools/gpu_session.sh prepare   here, once: .gpu/ (ignored by git) gets an xz-compressed Deno
#                                  and the Vulkan loader's .deb (≈ 30 MB together), then the
#                                  tests `run` will run go through here with the GPU kernel
#                                  choices (CT_ADAPTER_CLASS=gpu), so that what fails there is
#                                  new to the GPU, not known before the device time is spent
#   tools/gpu_session.sh run       there, with .gpu carried: one call, under 10 minutes
#
# `run` writes to $OUT (or runs/gpu_session without it): adapter.txt (the adapter and its
# features), tests.log (the kernel, tape, optimizer and model tests on that adapter: the GPU
# paths, tiled matmul and implicit-GEMM conv, checked against PyTorch's golden values),
# report.md / report.json (`deno task bench:report`), torch.json (bench/torch_reference.py,
# PyTorch fp32 with TF32 off and 16-mixed on the same GPU) and goals.md (bench/gpu_goals.ts:
# the README's GPU goals, measured). PEAK_TFLOPS (default 67, an H200 SXM's fp32 peak) is the
# adapter's fp32 data-sheet peak for the matmul goal; PYTHON (default python3) the Python that
# has PyTorch, TORCH_ARGS more arguments for it (`--quick` to try this on a CPU adapter).
# Copy report.md and goals.md into the README's GPU section.
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

# The test files run on the GPU: those that need no npm package (none is cached there) and no
# large fixture.
GPU_TESTS=(tests/kernels tests/gpu tests/optim tests/metrics
  tests/autograd/{batch_norm_relu,loss,nn_ops,ops,tape}_test.ts tests/nn/{init,resnet}_test.ts)

prepare() {
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  mkdir -p .gpu /tmp/gpu_session_apt/partial
  local deno
  deno=$(readlink -f "$(command -v deno)") || { echo "prepare: no deno on PATH"; exit 1; }
  "$deno" --version | head -1
  xz -T0 -6 <"$deno" >.gpu/deno.xz.tmp && mv .gpu/deno.xz.tmp .gpu/deno.xz
  local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu_session_apt'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null && (cd .gpu && apt-get $o download libvulkan1 2>/dev/null) ||
    { echo "prepare: apt-get could not download libvulkan1"; exit 1; }
  ls -la .gpu
  echo "prepare: the GPU tests with the GPU kernel choices on this adapter"
  CT_ADAPTER_CLASS=gpu deno test --no-check --allow-read --allow-write --allow-env \
    "${GPU_TESTS[@]}" >.gpu/preflight.log 2>&1
  local rc=$?
  grep -E '^(ok|FAILED) \|' .gpu/preflight.log
  [ "$rc" = 0 ] || { echo "prepare: failures above, in .gpu/preflight.log"; exit 1; }
  echo 'then: run(command="bash tools/gpu_session.sh run", carry=[".gpu"], timeout_s=600)'
}

run() {
  local out=${OUT:-runs/gpu_session}
  mkdir -p "$out" runs/bench
  # Figures from an earlier run must not stand in for ones this run failed to make.
  rm -f runs/bench/{report.json,report.md,torch.json,goals.md}
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig 2>/dev/null
  xz -d <.gpu/deno.xz >/tmp/deno && chmod +x /tmp/deno
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nv" ]; then export VK_DRIVER_FILES=$nv; fi
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
  local deno="/tmp/deno"
  local probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!a) { console.log("no WebGPU adapter"); Deno.exit(3); }
const { vendor, architecture, device, description } = a.info;
console.log(JSON.stringify({ info: { vendor, architecture, device, description }, features: [...a.features].sort(),
  limits: { maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.limits.maxComputeInvocationsPerWorkgroup,
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize } }, null, 1));'
  "$deno" eval "$probe" | tee "$out/adapter.txt" || { nvidia-smi >>"$out/adapter.txt" 2>&1; exit 3; }
  # PyTorch's figures first, beside the tests (their timings are not used), then the report
  # alone on the GPU.
  (timeout 150 "${PYTHON:-python3}" bench/torch_reference.py ${TORCH_ARGS:-} --out runs/bench/torch.json >"$out/torch.log" 2>&1
    cp runs/bench/torch.json "$out/" 2>/dev/null) &
  local torch_pid=$!
  timeout 150 "$deno" test --cached-only --no-check --allow-read --allow-write --allow-env \
    "${GPU_TESTS[@]}" >"$out/tests.log" 2>&1
  echo "tests: exit $? ($(grep -E '^(ok|FAILED) \|' "$out/tests.log" | tail -1))"
  wait "$torch_pid"
  tail -12 "$out/torch.log"
  timeout 330 "$deno" run --cached-only --no-check --allow-read --allow-write --allow-env \
    bench/report.ts --budget 270 >"$out/report.log" 2>&1
  echo "report: exit $?"
  cp runs/bench/report.md runs/bench/report.json "$out/" 2>/dev/null
  "$deno" run --cached-only --no-check --allow-read --allow-write=runs bench/gpu_goals.ts \
    --peak-tflops "${PEAK_TFLOPS:-67}" && cp runs/bench/goals.md "$out/"
  cat "$out/report.md" 2>/dev/null || tail -20 "$out/report.log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: tools/gpu_session.sh prepare|run" >&2; exit 2 ;;
esac
