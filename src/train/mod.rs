//! Training: the distillation loss, the teacher's and students' loops, evaluation. Training code reports
//! events through a callback; it never prints.

pub mod augment;
pub mod fused;
pub mod optim;

use crate::data::Dataset;
use crate::model::{Arch, Init, Net};
use crate::rng::{hash64, SplitMix64};
use crate::train::augment::EpochDraws;
use crate::train::optim::Optimizer;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// The student's loss: `(1 − α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`, with KL summed over
/// classes and averaged over the batch. α = 0 is plain cross-entropy (the KL term is not computed).
pub fn kd_loss(
    student: &Tensor,
    teacher: &Tensor,
    labels: &Tensor,
    temperature: f64,
    alpha: f64,
) -> Tensor {
    let ce = student.cross_entropy_for_logits(labels);
    if alpha == 0.0 {
        return ce;
    }
    let log_ps = (student / temperature).log_softmax(-1, Kind::Float);
    let log_pt = (teacher / temperature).log_softmax(-1, Kind::Float);
    let kl = (log_pt.exp() * (&log_pt - log_ps))
        .sum_dim_intlist(-1, false, Kind::Float)
        .mean(Kind::Float);
    ce * (1.0 - alpha) + kl * (alpha * temperature * temperature)
}

/// White-box (FitNets-style hint): `(1 − α)·CE(s, y) + α·MSE(regressed, teacher_features)`, the MSE
/// averaged over every element of the feature map.
pub fn feature_loss(
    student: &Tensor,
    labels: &Tensor,
    regressed: &Tensor,
    teacher_features: &Tensor,
    alpha: f64,
) -> Tensor {
    let ce = student.cross_entropy_for_logits(labels);
    let mse = regressed.mse_loss(teacher_features, tch::Reduction::Mean);
    ce * (1.0 - alpha) + mse * alpha
}

/// A student's regressed feature map and the teacher's, brought to one spatial size for the hint
/// loss: when they differ (another family, another depth of pooling), both are average-pooled to the
/// smaller height and width. Maps of one size pass unchanged.
pub fn same_size(student: Tensor, teacher: Tensor) -> (Tensor, Tensor) {
    let (s, t) = (student.size(), teacher.size());
    if s[2..] == t[2..] {
        return (student, teacher);
    }
    let hw = [s[2].min(t[2]), s[3].min(t[3])];
    (
        student.adaptive_avg_pool2d(hw),
        teacher.adaptive_avg_pool2d(hw),
    )
}

/// Black-box (imitation): `(1 − α)·CE(s, y) + α·CE(s, teacher's arg max)`.
pub fn imitation_loss(
    student: &Tensor,
    labels: &Tensor,
    teacher_labels: &Tensor,
    alpha: f64,
) -> Tensor {
    student.cross_entropy_for_logits(labels) * (1.0 - alpha)
        + student.cross_entropy_for_logits(teacher_labels) * alpha
}

/// Training settings of one role (teacher or student).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub epochs: u32,
    pub batch_size: u32,
    pub lr: f64,
    /// How the network is initialised (PyTorch's default unless the file says otherwise).
    pub init: crate::model::Init,
    /// Intra-op threads of each run of this role (part of its key: a thread count can change how
    /// libtorch sums). Teachers: every core of the machine by default ([`machine_cores`]); students
    /// and baselines: 1.
    pub threads: u32,
    /// The network, when not the role's tutorial one (absent from keys then, so sweeps written before
    /// model families keep their keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::model::Arch>,
    /// Training-batch augmentation (absent from keys when none).
    #[serde(
        default,
        skip_serializing_if = "crate::train::augment::Augment::is_none"
    )]
    pub augment: crate::train::augment::Augment,
    /// The arithmetic of the training steps: float32, or bf16 autocast (absent from keys when
    /// float32, so sweeps written before it keep their keys).
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
    /// The optimizer and learning-rate schedule (absent from keys when it is Adam at a constant
    /// rate, so sweeps written before recipes keep their keys).
    #[serde(
        default,
        skip_serializing_if = "crate::train::optim::Recipe::is_default"
    )]
    pub recipe: crate::train::optim::Recipe,
}

/// `precision = "fp32" | "bf16"`: the arithmetic of a role's training steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout (PyTorch's default).
    #[default]
    Fp32,
    /// `torch.autocast(dtype=torch.bfloat16)`: convolutions and matrix products in bf16 (float32
    /// weights, bf16 copies cast per step), everything autocast keeps in float32 in float32, and the
    /// losses on the logits cast to float32. bf16 has float32's exponent range, so no loss scaling.
    Bf16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" | "float16" | "half" => Err(format!(
                "\"{s}\" is not offered: float16 needs loss scaling to keep small gradients from \
                 vanishing, bf16 has float32's range and needs none; use \"bf16\" (or \"fp32\")"
            )),
            _ => Err(format!(
                "unknown precision \"{s}\"; allowed: \"fp32\" (the default) or \"bf16\" (autocast)"
            )),
        }
    }

    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }

    /// The type of a network's activations under this precision (bf16 autocast's linear layers give
    /// bf16).
    pub fn activation_kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    /// Runs `f` (a training step's forward pass and loss) in this precision on `device`.
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> T {
        match self {
            Precision::Fp32 => f(),
            Precision::Bf16 => crate::platform::torch_ext::autocast_bf16(device.is_cuda(), f),
        }
    }
}

