/**
 * The web app end to end in headless Chromium (WebGPU on SwiftShader), driven through the
 * DevTools protocol: a built-in run started from the URL, stopped and resumed, reaches `done`
 * above chance; its
 * downloaded checkpoint loads in Deno and gives the page's test predictions; a folder run
 * (PNG and JPEG, one corrupt file, picked with DOM.setFileInputFiles) trains and names the
 * corrupt file; the predict panel names the top classes; picked Fashion-MNIST IDX files
 * train; a screenshot of the finished page is saved; a crashed GPU process (a lost device) gives
 * its message with `last` still downloadable.
 *
 * Skipped (with the reason printed) only where Chromium is not installed.
 */
import assert from "node:assert/strict";
import { parseDocument } from "yaml";
import { CHROMIUM, hasChromium, launch } from "./cdp.ts";
import { buildWeb } from "../../web/build.ts";
import { serveStatic } from "../../web/serve.ts";
import { getDevice } from "../../src/gpu/device.ts";
import { loadTrained } from "../../src/cli/common.ts";
import { buildData, modelNames } from "../../src/train/build.ts";
import { predictClasses } from "../../src/train/predictions.ts";
import { rgba, writeImage } from "../data/fixtures.ts";
import { FASHION_MNIST_CLASSES } from "../../src/data/idx.ts";
import { resolveConfig } from "../../src/train/config.ts";
import { WEB_DEFAULT_YAML } from "../../web/defaults.ts";

const chromium = Deno.env.get("CHROMIUM") ?? CHROMIUM;
const available = hasChromium(chromium);
if (!available) console.log(`skipping the web app tests: ${chromium} is not installed`);

/** Small enough for SwiftShader: 16 px images, 4 steps of 16, full learning rate at once. */
// 16 steps at 32 px without augmentation: enough to clear chance by a margin (in Deno on
// lavapipe the same settings reach val 0.41 / test 0.66 against 0.25), still quick on SwiftShader.
const BUILTIN_QUERY = "?data=builtin&epochs=2&trainSize=256&valSize=32&testSize=32&seed=1" +
  "&imageSize=32&batchSize=32&scheduler.warmupEpochs=0&data.augment.randomCrop=null" +
  "&data.augment.hflip=0&autostart=1";

const MINUTE = 60_000;

/** Writes `root/{train,val,test}/{red,blue}/*` as PNG and JPEG, plus one corrupt PNG. */
async function writeFolder(root: string): Promise<string[]> {
  const files: string[] = [];
  const counts = { train: 8, val: 4, test: 4 };
  for (const [split, n] of Object.entries(counts)) {
    for (const cls of ["blue", "red"]) {
      for (let i = 0; i < n; i++) {
        const p = `${root}/${split}/${cls}/${i}.${i % 2 ? "jpg" : "png"}`;
        const base = cls === "red" ? [200, 40, 40] : [40, 40, 200];
        await writeImage(
          p,
          rgba(20, 20, (x, y) => base.map((c) => (c + ((x * 7 + y * 13 + i * 31) % 50)) % 256)),
        );
        files.push(p);
      }
    }
  }
  const bad = `${root}/train/red/broken.png`;
  await Deno.writeFile(bad, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5]));
  files.push(bad);
  return files;
}

