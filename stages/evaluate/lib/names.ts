/** Display names and colours of the datasets (METHODS B.8; seaborn "colorblind"). Unknown ids show as themselves. */
export const DISPLAY_NAMES: Record<string, string> = {
  vindr_cxr: 'VinDr-CXR',
  padchest: 'PadChest',
  nih_cxr18: 'NIH',
  chexbert: 'CheXBERT',
  vindr_pcxr: 'VinDr-PCXR',
};

export const DATASET_COLOURS: Record<string, string> = {
  vindr_cxr: '#0173b2',
  padchest: '#de8f05',
  nih_cxr18: '#029e73',
  chexbert: '#d55e00',
  vindr_pcxr: '#cc78bc',
};

export const displayName = (id: string): string => DISPLAY_NAMES[id] ?? id;

/** The split a dataset is evaluated on: children's set `test`, adults' healthy hold-out otherwise. */
export function defaultSplit(dset: string): string {
  return dset === 'vindr_pcxr' ? 'test' : 'test_healthy_adult';
}
