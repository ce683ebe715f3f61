import type { StageManifest } from '../../../engine/stage-api.js';

/**
 * `uses: review/analyze` — the dataset review (METHODS.md part A): reads the authors' workbook and writes the summary
 * statistics, the modality × task breakdown, the pediatric dataset lists and the data behind each review figure.
 */
export const manifest: StageManifest = {
  kind: 'review/analyze',
  description:
    'Dataset review of the public-datasets workbook: summary statistics, modality × task breakdown, pediatric ' +
    'datasets per modality, and the data of the age-documentation, country, task and modality figures.',
  with: {
    workbook: {
      type: 'path',
      role: 'dep',
      default: 'data/seed/metadata/public_datasets_metadata.xlsx',
      description: 'The review workbook (.xlsx); sheets are read by position as the authors do (METHODS A.1).',
    },
    out: {
      type: 'path',
      role: 'out',
      default: 'out/review/data/',
      description:
        'Directory for the outputs: summary_stats.csv/.json, breakdown_by_modality_and_task.csv, breakdown.csv, ' +
        'peds_datasets/*.csv, age_documented_how.csv, countries.csv, countries_all.csv, task_categories.csv, ' +
        'modalities.csv, review.json, printed.json.',
    },
    exclude_cancer: {
      type: 'boolean',
      default: false,
      description:
        'Drop cancer datasets (METHODS A.7) from the analysis set behind the breakdown, the pediatric lists and the ' +
        'figures. The summary table keeps its fixed rows ("Total w/o Cancer" always excludes them).',
    },
    top_countries: {
      type: 'integer',
      default: 3,
      description: 'How many countries the country figure shows (the authors show 3).',
    },
    max_sheets: {
      type: 'integer',
      default: 64,
      description:
        'Most sheets the workbook may have (the authors\' has 15). The other bounds follow the stage\'s memory budget ' +
        '(`resources: { mem: … }`): file and decompressed XML up to 1/8 of it, one held cell per 256 bytes of it.',
    },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 * 1024, gpus: 0 },
};
