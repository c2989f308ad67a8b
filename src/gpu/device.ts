/**
 * The one WebGPU device of the process: adapter facts read before `requestDevice`
 * (Deno invalidates the adapter afterwards), the largest limits the adapter offers,
 * and error reporting that turns validation errors and device loss into exceptions.
 *
 * @module
 */

/** What the adapter said about itself, read before the device was requested. */
export interface AdapterFacts {
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** Vendor string or id. */
  vendor: string;
  /** Architecture string (may be empty). */
  architecture: string;
  /** Device string or id (may be empty). */
  device?: string;
  /** True for software adapters such as Mesa's lavapipe or SwiftShader. */
  isFallbackAdapter: boolean;
  /** True when the adapter is a CPU rasteriser (lavapipe, SwiftShader), where register blocking wins. */
  isCpu: boolean;
  /** Features the device was created with. */
  features: string[];
  /**
   * Whether WGSL that uses subgroup built-ins must start with `enable subgroups;`: Tint
   * (browsers) requires the directive, naga (Deno) rejects it. Probed once when the device
   * has `subgroups`; false otherwise.
   */
  subgroupsDirective: boolean;
  /**
   * Lanes of every subgroup where the device has subgroup operations and a fixed subgroup size
   * (`subgroupMinSize` = `subgroupMaxSize`, e.g. 8 on 256-bit lavapipe); 0 otherwise. CPU kernels
   * use it to load a value shared by a subgroup once and broadcast it (`matmul_register_sg`).
   * NOTE: Deno 2.9's lavapipe adapter omits `subgroups` from its feature list yet creates a
   * device with it, so a CPU adapter that reports a subgroup size is asked for them anyway; they
   * stay out of `features`, so kernels that follow `features` (reductions) keep their sums.
   */
  subgroupLanes: number;
}

/** The device and the facts about it. */
export interface GpuContext {
  /** The WebGPU device. */
  device: GPUDevice;
  /** Facts read from the adapter. */
  adapter: AdapterFacts;
  /** The limits the device was created with. */
  limits: GPUSupportedLimits;
}

let context: GpuContext | null = null;
let pending: Promise<GpuContext> | null = null;
const errors: string[] = [];
let lostMessage: string | null = null;

const WANTED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupsPerDimension",
] as const;

const WANTED_FEATURES = ["shader-f16", "timestamp-query", "subgroups"];

let adapterClass: "cpu" | "gpu" | null = null;

/**
 * Makes the next `getDevice()` treat its adapter as a CPU rasteriser ("cpu") or a GPU ("gpu")
 * whatever its name says, so that the other class's kernel choices (the heuristics keyed on
 * `isCpu`) run and are tested here: a lavapipe run with "gpu" takes the tiled matmul and
 * implicit-GEMM paths a real GPU would. `null` goes back to the name. Throws once the device
 * exists, since choices already made would not follow.
 */
export function setAdapterClass(cls: "cpu" | "gpu" | null): void {
  if (context || pending) {
    throw new Error("setAdapterClass: call it before the first getDevice()");
  }
  adapterClass = cls;
}

/**
 * Returns the process-wide device, creating it on the first call.
 * Throws when no WebGPU adapter exists, saying how to get a software one.
 */
export function getDevice(): Promise<GpuContext> {
  if (context) return Promise.resolve(context);
  pending ??= createContext().catch((e) => {
    pending = null;
    throw e;
  });
  return pending;
}

/** The device if `getDevice()` already resolved; throws otherwise. */
export function gpu(): GpuContext {
  if (!context) {
    throw new Error("WebGPU device not initialised: call `await getDevice()` first");
  }
  if (lostMessage) throw new Error(`WebGPU device lost: ${lostMessage}`);
  return context;
}

