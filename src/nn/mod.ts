/**
 * Neural-network modules: the `Module` base, layers with PyTorch's names and init,
 * torchvision-identical ResNets, seeded initialisation and safetensors I/O.
 *
 * @module
 */

export * from "./module.ts";
export * from "./init.ts";
export * from "./layers.ts";
export * from "./resnet.ts";
export * from "./safetensors.ts";
export * from "./torch_file.ts";
