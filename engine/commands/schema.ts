/** `pipe schema`: the JSON Schema of pipeline files, with the `with:` blocks of every known kind. */
import { pipelineJsonSchema } from '../dsl/schema.js';
import { knownKinds, loadKinds, resolveKind } from '../kinds.js';
import type { StageManifest } from '../stage-api.js';

export async function schemaCommand(): Promise<number> {
  await loadKinds();
  const kinds = knownKinds().map((k) => resolveKind(k)).filter((m): m is StageManifest => m !== undefined);
  process.stdout.write(`${JSON.stringify(pipelineJsonSchema(kinds), null, 2)}\n`);
  return 0;
}