Deno.test({
  name: "web app in Chromium: built-in run, checkpoint in Deno, folder run, screenshot",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "web_app_test_" });
    console.log(`web app test folder: ${tmp}`);
    await buildWeb(`${tmp}/site`);
    const server = serveStatic(`${tmp}/site`, { port: 0, hostname: "127.0.0.1" });
    const url = `http://127.0.0.1:${server.addr.port}/${BUILTIN_QUERY}`;
    const b = await launch(url, `${tmp}/profile`, chromium);
    try {
      // ---- built-in run from the URL ----
      await b.waitFor(`document.readyState === "complete" && document.body.dataset.state`, MINUTE);
      // Stop after the first step, then Resume from the in-memory `last` checkpoint.
      await b.waitFor(
        `/epoch 1\\/2 step [1-7]\\/8/.test(document.getElementById("status").textContent)`,
        10 * MINUTE,
      );
      await b.evaluate(`document.getElementById("stop").click()`);
      const stopped = await b.waitFor<string>(
        `["stopped", "done", "error"].includes(document.body.dataset.state) && document.body.dataset.state`,
        10 * MINUTE,
      );
      assert.equal(
        stopped,
        "stopped",
        await b.evaluate(`document.getElementById("error").textContent`),
      );
      assert.ok(await b.evaluate<boolean>(`!!document.querySelector("a[download='last.json']")`));
      await b.evaluate(`document.getElementById("resume").click()`);
      const seen = new Set<string>();
      const t0 = Date.now();
      let state = "";
      while (Date.now() - t0 < 10 * MINUTE) {
        state = await b.evaluate<string>("document.body.dataset.state");
        seen.add(state);
        if (state === "done" || state === "error") break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const error = await b.evaluate<string>(`document.getElementById("error").textContent`);
      assert.equal(state, "done", `page state ${state}: ${error}\n${b.console.join("\n")}`);
      assert.ok(seen.has("training"), `states seen: ${[...seen]}`);
      const summary = JSON.parse(
        await b.evaluate<string>(`document.getElementById("summary").textContent`),
      );
      const chance = 1 / summary.class_names.length;
      console.log(
        `built-in run: val/acc_top1 ${summary["val/acc_top1"]}, test/acc_top1 ${
          summary["test/acc_top1"]
        }, ${summary.images_per_sec.toFixed(2)} img/s, ${
          summary.wall_sec.toFixed(0)
        } s, adapter ${summary.adapter}`,
      );
      assert.ok(
        summary["val/acc_top1"] > chance,
        `val/acc_top1 ${summary["val/acc_top1"]} not above chance ${chance}`,
      );
      assert.ok(Number.isFinite(summary["test/acc_top1"]) && summary.images_per_sec > 0);
      // The resumed run ends where an uninterrupted one does: 2 epochs × 256 images / 32 = 16 steps.
      assert.equal(summary.global_step, 16);
      assert.match(
        await b.evaluate<string>(`document.getElementById("log").textContent`),
        /resumed from \/runs\/web\/version_0\/checkpoints\/last\.json/,
      );
      // The figures are drawn by report.ts's functions.
      assert.ok(await b.evaluate<boolean>(`!!document.querySelector("#confusion svg")`));
      assert.ok(await b.evaluate<number>(`document.querySelectorAll("#curves svg").length`) >= 4);

      // ---- downloads: the checkpoint files, loaded in Deno ----
      const dl = `${tmp}/downloads`;
      await Deno.mkdir(dl);
      await b.send("Page.setDownloadBehavior", { behavior: "allow", downloadPath: dl });
      const names = await b.evaluate<string[]>(
        `[...document.querySelectorAll("a[data-kind=checkpoint], a[data-kind=report], a[data-kind=onnx]")].map((a) => { a.click(); return a.download; })`,
      );
      assert.ok(names.some((n) => n.endsWith(".json")), `downloads offered: ${names}`);
      await waitForFiles(dl, names, MINUTE);
      const json = names.find((n) => n.endsWith(".json"))!;
      await getDevice();
      const trained = await loadTrained(`${dl}/${json}`);
      const data = buildData(trained.config);
      try {
        await data.setup();
        const mine = await predictClasses(trained.model, data.testLoader());
        const page = summary.test_logits as number[][];
        assert.equal(mine.logits.length, page.length);
        let maxDiff = 0;
        for (let i = 0; i < page.length; i++) {
          for (let j = 0; j < page[i].length; j++) {
            maxDiff = Math.max(maxDiff, Math.abs(page[i][j] - mine.logits[i][j]));
          }
        }
        console.log(`page vs Deno test logits: max |diff| ${maxDiff.toExponential(2)}`);
        assert.ok(maxDiff < 1e-3, `test logits differ by ${maxDiff}`);
        // Same predictions, except where the page's top two logits are within that difference.
        for (let i = 0; i < page.length; i++) {
          if (mine.classes[i] === summary.test_predictions[i]) continue;
          const sorted = [...page[i]].sort((a, c) => c - a);
          assert.ok(sorted[0] - sorted[1] <= 2 * maxDiff, `image ${i}: prediction differs`);
        }
      } finally {
        data.dispose();
        trained.model.dispose();
      }
      const report = await Deno.readTextFile(`${dl}/report.html`);
      assert.match(report, /Confusion matrix/);

      // ---- screenshot of the finished page ----
      const shot = await b.send<{ data: string }>("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
      });
      const shotPath = `${tmp}/screenshot.png`;
      await Deno.writeFile(shotPath, Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0)));
      console.log(`screenshot: ${shotPath}`);

      // ---- folder run: picked files, one corrupt ----
      const folder = `${tmp}/shapes`;
      const files = await writeFolder(folder);
      const doc = await b.send<{ root: { nodeId: number } }>("DOM.getDocument");
      const input = await b.send<{ nodeId: number }>("DOM.querySelector", {
        nodeId: doc.root.nodeId,
        selector: "#folder",
      });
      // A directory path gives the files their webkitRelativePath, as a picked folder does.
      await b.send("DOM.setFileInputFiles", { nodeId: input.nodeId, files: [folder] });
      assert.equal(files.length, 33);
      await b.waitFor(`/\\/picked\\/shapes/.test(document.getElementById("yaml").value)`, 10_000);
      // Skip corrupt images instead of failing (data.onCorrupt), and keep the last partial batch
      // so that every image is read, through the settings YAML.
      await b.evaluate(`(() => {
        const y = document.getElementById("yaml");
        y.value = y.value.replace(/^data:\\n/m, "data:\\n  onCorrupt: skip\\n  dropLast: false\\n");
        y.dispatchEvent(new Event("change"));
      })()`);
      await b.evaluate(`document.getElementById("start").click()`);
      await b.waitFor(`document.body.dataset.state === "training"`, 10_000);
      const end = await b.waitFor<string>(
        `["done", "error"].includes(document.body.dataset.state) && document.body.dataset.state`,
        10 * MINUTE,
      );
      const err2 = await b.evaluate<string>(`document.getElementById("error").textContent`);
      assert.equal(end, "done", `folder run: ${err2}`);
      const corrupt = await b.evaluate<string>(`document.getElementById("corrupt").textContent`);
      assert.match(corrupt, /broken\.png/);
      const s2 = JSON.parse(
        await b.evaluate<string>(`document.getElementById("summary").textContent`),
      );
      assert.deepEqual(s2.class_names, ["blue", "red"]);
      console.log(`folder run: test/acc_top1 ${s2["test/acc_top1"]}; corrupt listed: ${corrupt}`);

      // ---- predict panel: a picked image gets its top classes by name ----
      const predictInput = await b.send<{ nodeId: number }>("DOM.querySelector", {
        nodeId: doc.root.nodeId,
        selector: "#predict-file",
      });
      await b.send("DOM.setFileInputFiles", {
        nodeId: predictInput.nodeId,
        files: [`${folder}/test/red/0.png`],
      });
      const top = await b.waitFor<string[]>(
        `document.querySelectorAll("#predictions li").length === 2 &&
          [...document.querySelectorAll("#predictions li")].map((li) => li.textContent)`,
        // The first prediction compiles the batch-1 eval pipelines on SwiftShader: minutes on a
        // loaded 2-core machine.
        5 * MINUTE,
      ).catch(async (e) => {
        const log = await b.evaluate<string>(`document.getElementById("log")?.textContent ?? ""`);
        throw new Error(`${(e as Error).message}; page log: ${log.slice(-500)}`);
      });
      console.log(`predict test/red/0.png: ${top.join(", ")}`);
      assert.equal(new Set(top.map((t) => t.split(" ")[0])).size, 2);
      if (s2["test/acc_top1"] === 1) assert.match(top[0], /^red /);

      // ---- Fashion-MNIST IDX files picked ----
      const idxFiles = await writeIdx(`${tmp}/idx`, 40, 20);
      const idxInput = await b.send<{ nodeId: number }>("DOM.querySelector", {
        nodeId: doc.root.nodeId,
        selector: "#idx",
      });
      await b.send("DOM.setFileInputFiles", { nodeId: idxInput.nodeId, files: idxFiles });
      await b.waitFor(`/fashion-mnist/.test(document.getElementById("yaml").value)`, 10_000);
      // 16 px keeps SwiftShader quick (the page set Fashion-MNIST's native 28).
      await b.evaluate(`(() => {
        const y = document.getElementById("yaml");
        y.value = y.value.replace(/^  imageSize: 28$/m, "  imageSize: 16");
        y.dispatchEvent(new Event("change"));
      })()`);
      await b.evaluate(`document.getElementById("start").click()`);
      await b.waitFor(`document.body.dataset.state === "training"`, 10_000);
      const end3 = await b.waitFor<string>(
        `["done", "error"].includes(document.body.dataset.state) && document.body.dataset.state`,
        10 * MINUTE,
      );
      const err3 = await b.evaluate<string>(`document.getElementById("error").textContent`);
      assert.equal(end3, "done", `IDX run: ${err3}`);
      const s3 = JSON.parse(
        await b.evaluate<string>(`document.getElementById("summary").textContent`),
      );
      assert.deepEqual(s3.class_names, [...FASHION_MNIST_CLASSES]);
      assert.equal(s3.test_predictions.length, 20);
      console.log(`IDX run: test/acc_top1 ${s3["test/acc_top1"]}`);
    } finally {
      await b.close();
      await server.shutdown();
    }
  },
});

