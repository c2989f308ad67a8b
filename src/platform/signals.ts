/**
 * The interrupt seam: Ctrl-C (SIGINT) and SIGTERM, through the host seam. A browser worker has no
 * signals; its host would call the returned handler's equivalent through a message.
 *
 * @module
 */

import { host } from "./host.ts";

/** The signals that ask a run to stop. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Exit code of a process stopped by a signal it handled (128 + SIGINT's 2, as shells use). */
export const INTERRUPTED_EXIT_CODE = 130;

/**
 * Calls `handler` on the first SIGINT or SIGTERM; a second one exits the process at once
 * with code 130 (whatever is being written then is abandoned; atomic writes keep the
 * previous files intact). The returned function removes the listeners. Where a signal
 * cannot be listened to (SIGTERM on Windows), it is skipped.
 */
export function onStopSignal(handler: (signal: string) => void): () => void {
  const removers: (() => void)[] = [];
  let seen = 0;
  for (const sig of STOP_SIGNALS) {
    const fn = () => {
      if (seen++ > 0) host.exit(INTERRUPTED_EXIT_CODE);
      handler(sig);
    };
    const remove = host.onSignal(sig, fn);
    if (remove) removers.push(remove);
  }
  return () => {
    for (const r of removers) r();
  };
}
