/**
 * Data configuration: the `data` section of a training config and its defaults. The fields
 * are declared (type, doc, range, default) in `options.ts`; this module is their public face.
 *
 * @module
 */

import { DATA_SCHEMA, type DataConfig } from "./options.ts";

export type { AugmentConfig, BuiltinConfig, DataConfig, DataSource } from "./options.ts";

/** Defaults of every data field (built by the schema from an empty section). */
export const DEFAULT_DATA_CONFIG: DataConfig = DATA_SCHEMA.parse({});
