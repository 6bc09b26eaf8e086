//! The training state a checkpoint keeps ([`TrainState`]) and where it is kept ([`Checkpoints`]).

use super::init::{restore, snapshot_of};
use super::optim::Optimizer;
use super::{EpochStats, TrainError};
use crate::model::Net;
use tch::{nn, Device, Tensor};

/// Where a run's training state is kept between invocations (see `store::checkpoint`): the epoch
/// loop saves one after every epoch, every [`Checkpoints::every`] within an epoch, and when it is
/// stopped; a rerun continues from it with the numbers of an uninterrupted run.
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
        steps: u64,
        history: &[EpochStats],
        step_losses: Vec<f64>,
        seconds: f64,
        tensors: Vec<(String, Tensor)>,
    ) -> TrainState {
        TrainState {
            epoch: position.0,
            step: position.1,
            order: position.2,
            adam_steps: steps,
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

/// A plain run's tensors for a checkpoint: `param/<name>` (a TorchScript network's whole module
/// among them), the optimizer's state, and `best/<name>` when a best epoch's weights are kept apart.
pub(crate) fn tensors_of(
    (vs, net): (&nn::VarStore, &Net),
    opt: &Optimizer,
    best: &Option<Vec<(String, Tensor)>>,
) -> Result<Vec<(String, Tensor)>, TrainError> {
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
    Ok(tensors)
}

/// Puts a checkpoint's weights and optimizer state back; returns the best-epoch weights it kept.
pub(crate) fn restore_state(
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
