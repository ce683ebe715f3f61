/**
 * The learning-curve figure of a training run as a self-contained Vega-Lite v5 spec (data inline), so `uses: plot`
 * renders it with no extra data file: loss (train vs validation) on the left, validation accuracy/AUROC/AP right.
 */
export interface CurvePoint {
  epoch: number;
  train_loss: number;
  val_loss: number;
  val_acc: number;
  val_auroc: number;
  val_ap: number;
}

export function learningCurveRows(epochs: readonly CurvePoint[]): Array<{ epoch: number; panel: string; metric: string; value: number | null }> {
  const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return epochs.flatMap((e) => [
    { epoch: e.epoch, panel: 'loss', metric: 'train loss', value: num(e.train_loss) },
    { epoch: e.epoch, panel: 'loss', metric: 'validation loss', value: num(e.val_loss) },
    { epoch: e.epoch, panel: 'validation', metric: 'accuracy', value: num(e.val_acc) },
    { epoch: e.epoch, panel: 'validation', metric: 'AUROC', value: num(e.val_auroc) },
    { epoch: e.epoch, panel: 'validation', metric: 'average precision', value: num(e.val_ap) },
  ]);
}

export function learningCurveSpec(epochs: readonly CurvePoint[], title: string): Record<string, unknown> {
  const panel = (name: string, yTitle: string, domain?: [number, number]): Record<string, unknown> => ({
    transform: [{ filter: { field: 'panel', equal: name } }],
    width: 260,
    height: 180,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: yTitle, ...(domain ? { scale: { domain } } : {}) },
      color: { field: 'metric', type: 'nominal', title: null },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: learningCurveRows(epochs) },
    hconcat: [panel('loss', 'cross-entropy'), panel('validation', 'validation metric', [0, 1])],
    resolve: { scale: { color: 'independent' } },
  };
}