/// Metrics after one epoch. The test set is not looked at during training: see [`Fitted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_acc: f64,
    /// Seconds since the run started.
    pub seconds: f64,
}

/// A trained run: its epochs, and the test accuracy measured once at the end, of the last epoch's
/// weights and of the best epoch's (the first with the highest validation accuracy, kept in memory).
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub history: Vec<EpochStats>,
    pub best_epoch: u32,
    pub test_acc: f64,
    pub test_acc_at_best: f64,
    /// Every training step's loss, in order (for the step-by-step comparison with PyTorch).
    pub step_losses: Vec<f64>,
}

impl Fitted {
    pub fn new(
        history: Vec<EpochStats>,
        test_acc: f64,
        test_acc_at_best: f64,
        step_losses: Vec<f64>,
    ) -> Fitted {
        Fitted {
            best_epoch: best_index(&history).map_or(0, |i| history[i].epoch),
            history,
            test_acc,
            test_acc_at_best,
            step_losses,
        }
    }
}

/// The index of the first epoch with the highest validation accuracy.
pub fn best_index(history: &[EpochStats]) -> Option<usize> {
    history.iter().enumerate().fold(None, |b, (i, e)| match b {
        Some(b) if history[b].val_acc >= e.val_acc => Some(b),
        _ => Some(i),
    })
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("diverged at epoch {epoch}, step {step} (loss = {loss})")]
    Diverged { epoch: u32, step: usize, loss: f64 },
    #[error("interrupted")]
    Interrupted,
    /// Stopped at the end of a search rung (`Hooks::until`): the epochs so far, its checkpoint kept.
    #[error("paused after epoch {} by the search", .0.len())]
    Paused(Vec<EpochStats>),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A TorchScript network's state could not be saved or loaded.
    #[error("{0}")]
    Script(String),
}

