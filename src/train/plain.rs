//! Training one network ([`fit`]): where the teacher's signal comes from ([`Source`]), the method's
//! loss ([`crate::distill::Distiller`]), and the step, inside the one epoch loop of
//! [`super::driver`].

use super::driver::{drive, rows_on, Batch, DriveHooks, Trainee};
use super::eval::accuracy;
use super::graph::{Stepper, Taken};
use super::init::{restore, snapshot, snapshot_of};
use super::optim::{Algorithm, Optimizer};
use super::settings::RunSettings;
use super::state::{restore_state, tensors_of, Checkpoints, TrainState};
use super::{EpochStats, Fitted, TrainError};
use crate::data::Dataset;
use crate::distill::{Distiller, Needs, TeacherOut};
use crate::model::Net;
use tch::{nn, Device, Kind, Tensor};

/// Where a student's teacher signal comes from. What it is (logits, labels, a feature map) is the
/// method's choice ([`Distiller::needs`]).
pub enum Source<'a> {
    /// No teacher (teachers and baselines).
    None,
    /// The teacher's output on every training image, computed once (row i ↔ training image i):
    /// logits, predicted labels or feature maps, as the method needs.
    Cached(&'a Tensor),
    /// The teacher's forward pass (evaluation mode) on each step's batch: the naive way, and the
    /// only one for augmented batches.
    Live(&'a Net),
}

impl Source<'_> {
    /// What the teacher gives the batch of `idx` / `xs`, as `needs` asks.
    fn teacher(&self, needs: Needs, idx: &Tensor, xs: &Tensor, device: Device) -> TeacherOut {
        let _guard = tch::no_grad_guard();
        match (self, needs) {
            (_, Needs::Nothing) | (Source::None, _) => TeacherOut::None,
            (Source::Cached(t), Needs::Logits) => TeacherOut::Logits(rows_on(t, idx, device)),
            (Source::Cached(t), Needs::Labels) => TeacherOut::Labels(rows_on(t, idx, device)),
            (Source::Cached(t), Needs::Features) => TeacherOut::Features(rows_on(t, idx, device)),
            (Source::Live(net), Needs::Logits) => {
                TeacherOut::Logits(net.forward_t(xs, false).to_kind(Kind::Float))
            }
            (Source::Live(net), Needs::Labels) => {
                TeacherOut::Labels(net.forward_t(xs, false).argmax(-1, false))
            }
            (Source::Live(net), Needs::Features) => {
                TeacherOut::Features(net.features_t(xs, false).to_kind(Kind::Float))
            }
        }
    }
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
    /// The teacher's logits on the test images, to measure the run's imitation of it.
    pub teacher_test_logits: Option<&'a Tensor>,
    /// Called after each epoch (see [`super::driver::DriveHooks::at_epoch_end`]).
    pub at_epoch_end: Option<&'a mut super::driver::EpochEnd<'a>>,
}

impl<'a> Hooks<'a> {
    /// Epoch reports only, no checkpoints.
    pub fn epochs(on_epoch: &'a mut dyn FnMut(&EpochStats)) -> Hooks<'a> {
        Hooks {
            on_epoch,
            checkpoints: None,
            resume: None,
            until: None,
            teacher_test_logits: None,
            at_epoch_end: None,
        }
    }
}

/// One network training: its variables, the optimizer, the method and its teacher's signal.
struct Plain<'a> {
    vs: &'a nn::VarStore,
    net: &'a Net,
    opt: Optimizer,
    source: Source<'a>,
    distiller: &'a Distiller,
    precision: super::Precision,
    /// The best epoch's weights when it is not the last (kept in memory).
    best: Option<Vec<(String, Tensor)>>,
    /// The steps as CUDA graphs ([`super::graph`]), when this thread asks for them.
    graphs: Option<Stepper>,
}

impl Plain<'_> {
    /// One step as written: the teacher's signal, the loss (under autocast for bf16), backward and
    /// the optimizer's update.
    fn eager_step(&mut self, b: &Batch, epoch: u32) -> Tensor {
        let device = self.vs.device();
        let (net, d) = (self.net, self.distiller);
        let teacher = self.source.teacher(d.needs(), &b.idx, &b.xs, device);
        let loss = self.precision.run(device, || {
            // the feature map only where it is used: a TorchScript network's forward is one call
            let (out, features) = if d.takes_features() {
                let f = net.features_t(&b.xs, true);
                (net.head(&f, true), Some(f))
            } else {
                (net.forward_t(&b.xs, true), None)
            };
            // the losses take float32 logits (a no-op in float32; bf16 autocast's cast up)
            let out = out.to_kind(Kind::Float);
            d.loss(&out, features.as_ref(), &teacher, &b.ys, epoch)
        });
        self.opt.backward_step(&loss);
        loss
    }
}