async function createContext(): Promise<GpuContext> {
  const nav = globalThis.navigator as Navigator | undefined;
  if (!nav?.gpu) {
    throw new Error(
      "WebGPU is not available (navigator.gpu is undefined): use Deno 2 or a WebGPU browser",
    );
  }
  const adapter = await nav.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new Error(
      "no WebGPU adapter found: on a machine without a GPU install Mesa's software Vulkan " +
        "driver (`apt-get install -y mesa-vulkan-drivers`, lavapipe)",
    );
  }
  // Read everything from the adapter before requestDevice: Deno invalidates it afterwards.
  const info = adapter.info;
  const description = info.description || info.device || "";
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === "number") requiredLimits[name] = v;
  }
  const features = WANTED_FEATURES.filter((f) =>
    adapter.features.has(f as GPUFeatureName)
  ) as GPUFeatureName[];
  const sizes = info as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const lanes = sizes.subgroupMinSize === sizes.subgroupMaxSize ? sizes.subgroupMinSize ?? 0 : 0;
  const facts: AdapterFacts = {
    description,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device ?? "",
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    // Chrome leaves `description` empty for SwiftShader and names it in `architecture`.
    isCpu: adapterClass === null
      ? /llvmpipe|lavapipe|swiftshader/i.test(`${description} ${info.vendor} ${info.architecture}`)
      : adapterClass === "cpu",
    features,
    subgroupsDirective: false,
    subgroupLanes: 0,
  };
  const unlisted = facts.isCpu && lanes > 0 && !features.includes("subgroups" as GPUFeatureName);
  const device = await requestDevice(adapter, requiredLimits, features, unlisted, nav.gpu);
  if (device.features.has("subgroups")) {
    facts.subgroupsDirective = await compiles(
      device,
      "enable subgroups;\n@compute @workgroup_size(1) fn main() {}",
    );
    facts.subgroupLanes = lanes;
  }
  device.addEventListener("uncapturederror", (ev) => {
    errors.push((ev as GPUUncapturedErrorEvent).error.message);
  });
  device.lost.then((lost) => {
    if (lost.reason === "destroyed") return;
    lostMessage = `${lost.reason}: ${lost.message}`;
    console.error(`classifier-training: WebGPU device lost (${lostMessage})`);
  });
  context = { device, adapter: facts, limits: device.limits };
  return context;
}

/**
 * The device with `features` (and `subgroups` too when `unlisted`: see
 * `AdapterFacts.subgroupLanes`); where that extra request is refused, a fresh adapter's device
 * without it.
 */
async function requestDevice(
  adapter: GPUAdapter,
  requiredLimits: Record<string, number>,
  features: GPUFeatureName[],
  unlisted: boolean,
  gpuApi: GPU,
): Promise<GPUDevice> {
  if (!unlisted) return await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  try {
    return await adapter.requestDevice({
      requiredLimits,
      requiredFeatures: [...features, "subgroups" as GPUFeatureName],
    });
  } catch {
    const again = await gpuApi.requestAdapter({ powerPreference: "high-performance" });
    if (!again) throw new Error("the WebGPU adapter went away while the device was requested");
    return await again.requestDevice({ requiredLimits, requiredFeatures: features });
  }
}

/** Whether `code` compiles on `device` (its validation error, if any, is swallowed). */
async function compiles(device: GPUDevice, code: string): Promise<boolean> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label: "probe" });
  const info = await module.getCompilationInfo?.();
  const error = await device.popErrorScope();
  return !error && !(info?.messages ?? []).some((m) => m.type === "error");
}

const openScopes = new Set<Promise<void>>();

/**
 * Opens a validation error scope; `dispatch.ts` keeps one open per command encoder, so
 * errors are tied to the submit that caused them instead of spilling into a later readback
 * (Dawn delivers `uncapturederror` events late).
 */
export function openErrorScope(): void {
  gpu().device.pushErrorScope("validation");
}

/** Closes the scope opened by `openErrorScope()`; its error, if any, is collected. */
export function closeErrorScope(): void {
  const p: Promise<void> = gpu().device.popErrorScope().then(
    (e) => {
      if (e) errors.push(e.message);
    },
    (e) => {
      errors.push(e instanceof Error ? e.message : String(e));
    },
  ).finally(() => openScopes.delete(p));
  openScopes.add(p);
}

/** Waits for every closed error scope to resolve, then throws the first error, if any. */
export async function settleErrors(): Promise<void> {
  while (openScopes.size > 0) await Promise.all([...openScopes]);
  throwPendingErrors();
}

/**
 * Throws the first validation error the device reported since the last call, if any.
 * The message names the kernel through the labels every pipeline and bind group carries.
 */
export function throwPendingErrors(): void {
  if (lostMessage) throw new Error(`WebGPU device lost: ${lostMessage}`);
  if (errors.length === 0) return;
  const first = errors[0];
  const more = errors.length - 1;
  errors.length = 0;
  throw new Error(`WebGPU validation error${more > 0 ? ` (+${more} more)` : ""}: ${first}`);
}