/// What a student distils from.
pub enum TeacherSignal<'a> {
    /// The baseline: no teacher.
    None,
    /// The teacher's logits on every training image, computed once (row i ↔ training image i).
    Cached(&'a Tensor),
    /// The naive way: the teacher's forward pass inside every step.
    Live(&'a Net),
    /// White-box: the teacher's last feature map on every training image, and the student's
    /// learned 1×1 regressor onto it.
    Features {
        maps: &'a Tensor,
        regressor: &'a nn::Conv2D,
    },
    /// Black-box: the teacher's predicted label (arg max) on every training image.
    Labels(&'a Tensor),
    /// Feature distillation on augmented batches: the teacher's feature map of each step's batch.
    LiveFeatures {
        teacher: &'a Net,
        regressor: &'a nn::Conv2D,
    },
    /// Imitation on augmented batches: the teacher's label of each step's image.
    LiveLabels(&'a Net),
}

/// Settings of one training run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub epochs: u32,
    pub batch_size: u32,
    pub lr: f64,
    /// Seeds libtorch's generator (weight init, dropout) and the batch order.
    pub seed: u64,
    /// Runs sharing a `stream` see the same initial weights and batches (common random numbers).
    pub stream: &'static str,
    /// How the network's weights are drawn.
    pub init: Init,
    /// The optimizer and learning-rate schedule.
    pub recipe: crate::train::optim::Recipe,
    /// Training-batch augmentation.
    pub augment: crate::train::augment::Augment,
    /// The training steps' arithmetic.
    pub precision: Precision,
}

/// The random stream of teachers.
pub const TEACHER_STREAM: &str = "teacher";
/// The random stream every student and baseline of a seed shares (common random numbers): the same
/// initial weights, dropout masks and batch order, fused or not.
pub const STUDENT_STREAM: &str = "student";

impl RunSettings {
    pub fn of(phase: &Phase, seed: u64, stream: &'static str) -> RunSettings {
        RunSettings {
            epochs: phase.epochs,
            batch_size: phase.batch_size,
            lr: phase.lr,
            seed,
            stream,
            init: phase.init,
            recipe: phase.recipe.clone(),
            augment: phase.augment,
            precision: phase.precision,
        }
    }

    /// The seed libtorch's generator gets right after the network is built, so that nothing drawn
    /// before training depends on what initialisation drew.
    pub fn dropout_seed(&self) -> i64 {
        torch_seed(self.seed, &format!("{}-dropout", self.stream))
    }

    /// The seed of training step `step` (from 0) of `epoch` (from 1): every random draw of a step
    /// (its dropout mask) comes from it, so a run continued from a checkpoint within an epoch draws
    /// what an uninterrupted run draws. Students of a seed share their steps' seeds (common random
    /// numbers; fused members draw one mask).
    pub fn step_seed(&self, epoch: u32, step: usize) -> i64 {
        torch_seed(self.seed, &format!("{}-step-{epoch}-{step}", self.stream))
    }

    /// The batch order: a permutation of the training rows per epoch, drawn from this stream. Fused and
    /// plain training both take their batches from here.
    pub fn batch_order(&self) -> SplitMix64 {
        SplitMix64::new(hash64(&format!("batches-{}-{}", self.stream, self.seed)))
    }
}

/// The epoch's permutation of the training rows, uploaded to `device` once per epoch; each step takes
/// its batch's indices as a slice of it (no host copy per step).
pub fn epoch_permutation(order: &mut SplitMix64, n: usize, device: Device) -> Tensor {
    let perm: Vec<i64> = order.permutation(n).into_iter().map(|i| i as i64).collect();
    Tensor::from_slice(&perm).to_device(device)
}

/// Rows `idx` of a per-training-image tensor kept by the worker (teacher logits, labels or feature
/// maps, wherever they live), on `device`; no copy when they are there already.
pub fn rows_on(t: &Tensor, idx: &Tensor, device: Device) -> Tensor {
    let rows = t.index_select(0, &idx.to_device(t.device()));
    if rows.device() == device {
        rows
    } else {
        rows.to_device(device)
    }
}

/// The losses of an epoch's steps, kept on the device (one host read per epoch instead of one per
/// step) and checked for a non-finite value; [`mean`] sums them in step order in f64 — the same sum,
/// bit for bit, as adding each step's value as it comes.
pub struct StepLosses(Vec<Tensor>);

impl StepLosses {
    pub fn new() -> StepLosses {
        StepLosses(Vec::new())
    }

    /// Keeps a step's loss (a scalar, or one value per fused member).
    pub fn push(&mut self, loss: &Tensor) {
        self.0.push(loss.detach().to_kind(Kind::Double));
    }

    /// The losses of the steps so far (a host read; for a checkpoint within an epoch). Non-finite
    /// values are kept as they are: `finish` reports them.
    pub fn peek(&self) -> Vec<f64> {
        self.peek_each(1).into_iter().next().unwrap_or_default()
    }

    /// As `peek`, per member of a fused group of `width`.
    pub fn peek_each(&self, width: usize) -> Vec<Vec<f64>> {
        let values = self.values().unwrap_or_default();
        (0..width)
            .map(|m| values.iter().skip(m).step_by(width).copied().collect())
            .collect()
    }

    /// Every kept value, step by step (a step's members side by side): one host read.
    fn values(&self) -> Result<Vec<f64>, tch::TchError> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        Vec::<f64>::try_from(
            Tensor::stack(&self.0, 0)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
    }

    /// The losses of the epoch's steps, or the first step whose loss is not finite. For a plain run;
    /// the one host synchronisation of the epoch's training steps.
    pub fn finish(self, epoch: u32) -> Result<Vec<f64>, TrainError> {
        self.finish_each(epoch)
            .into_iter()
            .next()
            .unwrap_or(Ok(Vec::new()))
    }

    /// Per member of a fused group (one value per member in each step's loss), the losses of the
    /// epoch's steps or that member's first step whose loss is not finite: a diverging member fails
    /// alone.
    pub fn finish_each(self, epoch: u32) -> Vec<Result<Vec<f64>, TrainError>> {
        if self.0.is_empty() {
            return vec![Ok(Vec::new())];
        }
        let width = self.0[0].numel().max(1);
        let values = match self.values() {
            Ok(v) => v,
            Err(e) => {
                let why = e.to_string();
                return (0..width)
                    .map(|_| Err(TrainError::Torch(tch::TchError::Kind(why.clone()))))
                    .collect();
            }
        };
        (0..width)
            .map(|m| {
                let mut each = Vec::with_capacity(values.len() / width);
                for (step, row) in values.chunks(width).enumerate() {
                    let l = row[m];
                    if !l.is_finite() {
                        return Err(TrainError::Diverged {
                            epoch,
                            step: step + 1,
                            loss: l,
                        });
                    }
                    each.push(l);
                }
                Ok(each)
            })
            .collect()
    }
}

impl Default for StepLosses {
    fn default() -> Self {
        Self::new()
    }
}

/// Set by a signal handler: training stops at the next step.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Images per forward pass when evaluating on a CPU: small batches keep a layer's activations in
/// the caches (the teacher's first maps are 400 KB an image), about 2× faster than 1,024 here.
pub const CPU_EVAL_BATCH: i64 = 32;

/// Images per forward pass when evaluating on a GPU.
pub const GPU_EVAL_BATCH: i64 = 1024;

/// Images per forward pass when counting accuracy on `device`.
pub fn eval_batch(device: Device) -> i64 {
    if device == Device::Cpu {
        CPU_EVAL_BATCH
    } else {
        GPU_EVAL_BATCH
    }
}

/// Accuracy in % of `net` (eval mode, [`Net::predict`]) on `xs`/`ys`.
pub fn accuracy(net: &Net, xs: &Tensor, ys: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = ys.size()[0];
    if n == 0 {
        return 0.0;
    }
    let batch = eval_batch(xs.device());
    // counted on the device, read once
    let mut correct = Tensor::zeros([], (Kind::Int64, ys.device()));
    for start in (0..n).step_by(batch as usize) {
        let len = (n - start).min(batch);
        let pred = net.predict(&xs.narrow(0, start, len)).argmax(-1, false);
        correct += pred.eq_tensor(&ys.narrow(0, start, len)).sum(Kind::Int64);
    }
    100.0 * correct.int64_value(&[]) as f64 / n as f64
}

/// Logits of `net` (eval mode) on every row of `xs`, in order, on the CPU.
pub fn logits(net: &Net, xs: &Tensor) -> Tensor {
    by_chunks(xs, 1024, |x| net.forward_t(x, false))
}

/// `f` without gradients on every row of `xs` in chunks of `chunk` images, concatenated in order on
/// the CPU. The chunk sizes of cached logits and feature maps are part of their bytes: the CPU's
/// matrix kernels treat the last rows of a chunk whose length is not a multiple of their block
/// differently (measured: a teacher's logits in chunks of 32 equal those in chunks of 1,024 for 4,000
/// images, but not the rows of a short last chunk, e.g. of 69 images), so changing them would change
/// students' numbers: a model-version change.
fn by_chunks(xs: &Tensor, chunk: i64, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let n = xs.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(chunk as usize)
        .map(|s| f(&xs.narrow(0, s, (n - s).min(chunk))).to_device(Device::Cpu))
        .collect();
    Tensor::cat(&parts, 0)
}

fn torch_seed(seed: u64, stream: &str) -> i64 {
    (hash64(&format!("torch-{stream}-{seed}")) >> 1) as i64
}

fn seed_torch(seed: u64, stream: &str) {
    tch::manual_seed(torch_seed(seed, stream));
}

/// Like [`init`], but first builds `extra` parameters (such as a regressor) in the same var store from
/// a stream of their own, so the model's weights and later random draws match [`init`]'s exactly.
pub fn init_with<T>(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    extra: impl FnOnce(&nn::Path) -> T,
) -> (nn::VarStore, Net, T) {
    try_init_with(arch, data, device, s, None, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// [`init_with`] for any network: a TorchScript one may fail to load, and starts from `saved` (a
/// checkpoint's [`crate::model::script::state`]) when given.
pub fn try_init_with<T>(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    saved: Option<&Tensor>,
    extra: impl FnOnce(&nn::Path) -> T,
) -> Result<(nn::VarStore, Net, T), String> {
    let vs = nn::VarStore::new(device);
    seed_torch(s.seed, &format!("{}-extra", s.stream));
    let x = extra(&vs.root());
    seed_torch(s.seed, s.stream);
    let net = Net::try_new(&vs.root(), arch, data.shape, data.classes, s.init, saved)?;
    tch::manual_seed(s.dropout_seed());
    Ok((vs, net, x))
}

/// The teacher's last feature map (eval mode) on every row of `xs`, in order, on the CPU.
pub fn feature_maps(net: &Net, xs: &Tensor) -> Tensor {
    by_chunks(xs, 512, |x| net.features_t(x, false))
}

/// Builds a freshly initialised model: the same seed and stream give the same weights. Leaves
/// libtorch's generator seeded with [`RunSettings::dropout_seed`].
pub fn init(arch: Arch, data: &Dataset, device: Device, s: &RunSettings) -> (nn::VarStore, Net) {
    try_init(arch, data, device, s, None).unwrap_or_else(|e| panic!("{e}"))
}

/// [`init`] for any network: a TorchScript one may fail to load, and starts from `saved` (a
/// checkpoint's [`crate::model::script::state`]) when given.
pub fn try_init(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    saved: Option<&Tensor>,
) -> Result<(nn::VarStore, Net), String> {
    seed_torch(s.seed, s.stream);
    let vs = nn::VarStore::new(device);
    let net = Net::try_new(&vs.root(), arch, data.shape, data.classes, s.init, saved)?;
    tch::manual_seed(s.dropout_seed());
    Ok((vs, net))
}

/// Copies of every variable of `vs` (a snapshot of the weights, kept on their device).
pub fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let _guard = tch::no_grad_guard();
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// [`snapshot`] of a network's whole state: for a TorchScript network also its module (buffers
/// included) as the tensor [`crate::model::script::STATE`].
pub fn snapshot_of(vs: &nn::VarStore, net: &Net) -> Result<Vec<(String, Tensor)>, TrainError> {
    let mut vars = snapshot(vs);
    if let Some(state) = net.script_state() {
        vars.push((
            crate::model::script::STATE.to_string(),
            state.map_err(TrainError::Script)?,
        ));
    }
    Ok(vars)
}

/// Writes a snapshot back into `vs` (entries that are not variables of `vs` are skipped).
pub fn restore(vs: &nn::VarStore, snap: &[(String, Tensor)]) {
    let _guard = tch::no_grad_guard();
    let vars = vs.variables();
    for (name, t) in snap {
        if let Some(v) = vars.get(name) {
            v.shallow_clone().copy_(t);
        }
    }
}

/// Where a run's training state is kept between invocations (see `store::RunCheckpoint`): `fit` saves
/// one after every epoch, every [`Checkpoints::every`] within an epoch, and when it is stopped; a rerun
/// continues from it with the numbers of an uninterrupted run.
pub trait Checkpoints {
    /// The state to continue from, when a valid one is kept.
    fn load(&self) -> Option<TrainState>;
    /// Keeps `state` (replacing the previous one); a failure is reported, never fatal.
    fn save(&self, state: &TrainState);
    /// Also save within an epoch once this much time has passed since the last save.
    fn every(&self) -> Option<std::time::Duration>;
}

/// Everything a run needs to continue exactly where it stopped.
pub struct TrainState {
    /// Epochs finished.
    pub epoch: u32,
    /// Steps of the next epoch already taken.
    pub step: usize,
    /// The batch-order stream at the start of the next epoch.
    pub order: u64,
    /// Adam steps taken.
    pub adam_steps: u64,
    pub history: Vec<EpochStats>,
    /// Every step's loss so far (the next epoch's first `step` included).
    pub step_losses: Vec<f64>,
    /// Training seconds so far.
    pub seconds: f64,
    /// `param/<name>`, `exp_avg/<name>`, `exp_avg_sq/<name>` and, when the best epoch is not the
    /// last, `best/<name>`: on the CPU.
    pub tensors: Vec<(String, Tensor)>,
}

/// What `fit` reports to and keeps through.
pub struct Hooks<'a> {
    pub on_epoch: &'a mut dyn FnMut(&EpochStats),
    pub checkpoints: Option<&'a dyn Checkpoints>,
    /// The state to continue from, loaded by the caller from `checkpoints` (a TorchScript network
    /// is built from it before `fit`); `None`: from the beginning. `fit` never loads one itself, so a
    /// checkpoint is read — and an invalid one warned about — once.
    pub resume: Option<TrainState>,
    /// Stop after this epoch (a search rung) with [`TrainError::Paused`], its checkpoint saved, when
    /// it comes before the last; `None`: train the whole schedule. Never part of a run's key: a paused
    /// run continued later is the run trained without a pause.
    pub until: Option<u32>,
}

impl<'a> Hooks<'a> {
    /// Epoch reports only, no checkpoints.
    pub fn epochs(on_epoch: &'a mut dyn FnMut(&EpochStats)) -> Hooks<'a> {
        Hooks {
            on_epoch,
            checkpoints: None,
            resume: None,
            until: None,
        }
    }
}

/// Whether a run that just finished `epoch` of `epochs` pauses there for a search rung (a pause needs a
/// checkpoint to continue from).
pub fn pauses(until: Option<u32>, epoch: u32, epochs: u32, checkpoints: bool) -> bool {
    checkpoints && until.is_some_and(|u| epoch >= u && epoch < epochs)
}

impl TrainState {
    /// The tensor `name` it holds.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// A TorchScript network's whole module at this point ([`crate::model::script::state`]), to build the
    /// network from before continuing (`try_init`'s `saved`); `None` for kd-sweep's own networks.
    pub fn script_state(&self) -> Option<Tensor> {
        self.tensor(&format!("param/{}", crate::model::script::STATE))
            .map(Tensor::shallow_clone)
    }

    /// The state at `position` (epochs done, steps of the next epoch taken, the batch order's state at
    /// its start) of a run whose optimizer is `opt`; `tensors` are copied to the CPU.
    pub fn at(
        position: (u32, usize, u64),
        opt: &Optimizer,
        history: &[EpochStats],
        step_losses: Vec<f64>,
        seconds: f64,
        tensors: Vec<(String, Tensor)>,
    ) -> TrainState {
        TrainState {
            epoch: position.0,
            step: position.1,
            order: position.2,
            adam_steps: opt.steps(),
            history: history.to_vec(),
            step_losses,
            seconds,
            tensors: tensors
                .into_iter()
                .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous().copy()))
                .collect(),
        }
    }
}

/// The training state of a run at a step boundary, for a checkpoint.
#[allow(clippy::too_many_arguments)]
fn state_of(
    (vs, net): (&nn::VarStore, &Net),
    opt: &Optimizer,
    best: &Option<Vec<(String, Tensor)>>,
    position: (u32, usize, u64),
    history: &[EpochStats],
    step_losses: Vec<f64>,
    seconds: f64,
) -> Result<TrainState, TrainError> {
    let mut tensors: Vec<(String, Tensor)> = snapshot_of(vs, net)?
        .into_iter()
        .map(|(n, t)| (format!("param/{n}"), t))
        .collect();
    tensors.extend(opt.state());
    if let Some(b) = best {
        tensors.extend(
            b.iter()
                .map(|(n, t)| (format!("best/{n}"), t.shallow_clone())),
        );
    }
    Ok(TrainState::at(
        position,
        opt,
        history,
        step_losses,
        seconds,
        tensors,
    ))
}

/// Puts a checkpoint's weights and optimizer state back; returns the best-epoch weights it kept.
fn restore_state(
    vs: &nn::VarStore,
    opt: &mut Optimizer,
    state: &TrainState,
) -> Option<Vec<(String, Tensor)>> {
    let device = vs.device();
    let part = |prefix: &str| -> Vec<(String, Tensor)> {
        state
            .tensors
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix(prefix)?.to_string(), t.to_device(device))))
            .collect()
    };
    restore(vs, &part("param/"));
    opt.load_state(&state.tensors, state.adam_steps);
    let best = part("best/");
    (!best.is_empty()).then_some(best)
}

