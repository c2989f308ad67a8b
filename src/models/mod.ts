/**
 * Models: the classification base class, the registry and the registered ResNet models.
 * Import this module (not `registry.ts` alone) so the built-in models are registered.
 *
 * @module
 */

export * from "./types.ts";
export * from "./base_classification_model.ts";
export * from "./registry.ts";
export * from "./resnet_models.ts";
export * from "./pretrained.ts";
export * from "./pretrained_names.ts";
export * from "./freeze.ts";
