/**
 * Metadata files and image paths in the layouts of the real datasets (METHODS C.1/C.2), so that everything
 * downstream (metadata parsing, preprocessing, splitting) runs the same code as on the real data.
 */
import { stringify } from 'csv-stringify/sync';
import { formatAgeString, type Layout, type SynthImage } from './cohort.js';
import type { Rng } from './prng.js';

export type ImageFormat = 'png8' | 'png16' | 'dicom';

/** VinDr-CXR label columns, in the published order (test file says "Other disease" instead of "Other diseases"). */
export const VINDR_CXR_LABELS = [
  'Aortic enlargement', 'Atelectasis', 'Calcification', 'Cardiomegaly', 'Clavicle fracture', 'Consolidation', 'Edema',
  'Emphysema', 'Enlarged PA', 'ILD', 'Infiltration', 'Lung Opacity', 'Lung cavity', 'Lung cyst', 'Mediastinal shift',
  'Nodule/Mass', 'Pleural effusion', 'Pleural thickening', 'Pneumothorax', 'Pulmonary fibrosis', 'Rib fracture',
  'Other lesion', 'COPD', 'Lung tumor', 'Pneumonia', 'Tuberculosis', 'Other diseases', 'No finding',
] as const;

export const VINDR_PCXR_LABELS = [
  'No finding', 'Bronchitis', 'Brocho-pneumonia', 'Other disease', 'Bronchiolitis', 'Situs inversus', 'Pneumonia',
  'Pleuro-pneumonia', 'Diagphramatic hernia', 'Tuberculosis', 'Congenital emphysema', 'CPAM',
  'Hyaline membrane disease', 'Mediastinal tumor', 'Lung tumor',
] as const;

export const NIH_CSV = 'Data_Entry_2017.csv';
export const PADCHEST_CSV = 'PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv';

export interface LayoutFiles {
  /** Relative path → CSV text. */
  csv: Record<string, string>;
  /** Image index → relative path of its file. */
  imagePath(img: SynthImage): string;
}

const extension = (f: ImageFormat): string => (f === 'dicom' ? '.dicom' : '.png');

function vindrCxrLabels(img: SynthImage): Record<string, number> {
  const l: Record<string, number> = Object.fromEntries(VINDR_CXR_LABELS.map((c) => [c, 0]));
  if (img.cardiomegaly) l['Cardiomegaly'] = 1;
  for (const f of img.findings) l[f === 'nodule' ? 'Nodule/Mass' : f === 'effusion' ? 'Pleural effusion' : 'Lung Opacity'] = 1;
  if (!img.cardiomegaly && img.findings.length === 0) l['No finding'] = 1;
  return l;
}

function vindrPcxrLabels(img: SynthImage): Record<string, number> {
  const l: Record<string, number> = Object.fromEntries(VINDR_PCXR_LABELS.map((c) => [c, 0]));
  if (img.cardiomegaly) l['Other disease'] = 1;
  for (const f of img.findings) l[f === 'nodule' ? 'Lung tumor' : f === 'effusion' ? 'Pleuro-pneumonia' : 'Pneumonia'] = 1;
  if (!img.cardiomegaly && img.findings.length === 0) l['No finding'] = 1;
  return l;
}

/** VinDr-CXR train: three radiologists per image; one may disagree on a label, so the majority vote is the truth. */
function vindrCxr(images: SynthImage[], rng: Rng): Record<string, string> {
  const train: unknown[][] = [];
  const test: unknown[][] = [];
  for (const img of images) {
    const truth = vindrCxrLabels(img);
    if (img.split === 'test') {
      test.push([img.imageId, ...VINDR_CXR_LABELS.map((c) => truth[c])]);
      continue;
    }
    const r = rng.fork(img.imageId);
    const rads = new Set<number>();
    while (rads.size < 3) rads.add(r.int(1, 17));
    const dissenter = r.bernoulli(0.15) ? r.int(0, 2) : -1;
    [...rads].forEach((rad, k) => {
      const labels = { ...truth };
      if (k === dissenter) {
        const c = r.pick(['Cardiomegaly', 'Aortic enlargement', 'Pleural thickening'] as const);
        labels[c] = 1 - labels[c]!;
      }
      train.push([img.imageId, `R${rad}`, ...VINDR_CXR_LABELS.map((c) => labels[c])]);
    });
  }
  const testHeader = VINDR_CXR_LABELS.map((c) => (c === 'Other diseases' ? 'Other disease' : c));
  return {
    'annotations/image_labels_train.csv': stringify([['image_id', 'rad_id', ...VINDR_CXR_LABELS], ...train]),
    'annotations/image_labels_test.csv': stringify([['image_id', ...testHeader], ...test]),
  };
}