/// Trains `net` (whose weights live in `vs`) and reports each epoch to `hooks.on_epoch`.
/// The student loss is used with `signal`, `temperature` and `alpha`; a teacher passes
/// `TeacherSignal::None` and α = 0 (its own cross-entropy). It continues from `hooks.resume` (a kept
/// state) and, with `hooks.checkpoints`, keeps one after every epoch, periodically, and when stopped.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    vs: &nn::VarStore,
    net: &Net,
    data: &Dataset,
    s: &RunSettings,
    signal: TeacherSignal,
    temperature: f64,
    alpha: f64,
    hooks: &mut Hooks,
) -> Result<Fitted, TrainError> {
    let device = vs.device();
    let mut opt = Optimizer::with(vs, s.lr, &s.recipe);
    let mut order = s.batch_order();
    let n = data.n_train();
    let bs = s.batch_size as i64;
    // Host synchronisations per epoch: one read of the step losses (StepLosses::finish) and one for
    // the validation accuracy. The steps themselves never wait for the device.
    let cached = |t: &Tensor, idx: &Tensor| rows_on(t, idx, device);
    let mut history = Vec::new();
    let mut step_losses = Vec::new();
    let mut best: Option<Vec<(String, Tensor)>> = None;
    let (mut first_epoch, mut first_step, mut before) = (1, 0, 0.0);
    if let Some(state) = hooks.resume.take() {
        best = restore_state(vs, &mut opt, &state);
        order = SplitMix64::new(state.order);
        history = state.history;
        step_losses = state.step_losses;
        (first_epoch, first_step, before) = (state.epoch + 1, state.step, state.seconds);
    }
    let start = Instant::now();
    let elapsed = |start: &Instant| before + start.elapsed().as_secs_f64();
    let mut saved_at = Instant::now();
    for epoch in first_epoch..=s.epochs {
        opt.set_lr(s.recipe.lr_at(s.lr, epoch, s.epochs));
        let epoch_order = order.state();
        let perm = epoch_permutation(&mut order, n as usize, device);
        let draws = (!s.augment.is_none())
            .then(|| EpochDraws::new(s.seed, s.stream, epoch, n as usize, device));
        let skip = if epoch == first_epoch { first_step } else { 0 };
        // the steps of this epoch a checkpoint already took (their losses are the last `skip`)
        let mut earlier: Vec<f64> = step_losses[step_losses.len() - skip..].to_vec();
        step_losses.truncate(step_losses.len() - skip);
        let mut losses = StepLosses::new();
        for (step, begin) in (0..n).step_by(bs as usize).enumerate().skip(skip) {
            let stop = STOP.load(Ordering::Relaxed);
            let due = hooks
                .checkpoints
                .and_then(|c| c.every())
                .is_some_and(|every| saved_at.elapsed() >= every);
            if let (Some(c), true) = (hooks.checkpoints, stop || due) {
                let mut so_far = step_losses.clone();
                so_far.extend(&earlier);
                so_far.extend(losses.peek());
                let position = (epoch - 1, step, epoch_order);
                let state = state_of(
                    (vs, net),
                    &opt,
                    &best,
                    position,
                    &history,
                    so_far,
                    elapsed(&start),
                )?;
                c.save(&state);
                saved_at = Instant::now();
            }
            if stop {
                return Err(TrainError::Interrupted);
            }
            // each step's random draws (dropout) from a seed of its own: a run continued from a
            // checkpoint draws exactly what it would have drawn
            tch::manual_seed(s.step_seed(epoch, step));
            let idx = perm.narrow(0, begin, bs.min(n - begin));
            let xs = data.train_x.index_select(0, &idx);
            let xs = match &draws {
                Some(d) => d.apply(&xs, begin, &data.black),
                None => xs,
            };
            let ys = data.train_y.index_select(0, &idx);
            let loss = s.precision.run(device, || {
                // the feature map only where it is used: a TorchScript network's forward is one call
                let (out, features) = match &signal {
                    TeacherSignal::Features { .. } | TeacherSignal::LiveFeatures { .. } => {
                        let features = net.features_t(&xs, true);
                        (net.head(&features, true), Some(features))
                    }
                    _ => (net.forward_t(&xs, true), None),
                };
                // the losses take float32 logits (a no-op in float32; bf16 autocast's logits cast up)
                let out = out.to_kind(Kind::Float);
                match &signal {
                    TeacherSignal::None => out.cross_entropy_for_logits(&ys),
                    TeacherSignal::Cached(t) => {
                        kd_loss(&out, &cached(t, &idx), &ys, temperature, alpha)
                    }
                    TeacherSignal::Live(teacher) => {
                        let t = tch::no_grad(|| teacher.forward_t(&xs, false).to_kind(Kind::Float));
                        kd_loss(&out, &t, &ys, temperature, alpha)
                    }
                    TeacherSignal::Features { maps, regressor } => {
                        let features = features.as_ref().expect("computed for this signal");
                        let regressed = features.apply(*regressor).to_kind(Kind::Float);
                        let (s, t) = same_size(regressed, cached(maps, &idx));
                        feature_loss(&out, &ys, &s, &t, alpha)
                    }
                    TeacherSignal::Labels(labels) => {
                        imitation_loss(&out, &ys, &cached(labels, &idx), alpha)
                    }
                    TeacherSignal::LiveFeatures { teacher, regressor } => {
                        let features = features.as_ref().expect("computed for this signal");
                        let t =
                            tch::no_grad(|| teacher.features_t(&xs, false).to_kind(Kind::Float));
                        let regressed = features.apply(*regressor).to_kind(Kind::Float);
                        let (s, t) = same_size(regressed, t);
                        feature_loss(&out, &ys, &s, &t, alpha)
                    }
                    TeacherSignal::LiveLabels(teacher) => {
                        let labels =
                            tch::no_grad(|| teacher.forward_t(&xs, false).argmax(-1, false));
                        imitation_loss(&out, &ys, &labels, alpha)
                    }
                }
            });
            opt.backward_step(&loss);
            losses.push(&loss);
        }
        earlier.extend(losses.finish(epoch)?);
        let stats = EpochStats {
            epoch,
            train_loss: mean(&earlier),
            val_acc: accuracy(net, &data.val_x, &data.val_y),
            seconds: elapsed(&start),
        };
        step_losses.extend(earlier);
        history.push(stats.clone());
        // a new best epoch (strictly higher validation accuracy) keeps a copy of its weights,
        // unless it is the last epoch (whose weights the network keeps anyway)
        let improved = best_index(&history) == Some(history.len() - 1);
        if improved && epoch < s.epochs {
            best = Some(snapshot_of(vs, net)?);
        } else if improved {
            best = None;
        }
        if let Some(c) = hooks.checkpoints.filter(|_| epoch < s.epochs) {
            let position = (epoch, 0, order.state());
            let state = state_of(
                (vs, net),
                &opt,
                &best,
                position,
                &history,
                step_losses.clone(),
                elapsed(&start),
            )?;
            c.save(&state);
            saved_at = Instant::now();
        }
        (hooks.on_epoch)(&stats);
        if pauses(hooks.until, epoch, s.epochs, hooks.checkpoints.is_some()) {
            return Err(TrainError::Paused(history));
        }
    }
    let test_acc = accuracy(net, &data.test_x, &data.test_y);
    let script_best = best.as_ref().and_then(|b| {
        b.iter()
            .find(|(n, _)| n == crate::model::script::STATE)
            .map(|(_, t)| t)
    });
    let test_acc_at_best = match &best {
        // a TorchScript network's best epoch is evaluated as a module of its own (tch cannot write
        // its buffers back into the one that trains)
        Some(_) if script_best.is_some() => {
            let state = script_best.expect("checked");
            let best_net =
                Net::script_from_state(net.arch(), state, device).map_err(TrainError::Script)?;
            accuracy(&best_net, &data.test_x, &data.test_y)
        }
        Some(weights) => {
            let last = snapshot(vs);
            restore(vs, weights);
            let acc = accuracy(net, &data.test_x, &data.test_y);
            restore(vs, &last);
            acc
        }
        None => test_acc,
    };
    Ok(Fitted::new(
        history,
        test_acc,
        test_acc_at_best,
        step_losses,
    ))
}

