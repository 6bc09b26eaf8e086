//! A run's training settings: a role's [`Phase`] as the sweep file gives it, its [`Precision`], and
//! [`RunSettings`] (a phase for one seed and random stream, with the seeds derived from them).

use crate::model::Init;
use crate::rng::{hash64, SplitMix64};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub epochs: u32,
    pub batch_size: u32,
    pub lr: f64,
    /// How the network is initialised (PyTorch's default unless the file says otherwise).
    pub init: crate::model::Init,
    /// Intra-op threads of each run of this role (part of its key: a thread count can change how
    /// libtorch sums). Teachers: every core of the machine by default ([`crate::config::machine_cores`]); students
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
    /// Convolutions in the channels-last memory layout (PyTorch's `torch.channels_last`): the same
    /// arithmetic in another order, so other roundings (absent from keys when off, so sweeps written
    /// before it keep their keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub channels_last: bool,
    /// ε of `nn.CrossEntropyLoss(label_smoothing=ε)` for every cross-entropy term of the role's loss
    /// (absent from keys when 0, so sweeps written before it keep their keys).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// The optimizer and learning-rate schedule (absent from keys when it is Adam at a constant
    /// rate, so sweeps written before recipes keep their keys).
    #[serde(
        default,
        skip_serializing_if = "crate::train::optim::Recipe::is_default"
    )]
    pub recipe: crate::train::optim::Recipe,
    /// A trained network's weights file, for a teacher used as it is (`epochs` = 0; absent
    /// otherwise, so every other sweep keeps its keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<crate::model::weights::Weights>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
    /// Convolutions in the channels-last layout ([`Phase::channels_last`]).
    pub channels_last: bool,
    /// ε of the cross-entropy terms (`nn.CrossEntropyLoss(label_smoothing=ε)`).
    pub label_smoothing: f64,
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
            channels_last: phase.channels_last,
            label_smoothing: phase.label_smoothing,
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

/// The libtorch seed of a run's `stream` for `seed`.
pub(crate) fn torch_seed(seed: u64, stream: &str) -> i64 {
    (hash64(&format!("torch-{stream}-{seed}")) >> 1) as i64
}

/// Seeds libtorch's generator for a run's `stream` and `seed`.
pub(crate) fn seed_torch(seed: u64, stream: &str) {
    tch::manual_seed(torch_seed(seed, stream));
}
