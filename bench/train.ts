// `npm run bench -- train [--batches N] [--arch small_cnn] [--threads T]`: training and inference throughput of the
// default CNN at 128×128 under the tfjs backend pipe picks (PIPE_TF_BACKEND forces one), using the stage's real
// training step (AdamW with decoupled decay, MixUp, global-norm clipping, batch 32) and eval-mode inference (batch
// 64). When Debian's python3-torch is installed (/usr/bin/python3 -c 'import torch'), the same architecture and step
// run in PyTorch CPU in the same run, as the baseline: `vs pytorch_cpu` = ours / PyTorch (above 1 = we are faster).
// PyTorch uses its default thread count (torch.get_num_threads(), printed) unless --threads is given.
// The two sides run in alternating rounds (--rounds, default 3) and each reports its best round, so a burst of other
// load on this shared machine does not decide the ratio; per-CPU-second rates are printed as a second view.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '../stages/lib/tf/adamw.js';
import { selectBackend } from '../stages/lib/tf/backend.js';
import { ARCH_SPECS, buildModel, type Arch } from '../stages/lib/tf/models.js';
import { Rng } from '../stages/lib/tf/rng.js';
import { trainStep } from '../stages/train/classifier/trainer.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const BATCHES = Number(arg('batches', '8'));
const ARCH = arg('arch', 'small_cnn') as Arch;
const THREADS = arg('threads', '');
const ROUNDS = Math.max(1, Number(arg('rounds', '3')));
const SIZE = 128;
const TRAIN_BATCH = 32;
const INFER_BATCH = 64;

function bench(figure: string, value: number, unit: string): void {
  console.log(`BENCH ${figure} ${Number(value.toFixed(1))} ${unit}`);
}

interface Rates {
  train: number;
  infer: number;
  /** Images per CPU-second (all threads): what the rate would be on an otherwise idle core. */
  trainCpu: number;
  inferCpu: number;
}

const cpuSeconds = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

/** Builds the model once; each call of the returned function times one round of training and inference. */
async function ours(): Promise<{ backend: string; round: () => Rates }> {
  const choice = await selectBackend();
  console.log(`# ${choice.detail}`);
  const rng = new Rng(1);
  const model = buildModel(ARCH, SIZE, 1);
  console.log(`# tfjs parameters ${model.countParams()}`);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamW({ lr: 1e-3, weightDecay: 5e-4 });
  const pixels = Uint8Array.from({ length: TRAIN_BATCH * SIZE * SIZE }, () => rng.int(256));
  const labels = Array.from({ length: TRAIN_BATCH }, (_, i) => i % 2);
  const cfg = { imageSize: SIZE, gradClip: 1, mixupAlpha: 1 };
  const step = (): void => {
    trainStep(model, variables, opt, cfg, { pixels, labels, height: SIZE, width: SIZE, mean: 0.5, std: 0.25, lambda: rng.beta(1, 1) });
  };
  const x = tf.randomNormal([INFER_BATCH, SIZE, SIZE, 1], 0, 1, 'float32', 2);
  const predict = (): void => {
    tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  };
  step();
  step(); // warm-up: kernel setup, XNNPACK operator creation, optimizer slots
  predict();
  const round = (): Rates => {
    let t0 = performance.now();
    let c0 = process.cpuUsage();
    for (let b = 0; b < BATCHES; b++) step();
    const train = (BATCHES * TRAIN_BATCH) / ((performance.now() - t0) / 1000);
    const trainCpu = (BATCHES * TRAIN_BATCH) / cpuSeconds(c0);
    t0 = performance.now();
    c0 = process.cpuUsage();
    const inferBatches = Math.max(2, Math.round(BATCHES / 2));
    for (let b = 0; b < inferBatches; b++) predict();
    const infer = (inferBatches * INFER_BATCH) / ((performance.now() - t0) / 1000);
    const inferCpu = (inferBatches * INFER_BATCH) / cpuSeconds(c0);
    return { train, infer, trainCpu, inferCpu };
  };
  return { backend: choice.name, round };
}

