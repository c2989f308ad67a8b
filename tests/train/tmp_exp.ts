import "../helpers.ts";
import { TinyResNet } from "./tiny_resnet.ts";
import { resolveConfig } from "../../src/train/config.ts";
import { ClassificationDataModule } from "../../src/data/data_module.ts";
import { modelOptions } from "../../src/cli/common.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { tinyYaml, captureOut } from "./fixtures.ts";
import { memoryStats } from "../../src/gpu/tensor.ts";

for (const precision of ["32", "16-mixed"]) {
  const root = Deno.makeTempDirSync();
  const cfg = resolveConfig(tinyYaml(root).replace("tiny_mlp", "tiny_resnet"), "t.yaml", {
    overrides: [`trainer.precision=${precision}`, "trainer.maxEpochs=3", "trainer.logEveryNSteps=1", "trainer.test=false"],
  });
  const data = new ClassificationDataModule(cfg.data, { seed: cfg.seed });
  await data.setup();
  const model = new TinyResNet({ ...modelOptions(cfg, data.numClasses), inChannels: cfg.data.channels });
  const t0 = performance.now();
  const trainer = new Trainer(cfg, { out: captureOut() });
  const r = await trainer.fit(model, data);
  trainer.close();
  const losses = trainer.files!.records.filter((x) => "train/loss_step" in x.metrics).map((x) => x.metrics["train/loss_step"].toFixed(4));
  console.log(precision, ((performance.now() - t0) / 1000).toFixed(1), "s", r.lastMetrics, losses.join(" "));
  console.log(trainer.files!.records.at(-2));
  model.dispose(); data.dispose();
  console.log(memoryStats());
}
