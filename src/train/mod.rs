//! One run's training. [`settings`]: a role's phase and a run's settings; [`init`](mod@init): the network from
//! its seed; [`driver`]: the one epoch loop of plain and fused training, around a step that
//! [`plain`] (one network, any method) or [`fused`] (G logit students as one model) takes;
//! [`optim`]: PyTorch's optimizers over one flat buffer; [`graph`]: steps as CUDA graphs; [`augment`]: crop-flip on the device;
//! [`state`]: what a checkpoint keeps; [`eval`]: accuracy, logits and feature maps. Training code
//! reports events through callbacks; it never prints.

pub mod augment;
pub mod driver;
pub mod eval;
pub mod fused;
pub mod graph;
pub mod init;
pub mod optim;
pub mod plain;
pub mod settings;
pub mod state;

pub use driver::{mean, pauses, rows_on, DriveHooks, StepLosses, STOP};
pub use eval::{
    accuracy, as_loaded, eval_batch, feature_maps, logits, CPU_EVAL_BATCH, GPU_EVAL_BATCH,
};
pub use init::{init, init_with, restore, snapshot, snapshot_of, try_init, try_init_with};
pub use plain::{fit, fit_logit, Hooks, Source};
pub use settings::{Phase, Precision, RunSettings, STUDENT_STREAM, TEACHER_STREAM};
pub use state::{Checkpoints, TrainState};

pub use crate::record::EpochStats;
use tch::Tensor;

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
    /// How closely the last weights imitate the teacher on the test set, when a teacher was given.
    pub imitation: Option<Imitation>,
    /// A network evaluated as loaded, never trained (a teacher with `epochs = 0`; no history).
    pub as_loaded: Option<AsLoaded>,
}

/// What evaluating a network as loaded measured: validation accuracy (%) and seconds it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsLoaded {
    pub val_acc: f64,
    pub seconds: f64,
}

/// How closely a student imitates its teacher on the test set (Stanton et al. 2021): the share of
/// images whose predicted class is the teacher's (%), and the mean KL(teacher ‖ student) at T = 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Imitation {
    pub agreement: f64,
    pub kl: f64,
}

impl Imitation {
    /// Of student logits `s` against teacher logits `t` ([N, classes], the same images).
    pub fn of(s: &Tensor, t: &Tensor) -> Imitation {
        let _guard = tch::no_grad_guard();
        let t = t.to_device(s.device()).to_kind(tch::Kind::Float);
        let same = s
            .argmax(-1, false)
            .eq_tensor(&t.argmax(-1, false))
            .to_kind(tch::Kind::Double)
            .mean(tch::Kind::Double)
            .double_value(&[]);
        let kl = crate::distill::losses::kl(s, &t, 1.0).double_value(&[]);
        Imitation {
            agreement: 100.0 * same,
            kl,
        }
    }
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
            imitation: None,
            as_loaded: None,
        }
    }

    /// The run's time as its epochs count it (an evaluated network's: its evaluation's); `None`
    /// when it has neither.
    pub fn seconds(&self) -> Option<f64> {
        (self.history.last().map(|e| e.seconds)).or(self.as_loaded.map(|a| a.seconds))
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
    /// CUDA graphs were asked for and cannot be made here.
    #[error("CUDA graphs: {0}")]
    Graph(String),
}