/** Writes Fashion-MNIST-shaped IDX files (28x28, labels 0..9) with `n` train and `m` test images. */
async function writeIdx(dir: string, n: number, m: number): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const header = (magic: number, dims: number[]) => {
    const h = new DataView(new ArrayBuffer(4 + 4 * dims.length));
    h.setUint32(0, magic);
    dims.forEach((d, i) => h.setUint32(4 + 4 * i, d));
    return new Uint8Array(h.buffer);
  };
  const out: string[] = [];
  for (const [prefix, count] of [["train", n], ["t10k", m]] as const) {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    // Class c: a bright horizontal band at row 2c (a pattern a ResNet can tell apart).
    const pixels = new Uint8Array(count * 784);
    for (let i = 0; i < count; i++) {
      for (let x = 0; x < 28; x++) pixels[i * 784 + (2 * labels[i] + 4) * 28 + x] = 255;
    }
    const img = `${dir}/${prefix}-images-idx3-ubyte`;
    const lab = `${dir}/${prefix}-labels-idx1-ubyte`;
    await Deno.writeFile(img, new Uint8Array([...header(0x803, [count, 28, 28]), ...pixels]));
    await Deno.writeFile(lab, new Uint8Array([...header(0x801, [count]), ...labels]));
    out.push(img, lab);
  }
  return out;
}

