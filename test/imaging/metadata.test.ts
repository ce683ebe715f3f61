import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgeString, readDatasetMetadata, readDicomDemographics } from '../../stages/lib/metadata.js';
import { writeDicom } from '../../stages/synth/cxr/dicom.js';
import { createRng } from '../../stages/synth/cxr/prng.js';
import { workspace, type Ws } from '../support/workspace.js';

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'metadata-');
});
afterAll(async () => ws.cleanup());

describe('metadata', () => {
  it('parses ages with the B.2 rule', () => {
    expect(parseAgeString('045Y')).toBe(45);
    expect(parseAgeString('126Y')).toBeNull();
    expect(parseAgeString('010M')).toBe(0);
    expect(parseAgeString('030M')).toBe(2);
    expect(parseAgeString('020D')).toBeCloseTo(20 / 365, 12);
    expect(parseAgeString('')).toBeNull();
    expect(parseAgeString('O')).toBeNull();
    expect(parseAgeString('4.5Y')).toBeNull();
    expect(parseAgeString('58')).toBe(58); // NIH v2020 integer ages (the original crashes on them)
  });

  it('reads DICOM demographics from the header without loading large pixel data, and names unreadable files', async () => {
    const size = 400; // 320 kB of pixel data, beyond the 128 kB header read
    const enc = { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: null } as const;
    const file = join(ws.dir, 'big.dicom');
    await writeFile(file, writeDicom(new Uint16Array(size * size), size, enc, { age: '067Y', sex: 'F', id: 'p' }, createRng('m')));
    expect(await readDicomDemographics(file)).toEqual({ ok: true, value: { sex: 'F', age: '067Y', size: '', weight: '' } });
    await writeFile(join(ws.dir, 'bad.dicom'), 'not dicom at all, but long enough to try parsing it as one'.repeat(10));
    const r = await readDicomDemographics(join(ws.dir, 'bad.dicom'));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/bad\.dicom: not a readable DICOM file \(.+\)/);
  });

  it('reports a missing table or column by file name', async () => {
    const r = await readDatasetMetadata(ws.dir, 'vindr_pcxr');
    expect(r).toEqual({ ok: false, error: `${join(ws.dir, 'image_labels_train.csv')}: file not found` });
    await writeFile(join(ws.dir, 'Data_Entry_2017.csv'), 'Image Index,Finding Labels\nx.png,No Finding\n');
    const n = await readDatasetMetadata(ws.dir, 'nih');
    expect(n.ok === false && n.error).toContain('Data_Entry_2017.csv: missing column(s) "Follow-up #", "Patient ID"');
  });
});