/** The same network, step and timing loop in PyTorch (NCHW, its default CPU layout). */
function pytorchScript(): string {
  const ch = ARCH_SPECS[ARCH].blockChannels;
  const bn = ARCH_SPECS[ARCH].batchNorm;
  return `
import time, sys, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(1)
if ${THREADS === '' ? 'False' : 'True'}: torch.set_num_threads(${THREADS || 1})
print('# pytorch', torch.__version__, 'threads', torch.get_num_threads())
layers, cin = [], 1
for c in ${JSON.stringify(ch)}:
    layers += [nn.Conv2d(cin, c, 3, padding=1, bias=${bn ? 'False' : 'True'})]
    ${bn ? 'layers += [nn.BatchNorm2d(c)]' : 'pass'}
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    cin = c
model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 2))
print('# parameters', sum(p.numel() for p in model.parameters()))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
x = torch.randn(${TRAIN_BATCH}, 1, ${SIZE}, ${SIZE})
y = F.one_hot(torch.arange(${TRAIN_BATCH}) % 2, 2).float()
beta = torch.distributions.Beta(1.0, 1.0)
def step():
    lam = float(beta.sample())
    xm = lam * x + (1 - lam) * x.roll(1, 0)
    ym = lam * y + (1 - lam) * y.roll(1, 0)
    opt.zero_grad()
    loss = torch.sum(-ym * F.log_softmax(model(xm), 1), 1).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss)
model.train(); step(); step()
t, c = time.perf_counter(), time.process_time()
for _ in range(${BATCHES}): step()
train = ${BATCHES * TRAIN_BATCH} / (time.perf_counter() - t)
train_cpu = ${BATCHES * TRAIN_BATCH} / (time.process_time() - c)
model.eval()
xi = torch.randn(${INFER_BATCH}, 1, ${SIZE}, ${SIZE})
nb = max(2, round(${BATCHES} / 2))
with torch.no_grad():
    torch.softmax(model(xi), 1)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(nb): torch.softmax(model(xi), 1).numpy()
infer = nb * ${INFER_BATCH} / (time.perf_counter() - t)
infer_cpu = nb * ${INFER_BATCH} / (time.process_time() - c)
print('RESULT', train, infer, train_cpu, infer_cpu)
`;
}

function pytorch(verbose: boolean): Rates | undefined {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log('# PyTorch baseline skipped: /usr/bin/python3 cannot import torch (apt-get install python3-torch)');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-train-'));
  try {
    const file = join(dir, 'bench_torch.py');
    writeFileSync(file, pytorchScript());
    const r = spawnSync('/usr/bin/python3', [file], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`# PyTorch baseline failed: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
      return undefined;
    }
    if (verbose) for (const line of r.stdout.split('\n')) if (line.startsWith('#')) console.log(line);
    const m = /RESULT (\S+) (\S+) (\S+) (\S+)/.exec(r.stdout);
    return m ? { train: Number(m[1]), infer: Number(m[2]), trainCpu: Number(m[3]), inferCpu: Number(m[4]) } : undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const best = (rs: Rates[]): Rates => ({
  train: Math.max(...rs.map((r) => r.train)),
  infer: Math.max(...rs.map((r) => r.infer)),
  trainCpu: Math.max(...rs.map((r) => r.trainCpu)),
  inferCpu: Math.max(...rs.map((r) => r.inferCpu)),
});

const side = await ours();
console.log(`# ${ARCH} at ${SIZE}×${SIZE}, train batch ${TRAIN_BATCH} × ${BATCHES}, infer batch ${INFER_BATCH}, backend ${side.backend}, best of ${ROUNDS} alternating rounds`);
const mine: Rates[] = [];
const theirs: Rates[] = [];
let torchMissing = false;
for (let r = 0; r < ROUNDS; r++) {
  mine.push(side.round());
  if (!torchMissing) {
    const t = pytorch(r === 0);
    if (t) theirs.push(t);
    else torchMissing = true;
  }
}
const o = best(mine);
const base = theirs.length > 0 ? best(theirs) : undefined;
bench('train_img_per_s', o.train, 'img/s');
if (base) console.log(`vs pytorch_cpu ${(o.train / base.train).toFixed(2)}`);
bench('infer_img_per_s', o.infer, 'img/s');
if (base) console.log(`vs pytorch_cpu ${(o.infer / base.infer).toFixed(2)}`);
if (base) {
  console.log(`# pytorch_cpu: train ${base.train.toFixed(1)} img/s, infer ${base.infer.toFixed(1)} img/s (wall clock)`);
  // On a shared machine wall-clock rates move with other load; per-CPU-second rates do not (much).
  console.log(
    `# per CPU-second: ours train ${o.trainCpu.toFixed(1)}, infer ${o.inferCpu.toFixed(1)}; pytorch train ` +
      `${base.trainCpu.toFixed(1)}, infer ${base.inferCpu.toFixed(1)}; ratios train ${(o.trainCpu / base.trainCpu).toFixed(2)}, ` +
      `infer ${(o.inferCpu / base.inferCpu).toFixed(2)}`,
  );
}
