import type { StageManifest } from '../../../engine/stage-api.js';

/**
 * `uses: testing/echo` — a tiny kind that exists ONLY for the engine's tests (test/engine/): it copies a file,
 * appends a message, reports progress and provenance, and can be told to fail. Not for real pipelines.
 */
export const manifest: StageManifest = {
  kind: 'testing/echo',
  description: 'Test-only kind: copy `src` to `out` with `message` appended; reports progress and record().',
  with: {
    src: { type: 'path', role: 'dep', required: true, description: 'File to copy.' },
    out: { type: 'path', role: 'out', required: true, description: 'File to write.' },
    message: { type: 'string', default: 'echo', description: 'Line appended to the copy.' },
    steps: { type: 'integer', default: 3, description: 'Progress updates to report.' },
    fail: {
      type: 'enum',
      values: ['none', 'stage-error', 'crash', 'partial'],
      default: 'none',
      description: 'Fail on purpose: a StageError, an unexpected exception, or after writing half of `out`.',
    },
  },
  resources: { cpus: 1, memBytes: 0, gpus: 0 },
};
