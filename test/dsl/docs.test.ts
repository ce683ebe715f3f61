import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../engine/dsl/load.js';
import { loadOk } from './helpers.js';

const DOC = fileURLToPath(new URL('../../docs/pipeline-yaml.md', import.meta.url));
const blocks = [...readFileSync(DOC, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('docs/pipeline-yaml.md', () => {
  it('has YAML examples, and every one parses', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) expect(parseYaml('/doc.yaml', b).diagnostics, b).toEqual([]);
  });

  it('the opening example loads and expands to the six stages the text names', async () => {
    const p = await loadOk(blocks[0]!, { 'train.js': '', 'data/vindr_cxr/': '', 'data/padchest/': '' }, {
      resolveKind: async (k) =>
        k === 'evaluate/fpr'
          ? {
              kind: k,
              description: '',
              with: {
                model: { type: 'path', role: 'dep', required: true, description: '' },
                split: { type: 'string', required: true, description: '' },
                out: { type: 'path', role: 'out', required: true, description: '' },
              },
            }
          : undefined,
    });
    const text = readFileSync(DOC, 'utf8');
    for (const s of p.stages) expect(text).toContain(`\`${s.name}\``);
    expect(p.stages).toHaveLength(6);
  });
});