async function waitForFiles(dir: string, names: string[], timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (true) {
    const have = new Set<string>();
    for await (const e of Deno.readDir(dir)) have.add(e.name);
    if (names.every((n) => have.has(n))) return;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`downloads: expected ${names.join(", ")} in ${dir}, got ${[...have]}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "web app in Chromium: bad settings and a browser without WebGPU give their messages",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "web_app_errors_" });
    await buildWeb(`${tmp}/site`);
    const server = serveStatic(`${tmp}/site`, { port: 0, hostname: "127.0.0.1" });
    const base = `http://127.0.0.1:${server.addr.port}/`;
    const b = await launch("about:blank", `${tmp}/profile`, chromium);
    try {
      await b.send("Page.enable");
      const open = async (query: string) => {
        await b.send("Page.navigate", { url: base + query });
        await b.waitFor(
          `document.readyState === "complete" && document.body?.dataset.state`,
          MINUTE,
        );
        return await b.waitFor<string>(
          `document.body.dataset.state === "error" && document.getElementById("error").textContent`,
          MINUTE,
        );
      };
      // Bad settings: the config validator's own message.
      let expected = "";
      try {
        // The page writes URL settings into its YAML, as here, so the message locates the line.
        const doc = parseDocument(WEB_DEFAULT_YAML);
        doc.setIn(["trainer", "maxEpochs"], 0);
        resolveConfig(doc.toString(), "settings", { models: modelNames(), checkPaths: false });
      } catch (e) {
        expected = (e as Error).message;
      }
      assert.match(expected, /^settings:\d+ trainer\.maxEpochs: expected a positive integer/);
      const bad = await open("?epochs=0&autostart=1");
      assert.equal(bad, `config error: ${expected}`);
      // No WebGPU (navigator.gpu removed before the page's scripts run).
      await b.send("Page.addScriptToEvaluateOnNewDocument", {
        source: "delete Navigator.prototype.gpu;",
      });
      const none = await open("?autostart=1");
      assert.match(none, /WebGPU is not available/);
      assert.match(none, /Chrome/);
      assert.match(none, /--enable-unsafe-webgpu/);
    } finally {
      await b.close();
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "web app in Chromium: a lost GPU device gives its message and keeps `last` downloadable",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "web_lost_test_" });
    await buildWeb(`${tmp}/site`);
    const server = serveStatic(`${tmp}/site`, { port: 0, hostname: "127.0.0.1" });
    const query = "?data=builtin&epochs=3&trainSize=64&valSize=32&testSize=32&seed=1" +
      "&imageSize=16&batchSize=16&scheduler.warmupEpochs=0&autostart=1";
    const b = await launch(
      `http://127.0.0.1:${server.addr.port}/${query}`,
      `${tmp}/profile`,
      chromium,
    );
    try {
      // Once epoch 1 has written `last`, crash Chromium's GPU process: a real device loss.
      await b.waitFor(
        `/epoch 2\\/3/.test(document.getElementById("status").textContent)`,
        10 * MINUTE,
      );
      await b.send("Browser.crashGpuProcess");
      const message = await b.waitFor<string>(
        `["error", "done"].includes(document.body.dataset.state) &&
          document.body.dataset.state + ": " + document.getElementById("error").textContent`,
        5 * MINUTE,
      );
      assert.match(message, /^error: .*device lost/i);
      assert.match(message, /last checkpoint .* under Results/);
      const links = await b.evaluate<string[]>(
        `[...document.querySelectorAll("a[download]")].map((a) => a.download)`,
      );
      assert.ok(links.includes("last.json"), `download links: ${links}`);
      assert.ok(links.some((l) => /^last-epoch=0-.*\.safetensors$/.test(l)), `links: ${links}`);
      // The checkpoint JSON is there to download (a blob URL the page still holds).
      const json = await b.evaluate<string>(
        `fetch(document.querySelector("a[download='last.json']").href).then((r) => r.text())`,
      );
      assert.equal(JSON.parse(json).epoch, 0);
    } finally {
      await b.close();
      await server.shutdown();
    }
  },
});