impl Trainee for Plain<'_> {
    fn width(&self) -> usize {
        1
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    fn step(&mut self, b: &Batch, epoch: u32) -> Tensor {
        let Some(mut graphs) = self.graphs.take() else {
            return self.eager_step(b, epoch);
        };
        let at = (epoch, self.opt.lr());
        let taken = graphs.step(b, at, &mut |batch| self.eager_step(batch, epoch));
        // a step that cannot be graphed stops the run with the reason (its record says it)
        let (loss, taken) = taken.unwrap_or_else(|why| panic!("{why} (run without cuda_graphs)"));
        if taken == Taken::Replayed {
            self.opt.count_replayed_step();
        }
        self.graphs = Some(graphs);
        loss
    }

    fn validate(&self, data: &Dataset) -> Vec<f64> {
        vec![accuracy(self.net, &data.val_x, &data.val_y)]
    }

    fn keep_best(&mut self, _i: usize, last: bool) -> Result<(), TrainError> {
        // the last epoch's weights are the network's own at the end: no copy
        self.best = if last {
            None
        } else {
            Some(snapshot_of(self.vs, self.net)?)
        };
        Ok(())
    }

    fn tensors(&self, _i: usize) -> Result<Vec<(String, Tensor)>, TrainError> {
        tensors_of((self.vs, self.net), &self.opt, &self.best)
    }

    fn steps(&self) -> u64 {
        self.opt.steps()
    }

    fn restore(&mut self, states: &[TrainState]) {
        self.best = restore_state(self.vs, &mut self.opt, &states[0]);
    }

    fn test(&mut self, data: &Dataset) -> Result<Vec<(f64, f64)>, TrainError> {
        let (net, device) = (self.net, self.vs.device());
        let last = accuracy(net, &data.test_x, &data.test_y);
        let Some(best) = &self.best else {
            return Ok(vec![(last, last)]);
        };
        // a TorchScript network's best epoch is evaluated as a module of its own (tch cannot write
        // its buffers back into the one that trains)
        let script = best
            .iter()
            .find(|(n, _)| n == crate::model::script::STATE)
            .map(|(_, t)| t);
        let at_best = match script {
            Some(state) => {
                let best_net = Net::script_from_state(net.arch(), state, device)
                    .map_err(TrainError::Script)?;
                best_net.set_channels_last(net.is_channels_last());
                accuracy(&best_net, &data.test_x, &data.test_y)
            }
            None => {
                let now = snapshot(self.vs);
                restore(self.vs, best);
                let acc = accuracy(net, &data.test_x, &data.test_y);
                restore(self.vs, &now);
                acc
            }
        };
        Ok(vec![(last, at_best)])
    }

    fn test_logits(&self, data: &Dataset) -> Vec<Tensor> {
        vec![super::eval::logits(self.net, &data.test_x)]
    }

    fn note(&self, _i: usize) -> Option<f64> {
        self.distiller.learned_temperature()
    }
}

/// Trains `net` (whose weights live in `vs`) with `distiller`'s loss on `source`'s teacher signal
/// (a teacher or baseline: [`Distiller::none`] and [`Source::None`]), reporting each epoch to
/// `hooks.on_epoch`. It continues from `hooks.resume` (a kept state) and, with `hooks.checkpoints`,
/// keeps one after every epoch, periodically, and when stopped.
pub fn fit(
    (vs, net): (&nn::VarStore, &Net),
    data: &Dataset,
    s: &RunSettings,
    (source, distiller): (Source, &Distiller),
    hooks: &mut Hooks,
) -> Result<Fitted, TrainError> {
    assert_eq!(
        distiller.label_smoothing(),
        s.label_smoothing,
        "the distiller's label smoothing is the role's (Distiller::with_label_smoothing)"
    );
    // graphs need every input of the step on its device and an update without per-step scalars
    let graphable = match &source {
        Source::Cached(t) => t.device() == vs.device(),
        _ => true,
    } && s.recipe.optimizer == Algorithm::Sgd;
    let graphs = match graphable {
        true => Stepper::for_mode(vs.device(), s.batch_size as i64).map_err(TrainError::Graph)?,
        false => None,
    };
    let mut plain = Plain {
        vs,
        net,
        opt: Optimizer::with(vs, s.lr, &s.recipe),
        source,
        distiller,
        precision: s.precision,
        best: None,
        graphs,
    };
    let on_epoch = &mut *hooks.on_epoch;
    let mut report = |_: usize, e: &EpochStats| on_epoch(e);
    let mut drive_hooks = DriveHooks {
        on_epoch: &mut report,
        checkpoints: hooks.checkpoints.into_iter().collect(),
        resume: hooks.resume.take().into_iter().collect(),
        until: hooks.until,
        teacher_test_logits: hooks.teacher_test_logits,
        // a reborrow for this call (the caller's hook outlives it)
        at_epoch_end: match hooks.at_epoch_end.as_mut() {
            Some(f) => Some(&mut **f),
            None => None,
        },
    };
    drive(&mut plain, data, s, &mut drive_hooks)?
        .pop()
        .unwrap_or(Err(TrainError::Interrupted))
}

/// [`fit`] with logit KD at (T, α) — α = 0 is plain cross-entropy: the call the tests and the
/// benchmark make.
#[allow(clippy::too_many_arguments)]
pub fn fit_logit(
    vs: &nn::VarStore,
    net: &Net,
    data: &Dataset,
    s: &RunSettings,
    source: Source,
    temperature: f64,
    alpha: f64,
    hooks: &mut Hooks,
) -> Result<Fitted, TrainError> {
    let value = |v: f64| crate::distill::GridValue {
        text: v.to_string(),
        value: v,
    };
    let coord = crate::distill::Coord::logit(value(temperature), value(alpha));
    let distiller = Distiller::new(&coord, &Default::default(), s.epochs)
        .with_label_smoothing(s.label_smoothing);
    fit((vs, net), data, s, (source, &distiller), hooks)
}
