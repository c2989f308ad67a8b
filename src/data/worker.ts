/**
 * The data worker: decodes and transforms samples off the main thread. Messages:
 * `{ type: "init", init: ProcessorInit }` once, then `{ type: "task", id, task: BatchTask }`,
 * answered by `{ id, result: BatchResult }` (images transferred) or `{ id, error: string }`.
 *
 * @module
 */

import { DataError, reasonOf } from "./errors.ts";
import { type BatchTask, type ProcessorInit, SampleProcessor } from "./source.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let processor: SampleProcessor | null = null;
// Tasks run one at a time so the cache and the decoders see a simple sequence.
let chain: Promise<void> = Promise.resolve();

scope.onmessage = (e: MessageEvent) => {
  const msg = e.data as
    | { type: "init"; init: ProcessorInit }
    | { type: "task"; id: number; task: BatchTask };
  if (msg.type === "init") {
    processor = new SampleProcessor(msg.init);
    return;
  }
  chain = chain.then(async () => {
    try {
      if (processor === null) throw new Error("data worker got a task before init");
      const result = await processor.run(msg.task);
      scope.postMessage({ id: msg.id, result }, [result.images.buffer as ArrayBuffer]);
    } catch (err) {
      scope.postMessage({
        id: msg.id,
        error: reasonOf(err),
        dataError: err instanceof DataError,
      });
    }
  });
};