/// The mean of an epoch's step losses, summed in step order in f64.
pub fn mean(steps: &[f64]) -> f64 {
    if steps.is_empty() {
        return 0.0;
    }
    steps.iter().sum::<f64>() / steps.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], rows: i64) -> Tensor {
        Tensor::from_slice(v).view([rows, -1])
    }

    fn val(x: &Tensor) -> f64 {
        x.double_value(&[])
    }

    /// log-softmax of one row, by hand.
    fn log_softmax(row: &[f64]) -> Vec<f64> {
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        row.iter().map(|v| v - lse).collect()
    }

    #[test]
    fn alpha_zero_is_cross_entropy() {
        let s = t(&[1.0, 2.0, 0.5, 0.0, -1.0, 3.0], 2);
        let te = t(&[5.0, 0.0, 0.0, 0.0, 0.0, 5.0], 2);
        let y = Tensor::from_slice(&[1i64, 2]);
        // CE = mean(-log p[y]) worked out by hand
        let ce = -(log_softmax(&[1.0, 2.0, 0.5])[1] + log_softmax(&[0.0, -1.0, 3.0])[2]) / 2.0;
        assert!((val(&kd_loss(&s, &te, &y, 4.0, 0.0)) - ce).abs() < 1e-6);
        assert!((val(&s.cross_entropy_for_logits(&y)) - ce).abs() < 1e-6);
    }

    #[test]
    fn kd_loss_matches_hand_computation_with_t_squared_and_batch_mean() {
        let srows = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let trows = [[3.0, 1.0, 0.0], [0.5, 0.5, 2.0]];
        let s = t(
            &srows.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
            2,
        );
        let te = t(
            &trows.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
            2,
        );
        let y = Tensor::from_slice(&[0i64, 2]);
        let (temp, alpha) = (2.0, 0.75);
        let mut kl = 0.0;
        let mut ce = 0.0;
        for (r, (sr, tr)) in srows.iter().zip(&trows).enumerate() {
            let ls = log_softmax(&sr.map(|v| v / temp));
            let lt = log_softmax(&tr.map(|v| v / temp));
            kl += (0..3).map(|k| lt[k].exp() * (lt[k] - ls[k])).sum::<f64>();
            ce -= log_softmax(sr)[[0, 2][r]];
        }
        let (kl, ce) = (kl / 2.0, ce / 2.0); // batch mean
        let want = (1.0 - alpha) * ce + alpha * temp * temp * kl;
        let got = val(&kd_loss(&s, &te, &y, temp, alpha));
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
        // T² matters: the same inputs at T = 4 give a different value
        assert!((val(&kd_loss(&s, &te, &y, 4.0, alpha)) - want).abs() > 1e-3);
    }

    #[test]
    fn feature_loss_by_hand() {
        let s = t(&[1.0, 2.0, 0.5], 1);
        let y = Tensor::from_slice(&[2i64]);
        let ce = -log_softmax(&[1.0, 2.0, 0.5])[2];
        // regressed vs teacher map: differences 1, -2, 0, 3 → MSE (1 + 4 + 0 + 9) / 4 = 3.5
        let r = Tensor::from_slice(&[1.0f32, 0.0, 2.0, 3.0]).view([1, 1, 2, 2]);
        let f = Tensor::from_slice(&[0.0f32, 2.0, 2.0, 0.0]).view([1, 1, 2, 2]);
        let got = val(&feature_loss(&s, &y, &r, &f, 0.25));
        assert!((got - (0.75 * ce + 0.25 * 3.5)).abs() < 1e-6, "{got}");
        assert!((val(&feature_loss(&s, &y, &r, &f, 0.0)) - ce).abs() < 1e-6);
    }

    #[test]
    fn imitation_loss_by_hand() {
        let s = t(&[1.0, 2.0, 0.5, 0.0, -1.0, 3.0], 2);
        let y = Tensor::from_slice(&[0i64, 2]);
        let tl = Tensor::from_slice(&[1i64, 1]);
        let ls0 = log_softmax(&[1.0, 2.0, 0.5]);
        let ls1 = log_softmax(&[0.0, -1.0, 3.0]);
        let ce_y = -(ls0[0] + ls1[2]) / 2.0;
        let ce_t = -(ls0[1] + ls1[1]) / 2.0;
        let got = val(&imitation_loss(&s, &y, &tl, 0.75));
        assert!((got - (0.25 * ce_y + 0.75 * ce_t)).abs() < 1e-6, "{got}");
        // α = 1 learns from the teacher's answers alone
        assert!((val(&imitation_loss(&s, &y, &tl, 1.0)) - ce_t).abs() < 1e-6);
    }

    #[test]
    fn kd_term_is_zero_when_student_equals_teacher() {
        let s = t(&[1.0, 2.0, 0.5], 1);
        let y = Tensor::from_slice(&[1i64]);
        let ce = val(&s.cross_entropy_for_logits(&y));
        let got = val(&kd_loss(&s, &s, &y, 3.0, 0.5));
        assert!((got - 0.5 * ce).abs() < 1e-6);
    }
}
