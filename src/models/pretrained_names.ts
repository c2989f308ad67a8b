/**
 * Published ImageNet weights by architecture, like torchvision's `weights=` enums: the name a
 * config uses (`imagenet`, `IMAGENET1K_V1`, `IMAGENET1K_V2`) to the URL torchvision serves.
 * The file names carry the first hex digits of the file's sha256, which the downloader checks.
 *
 * @module
 */

const BASE = "https://download.pytorch.org/models";

/** torchvision's weights per registered model name and weights tag (torchvision 0.14). */
export const TORCHVISION_WEIGHTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  resnet18: { IMAGENET1K_V1: `${BASE}/resnet18-f37072fd.pth` },
  resnet34: { IMAGENET1K_V1: `${BASE}/resnet34-b627a593.pth` },
  resnet50: {
    IMAGENET1K_V1: `${BASE}/resnet50-0676ba61.pth`,
    IMAGENET1K_V2: `${BASE}/resnet50-11ad3fa6.pth`,
  },
};

/** torchvision's `DEFAULT` weights tag per model (what `imagenet` selects). */
const DEFAULT_TAG: Readonly<Record<string, string>> = {
  resnet18: "IMAGENET1K_V1",
  resnet34: "IMAGENET1K_V1",
  resnet50: "IMAGENET1K_V2",
};

/** True when `source` is a weights name rather than a path or URL. */
export function isWeightsName(source: string): boolean {
  return /^(imagenet|default|imagenet1k_v\d+)$/i.test(source);
}

/**
 * The URL of the named weights for `model` ("resnet50"); `imagenet` and `DEFAULT` pick
 * torchvision's default. An unknown name or architecture is an error listing what exists.
 */
export function weightsUrl(model: string, name: string): string {
  const table = TORCHVISION_WEIGHTS[model];
  if (!table) {
    throw new Error(
      `pretrained: no published weights for model "${model}" (known: ${
        Object.keys(TORCHVISION_WEIGHTS).join(", ")
      }); give a path or URL instead`,
    );
  }
  const tag = /^(imagenet|default)$/i.test(name) ? DEFAULT_TAG[model] : name.toUpperCase();
  const url = table[tag];
  if (!url) {
    throw new Error(
      `pretrained: "${name}" is not published for ${model}, expected one of imagenet, ${
        Object.keys(table).join(", ")
      }`,
    );
  }
  return url;
}
