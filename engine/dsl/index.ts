/** The pipeline DSL: YAML → validated Pipeline (see docs/pipeline-yaml.md). */
export { loadPipeline, pipelineWarnings, type LoadOptions } from './pipeline.js';
export { formatDiagnostic, sortDiagnostics, type Diagnostic } from './diagnostics.js';
export { pipelineJsonSchema } from './schema.js';
export { shellQuote } from './quote.js';
export { parseMem, parseTime } from './units.js';
export type { SourceSpan } from '../model.js';
