/**
 * Freezing layers and per-group learning rates for fine-tuning.
 *
 * - `setFrozen(model, isFrozen)`: parameters whose name matches get `requiresGrad = false`
 *   (so autograd computes no gradient for them and AdamW, which creates moments at a
 *   parameter's first update, keeps none), and modules whose name matches stay in eval mode
 *   through `train()` (a frozen BatchNorm uses and never updates its running statistics).
 * - `freezeForEpoch(model, opts, epoch)`: `freeze` prefixes always, plus everything but the
 *   head during the first `freezeBackboneEpochs` epochs. It depends only on the epoch, so a
 *   resumed run freezes exactly as the original did.
 * - `paramGroupsFor(model, rules, lr, wd)`: AdamW parameter groups from `{match, learningRate}`
 *   rules (the first matching rule wins; unmatched parameters form the first group, at `lr`).
 *
 * Names are matched as dotted prefixes, with or without the `model.` of the backbone:
 * `layer1` matches `model.layer1.0.conv1.weight` but not `model.layer10…`.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import type { Module } from "../nn/module.ts";
import type { AdamWParamGroupOptions } from "../optim/adamw.ts";

/** True when dotted `name` is `prefix` or lies under it (the backbone's `model.` optional). */
export function matchesPrefix(name: string, prefix: string): boolean {
  const p = prefix.replace(/\.$/, "");
  for (const n of [name, name.startsWith("model.") ? name.slice(6) : null]) {
    if (n !== null && (n === p || n.startsWith(`${p}.`))) return true;
  }
  return false;
}

/** What `setFrozen` changed. */
export interface FreezeSummary {
  /** Names of the frozen parameters. */
  frozenParams: string[];
  /** Number of trainable parameters (scalars) left. */
  trainableScalars: number;
}

/**
 * Freezes what `isFrozen(name)` selects and unfreezes the rest, then re-applies the model's
 * current mode. A frozen parameter's gradient, if any, is dropped.
 */
export function setFrozen(model: Module, isFrozen: (name: string) => boolean): FreezeSummary {
  const frozenParams: string[] = [];
  let trainableScalars = 0;
  for (const [name, p] of model.namedParameters()) {
    const f = isFrozen(name);
    p.requiresGrad = !f;
    if (f) {
      frozenParams.push(name);
      p.grad?.dispose();
      p.grad = null;
    } else trainableScalars += p.size;
  }
  for (const [name, m] of model.namedModules()) m.frozen = name !== "" && isFrozen(name);
  model.train(model.training);
  return { frozenParams, trainableScalars };
}

/** True when module `name` contains the head `h` (`model` contains `model.fc`). */
function isAncestor(name: string, h: string): boolean {
  return name === "" || h.startsWith(`${name}.`) || `model.${h}`.startsWith(`${name}.`);
}

/** Options of `freezeForEpoch` (the config's `model.freeze`, `trainer.freezeBackboneEpochs`). */
export interface FreezeOptions {
  /** Name prefixes frozen for the whole run (`conv1`, `bn1`, `layer1`, …). */
  freeze?: readonly string[];
  /** Epochs at the start that train the head only (default 0). */
  freezeBackboneEpochs?: number;
  /** Prefixes of the head, trained during those epochs (default `["fc"]`). */
  head?: readonly string[];
}

/**
 * Applies the freezing of epoch `epoch` (0-based). Every `freeze` prefix must name something
 * in the model (an error names the first that does not).
 */
export function freezeForEpoch(model: Module, opts: FreezeOptions, epoch: number): FreezeSummary {
  const names = model.namedParameters().map(([n]) => n);
  const prefixes = opts.freeze ?? [];
  for (const p of prefixes) {
    if (!names.some((n) => matchesPrefix(n, p))) {
      throw new RangeError(
        `model.freeze: "${p}" matches no parameter (expected a prefix such as conv1, bn1, layer1)`,
      );
    }
  }
  const head = opts.head ?? ["fc"];
  const backbone = epoch < (opts.freezeBackboneEpochs ?? 0);
  return setFrozen(
    model,
    (n) =>
      prefixes.some((p) => matchesPrefix(n, p)) ||
      (backbone && !head.some((h) => matchesPrefix(n, h) || isAncestor(n, h))),
  );
}

/** One `optimizer.paramGroups` rule. */
export interface ParamGroupRule {
  /** Name prefix selecting the group's parameters (`fc`, `layer4`, …). */
  match: string;
  /** The group's learning rate (default: the optimizer's). */
  learningRate?: number;
  /** The group's weight decay (default: the optimizer's). */
  weightDecay?: number;
}

/**
 * AdamW parameter groups: first the parameters no rule matches (at `lr`), then one group per
 * rule, in rule order (the first matching rule takes a parameter). A rule that matches no
 * parameter is an error naming it.
 */
export function paramGroupsFor(
  model: Module,
  rules: readonly ParamGroupRule[],
  lr: number,
  weightDecay: number,
): AdamWParamGroupOptions[] {
  const rest: Tensor[] = [];
  const groups: Tensor[][] = rules.map(() => []);
  for (const [name, p] of model.namedParameters()) {
    const i = rules.findIndex((r) => matchesPrefix(name, r.match));
    (i < 0 ? rest : groups[i]).push(p);
  }
  rules.forEach((r, i) => {
    if (groups[i].length === 0) {
      throw new RangeError(
        `optimizer.paramGroups[${i}].match "${r.match}" matches no parameter${
          i > 0 ? " (or only ones an earlier rule took)" : ""
        }`,
      );
    }
  });
  return [
    { params: rest, lr, weightDecay },
    ...rules.map((r, i) => ({
      params: groups[i],
      lr: r.learningRate ?? lr,
      weightDecay: r.weightDecay ?? weightDecay,
    })),
  ];
}
