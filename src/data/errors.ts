/**
 * The error type of the data pipeline.
 *
 * @module
 */

/**
 * A bad data input or data setting: a corrupt image, an empty class folder, a wrong IDX header,
 * an invalid `data` config field. The message is one line and names the file or field.
 */
export class DataError extends Error {
  /** Creates a data error with a one-line message. */
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, " "));
    this.name = "DataError";
  }
}

/** Turns anything thrown into a one-line reason (no stack trace). */
export function reasonOf(e: unknown): string {
  let msg: string;
  if (e instanceof Error) msg = e.message;
  else if (typeof e === "object" && e !== null && "message" in e) msg = String(e.message);
  else if (typeof e === "object" && e !== null) msg = JSON.stringify(e) ?? String(e);
  else msg = String(e);
  return msg.replace(/\s*\n\s*/g, " ").slice(0, 300);
}
