/**
 * The web app's starting settings (kept apart from the page so that tests can read them).
 *
 * @module
 */

/** The page's starting settings: small enough for a laptop GPU to train in about a minute. */
export const WEB_DEFAULT_YAML = `# Settings in the format \`deno task train\` reads.
seed: 42
model:
  name: resnet18
  smallInput: false
  labelSmoothing: 0.1
data:
  source: builtin
  imageSize: 32
  channels: 3
  batchSize: 32
  builtin:
    numClasses: 4
    trainSize: 1024
    valSize: 256
    testSize: 256
  augment:
    randomCrop: { padding: 4 }
    hflip: 0.5
optimizer:
  name: adamw
  learningRate: 0.001
  weightDecay: 0.0001
scheduler:
  warmupEpochs: 1
  warmupStartFactor: 0.1
trainer:
  maxEpochs: 4
  logEveryNSteps: 2
  gradientClipVal: 5.0
checkpoint:
  monitor: val/acc_top1
  mode: max
logging:
  name: web
`;
