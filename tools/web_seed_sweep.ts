/**
 * The web app's built-in run (the settings of tests/web/web_app_test.ts) over several seeds
 * and run lengths in one page (its worker compiles the pipelines once), printing
 * val/acc_top1 and test/acc_top1 of each run: the evidence behind the test's run length.
 *
 *   deno run -A tools/web_seed_sweep.ts --runs=1:2:128,2:2:128,1:1:128 (seed:epochs:trainSize)
 *     [--batch=16]
 *
 * @module
 */
import { CHROMIUM, launchChromium } from "./cdp.ts";
import { buildWeb } from "../web/build.ts";
import { serveStatic } from "../web/serve.ts";

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const batch = Number(arg("batch") ?? 16);
const runs = (arg("runs") ?? "1:2:128").split(",").map((r) => r.split(":").map(Number));
const tmp = await Deno.makeTempDir({ prefix: "web_seed_sweep_" });
await buildWeb(`${tmp}/site`);
const server = serveStatic(`${tmp}/site`, { port: 0, hostname: "127.0.0.1" });
const query = "?data=builtin&epochs=2&trainSize=128&valSize=32&testSize=32&seed=1&imageSize=32" +
  `&batchSize=${batch}&scheduler.warmupEpochs=0&data.augment.randomCrop=null&data.augment.hflip=0`;
const browser = await launchChromium({ profileDir: `${tmp}/profile`, chromium: CHROMIUM });
try {
  const page = await browser.newPage(`http://127.0.0.1:${server.addr.port}/${query}`);
  await page.waitFor(
    `document.readyState === "complete" && document.getElementById("yaml")`,
    60_000,
  );
  for (const [seed, epochs, train] of runs) {
    const t0 = Date.now();
    await page.evaluate(`(() => {
      const y = document.getElementById("yaml");
      y.value = y.value.replace(/^seed: \\d+$/m, "seed: ${seed}")
        .replace(/^  maxEpochs: \\d+$/m, "  maxEpochs: ${epochs}")
        .replace(/^    trainSize: \\d+$/m, "    trainSize: ${train}");
      y.dispatchEvent(new Event("change"));
      document.getElementById("start").click();
    })()`);
    await page.waitFor(`document.body.dataset.state === "training"`, 60_000);
    const end = await page.waitFor<string>(
      `["done", "error"].includes(document.body.dataset.state) && document.body.dataset.state`,
      30 * 60_000,
    );
    const s = end === "done"
      ? JSON.parse(await page.evaluate<string>(`document.getElementById("summary").textContent`))
      : {};
    console.log(
      `seed ${seed} epochs ${epochs} train ${train}: ${end} val/acc_top1 ${s["val/acc_top1"]} ` +
        `test/acc_top1 ${s["test/acc_top1"]} steps ${s.global_step} (${
          ((Date.now() - t0) / 1000).toFixed(0)
        } s)`,
    );
  }
} finally {
  await browser.close();
  await server.shutdown();
}