function vindrPcxr(images: SynthImage[], rng: Rng): Record<string, string> {
  const rows = { train: [] as unknown[][], test: [] as unknown[][] };
  for (const img of images) {
    const l = vindrPcxrLabels(img);
    rows[img.split].push([img.imageId, `R${rng.int(1, 9)}`, ...VINDR_PCXR_LABELS.map((c) => l[c])]);
  }
  const header = ['image_id', 'rad_ID', ...VINDR_PCXR_LABELS];
  return {
    'image_labels_train.csv': stringify([header, ...rows.train]),
    'image_labels_test.csv': stringify([header, ...rows.test]),
  };
}

/** NIH `Data_Entry_2017.csv`, including its odd split header and trailing empty column. */
function nih(images: SynthImage[], size: number): Record<string, string> {
  const header = [
    'Image Index', 'Finding Labels', 'Follow-up #', 'Patient ID', 'Patient Age', 'Patient Gender', 'View Position',
    'OriginalImage[Width', 'Height]', 'OriginalImagePixelSpacing[x', 'y]', '',
  ];
  const rows = images.map((img) => {
    const labels = [
      ...(img.cardiomegaly ? ['Cardiomegaly'] : []),
      ...img.findings.map((f) => (f === 'nodule' ? 'Nodule' : f === 'effusion' ? 'Effusion' : 'Infiltration')),
    ];
    return [
      img.imageId,
      labels.length ? labels.join('|') : 'No Finding',
      img.visit,
      Number(img.patientId),
      img.ageDays === null ? '' : formatAgeString(img.ageDays),
      img.sex,
      img.view,
      size,
      size,
      0.143,
      0.143,
      '',
    ];
  });
  return { [NIH_CSV]: stringify([header, ...rows]) };
}

/** PadChest: ages come from StudyDate_DICOM − PatientBirth; labels are Python list literals. */
function padchest(images: SynthImage[], size: number): Record<string, string> {
  const header = [
    'ImageID', 'ImageDir', 'StudyDate_DICOM', 'StudyID', 'PatientID', 'PatientBirth', 'PatientSex_DICOM',
    'ViewPosition_DICOM', 'Projection', 'MethodProjection', 'Pediatric', 'Modality_DICOM', 'Rows_DICOM', 'Columns_DICOM',
    'ReportID', 'MethodLabel', 'Labels',
  ];
  const rows = images.map((img, i) => {
    const labels = [
      ...(img.cardiomegaly ? ['cardiomegaly'] : []),
      ...img.findings.map((f) => (f === 'nodule' ? 'nodule' : f === 'effusion' ? 'pleural effusion' : 'infiltrates')),
    ];
    const birth = img.ageDays === null ? '' : String(img.studyYear - Math.floor(img.ageDays / 365.25));
    const list = `[${(labels.length ? labels : ['normal']).map((l) => `'${l}'`).join(', ')}]`;
    return [
      img.imageId,
      0,
      `${img.studyYear}0${1 + (i % 9)}15`,
      img.patientId,
      `p${img.patientId}`,
      birth,
      img.sex,
      img.view === 'L' ? 'LATERAL' : 'POSTEROANTERIOR',
      img.view === 'L' ? 'L' : 'PA',
      'Manual review of DICOM fields',
      Math.floor((img.ageDays ?? 36500) / 365.25) < 18 ? 'PED' : 'No',
      'CR',
      size,
      size,
      1000 + i,
      'Physician',
      list,
    ];
  });
  return { [PADCHEST_CSV]: stringify([header, ...rows]) };
}

export function layoutFiles(layout: Layout, images: SynthImage[], format: ImageFormat, size: number, rng: Rng): LayoutFiles {
  const ext = extension(format);
  switch (layout) {
    case 'vindr_cxr':
      return { csv: vindrCxr(images, rng), imagePath: (img) => `${img.split}/${img.imageId}${ext}` };
    case 'vindr_pcxr':
      return { csv: vindrPcxr(images, rng), imagePath: (img) => `${img.split}/${img.imageId}${ext}` };
    case 'nih':
      // NIH file names carry ".png" already (they are the Image Index).
      return { csv: nih(images, size), imagePath: (img) => `images-224/${img.imageId.replace(/\.png$/, '')}${ext}` };
    case 'padchest':
      return { csv: padchest(images, size), imagePath: (img) => `images-224/${img.imageId.replace(/\.png$/, '')}${ext}` };
  }
}
