/**
 * The model registry, the analogue of the seed's Hydra `@register` config store (group
 * "models"): YAML configs select a model class by name.
 *
 * ```ts
 * register("resnet18", ResNet18Model);             // as a call
 * @register("resnet18") class ResNet18Model … {}   // or as a (TC39) class decorator
 * const model = createModel("resnet18", { numClasses: 43 });
 * ```
 *
 * @module
 */

import type {
  BaseClassificationModel,
  BaseClassificationModelOptions,
} from "./base_classification_model.ts";

/** Options a registered model accepts: the base options plus its own. */
// deno-lint-ignore no-explicit-any
export type ModelOptions = BaseClassificationModelOptions & Record<string, any>;

/** A registered model class. */
export type ModelConstructor = new (opts: ModelOptions) => BaseClassificationModel;

const store = new Map<string, ModelConstructor>();

/** A class decorator that registers the class under a name. */
export type RegisterDecorator = <C extends ModelConstructor>(
  ctor: C,
  context?: ClassDecoratorContext,
) => C;

/** Registers `ctor` under `name`; a duplicate name is an error. Returns `ctor`. */
export function register<C extends ModelConstructor>(name: string, ctor: C): C;
/** Returns a class decorator registering the class under `name`. */
export function register(name: string): RegisterDecorator;
export function register<C extends ModelConstructor>(
  name: string,
  ctor?: C,
): C | RegisterDecorator {
  const add = <D extends ModelConstructor>(c: D): D => {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`register: expected a non-empty model name, got ${JSON.stringify(name)}`);
    }
    const have = store.get(name);
    if (have) {
      throw new Error(`register: model "${name}" is already registered (by ${have.name})`);
    }
    store.set(name, c);
    return c;
  };
  return ctor ? add(ctor) : (c) => add(c);
}

/** The class registered under `name`; an unknown name is an error listing the known ones. */
export function getModel(name: string): ModelConstructor {
  const c = store.get(name);
  if (!c) {
    throw new Error(
      `unknown model "${name}": expected one of ${
        listModels().map((n) => `"${n}"`).join(", ") || "(none registered)"
      }`,
    );
  }
  return c;
}

/** A new instance of the model registered under `name`. */
export function createModel(name: string, opts: ModelOptions): BaseClassificationModel {
  return new (getModel(name))(opts);
}

/** Registered names, sorted. */
export function listModels(): string[] {
  return [...store.keys()].sort();
}

/** Removes a registration (tests only); returns whether it existed. */
export function unregister(name: string): boolean {
  return store.delete(name);
}
