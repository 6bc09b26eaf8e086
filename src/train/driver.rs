//! The one epoch loop of plain and fused training ([`drive`]): batch order, augmentation, each step's
//! random seed, checkpoints within and after epochs, Ctrl-C, search pauses, per-member divergence,
//! validation, the best epoch and the final test — everything but the step itself, which a
//! [`Trainee`] does (one network, [`super::plain`], or G students as one, [`super::fused`]).

use super::augment::EpochDraws;
use super::settings::RunSettings;
use super::state::{Checkpoints, TrainState};
use super::{best_index, EpochStats, Fitted, TrainError};
use crate::data::Dataset;
use crate::rng::SplitMix64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One step's batch: its rows of the training set (on the device), images (augmented when the run
/// augments) and labels.
pub struct Batch {
    pub idx: Tensor,
    pub xs: Tensor,
    pub ys: Tensor,
}

/// What plain and fused training differ in. A member is one run; a plain run has one.
pub trait Trainee {
    /// The runs trained together.
    fn width(&self) -> usize;
    /// Sets the optimizer's learning rate (a schedule's, at each epoch's start).
    fn set_lr(&mut self, lr: f64);
    /// One training step of `epoch` (1-based): the members' losses, one value each (a scalar for
    /// one member).
    fn step(&mut self, batch: &Batch, epoch: u32) -> Tensor;
    /// Each member's validation accuracy now.
    fn validate(&self, data: &Dataset) -> Vec<f64>;
    /// Member `i` has a new best validation accuracy after this epoch (`last`: the run's last
    /// epoch): keep what evaluating its best weights at the end needs.
    fn keep_best(&mut self, i: usize, last: bool) -> Result<(), TrainError>;
    /// Member `i`'s state for a checkpoint: its weights, optimizer state and best weights.
    fn tensors(&self, i: usize) -> Result<Vec<(String, Tensor)>, TrainError>;
    /// The optimizer's steps so far.
    fn steps(&self) -> u64;
    /// Puts back every member's state (all kept at one position).
    fn restore(&mut self, states: &[TrainState]);
    /// Each member's test accuracy of its last weights and of its best epoch's.
    fn test(&mut self, data: &Dataset) -> Result<Vec<(f64, f64)>, TrainError>;
    /// Each member's logits (last weights, evaluation mode) on the test images.
    fn test_logits(&self, data: &Dataset) -> Vec<Tensor>;
    /// A figure of member `i` recorded with each epoch (CTKD's learned temperature).
    fn note(&self, _i: usize) -> Option<f64> {
        None
    }
}

/// What the loop reports to and keeps through (for plain runs see [`super::plain::Hooks`]).
pub struct DriveHooks<'a> {
    /// (member, its epoch)
    pub on_epoch: &'a mut dyn FnMut(usize, &EpochStats),
    /// One per member, or none: each member keeps its own checkpoint, in the layout of an unfused
    /// run's, so that a fused member can continue fused or apart.
    pub checkpoints: Vec<&'a dyn Checkpoints>,
    /// Every member's state at one common position (see [`super::fused::resume_groups`]), or
    /// empty: from the start.
    pub resume: Vec<TrainState>,
    /// Every member stops after this epoch when it comes before the last (a search rung), with
    /// [`TrainError::Paused`]; never part of a run's key.
    pub until: Option<u32>,
    /// The teacher's logits on the test images: each finished member's imitation of it is measured
    /// ([`super::Imitation`]); `None`: not measured.
    pub teacher_test_logits: Option<&'a Tensor>,
    /// Called after each epoch's validation with the epoch and the (single) member's epochs so
    /// far, before that epoch's checkpoint: a teacher's snapshots are taken here, so a run continued
    /// from a checkpoint never skips one. An error stops the run.
    pub at_epoch_end: Option<&'a mut EpochEnd<'a>>,
}

/// What [`DriveHooks::at_epoch_end`] calls.
pub type EpochEnd<'a> = dyn FnMut(u32, &[EpochStats]) -> Result<(), TrainError> + 'a;

impl<'a> DriveHooks<'a> {
    /// Epoch reports only: no checkpoints, from the start, to the last epoch.
    pub fn epochs(on_epoch: &'a mut dyn FnMut(usize, &EpochStats)) -> DriveHooks<'a> {
        DriveHooks {
            on_epoch,
            checkpoints: Vec::new(),
            resume: Vec::new(),
            until: None,
            teacher_test_logits: None,
            at_epoch_end: None,
        }
    }
}

/// Where each member stands in the loop.
struct Member {
    /// Its epochs so far, or why it stopped.
    history: Result<Vec<EpochStats>, TrainError>,
    /// Every step's loss of the epochs before this one.
    steps: Vec<f64>,
}

/// Trains `t` on `data` for `s.epochs` (from `hooks.resume` when given) and returns each member's
/// result: its epochs and test accuracies, or why it stopped. A member whose loss stops being finite
/// fails alone. `Err` only for what stops every member (Ctrl-C, a checkpoint that cannot be made).
pub fn drive(
    t: &mut dyn Trainee,
    data: &Dataset,
    s: &RunSettings,
    hooks: &mut DriveHooks,
) -> Result<Vec<Result<Fitted, TrainError>>, TrainError> {
    let device = data.train_x.device();
    let width = t.width();
    let (n, bs) = (data.n_train(), s.batch_size as i64);
    let (mut members, mut order, (first_epoch, first_step, before)) = start_at(t, s, &hooks.resume);
    let start = Instant::now();
    let elapsed = || before + start.elapsed().as_secs_f64();
    let every = hooks.checkpoints.first().and_then(|c| c.every());
    let mut saved_at = Instant::now();
    // keeps every healthy member's checkpoint at `position`, with the steps of this epoch so far
    let save = |t: &dyn Trainee,
                members: &[Member],
                position: (u32, usize, u64),
                this_epoch: &[Vec<f64>],
                seconds: f64|
     -> Result<(), TrainError> {
        for (i, c) in hooks.checkpoints.iter().enumerate() {
            let Ok(h) = &members[i].history else { continue };
            let mut so_far = members[i].steps.clone();
            so_far.extend(this_epoch.get(i).into_iter().flatten());
            let state = TrainState::at(position, t.steps(), h, so_far, seconds, t.tensors(i)?);
            c.save(&state);
        }
        Ok(())
    };
    for epoch in first_epoch..=s.epochs {
        if members.iter().all(|m| m.history.is_err()) {
            break;
        }
        t.set_lr(s.recipe.lr_at(s.lr, epoch, s.epochs));
        let epoch_order = order.state();
        let perm = epoch_permutation(&mut order, n as usize, device);
        let draws = (!s.augment.is_none())
            .then(|| EpochDraws::new(s.seed, s.stream, epoch, n as usize, device));
        let skip = if epoch == first_epoch { first_step } else { 0 };
        // the steps of this epoch a checkpoint already took (the last `skip` of each member's)
        let earlier: Vec<Vec<f64>> = members
            .iter_mut()
            .map(|m| m.steps.split_off(m.steps.len() - skip))
            .collect();
        let mut losses = StepLosses::new();
        for (step, begin) in (0..n).step_by(bs as usize).enumerate().skip(skip) {
            let stop = STOP.load(Ordering::Relaxed);
            let due = every.is_some_and(|every| saved_at.elapsed() >= every);
            // stopped before its first step (a worker stopped as it started): nothing to keep
            let trained = (epoch, step) != (1, 0);
            if (stop || due) && trained {
                let this_epoch: Vec<Vec<f64>> = earlier
                    .iter()
                    .zip(losses.peek_each(width))
                    .map(|(a, b)| a.iter().copied().chain(b).collect())
                    .collect();
                save(
                    &*t,
                    &members,
                    (epoch - 1, step, epoch_order),
                    &this_epoch,
                    elapsed(),
                )?;
                saved_at = Instant::now();
            }
            if stop {
                return Err(TrainError::Interrupted);
            }
            // each step's random draws (dropout) from a seed of its own: a run continued from a
            // checkpoint draws exactly what it would have drawn, fused or not
            tch::manual_seed(s.step_seed(epoch, step));
            let batch = make_batch(data, &perm, (begin, bs.min(n - begin)), draws.as_ref());
            let loss = t.step(&batch, epoch);
            losses.push(&loss);
            step_sleep();
        }
        let each = losses.finish_each(epoch);
        let val = t.validate(data);
        let ended = (epoch, s.epochs, elapsed());
        let reports = end_epoch(t, &mut members, (each, earlier), &val, ended)?;
        at_epoch_end(&mut hooks.at_epoch_end, epoch, &members)?;
        if epoch < s.epochs {
            save(&*t, &members, (epoch, 0, order.state()), &[], elapsed())?;
            saved_at = Instant::now();
        }
        for (i, stats) in &reports {
            (hooks.on_epoch)(*i, stats);
        }
        if pauses(hooks.until, epoch, s.epochs, !hooks.checkpoints.is_empty()) {
            return Ok(members
                .into_iter()
                .map(|m| m.history.and_then(|h| Err(TrainError::Paused(h))))
                .collect());
        }
    }
    finish(t, data, hooks.teacher_test_logits, members)
}

/// Testing hook: `KD_SWEEP_STEP_SLEEP_MS=<ms>` sleeps that long after every training step, so that
/// a test can make a small run outlive a time limit (SLURM's least is a minute) without computing
/// for a minute. Sleeping changes no number.
fn step_sleep() {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| {
        (std::env::var("KD_SWEEP_STEP_SLEEP_MS").ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The `len` training rows at `begin` of the epoch's permutation, augmented with the epoch's draws
/// when there are any.
fn make_batch(
    data: &Dataset,
    perm: &Tensor,
    (begin, len): (i64, i64),
    draws: Option<&EpochDraws>,
) -> Batch {
    let idx = perm.narrow(0, begin, len);
    let xs = data.train_x.index_select(0, &idx);
    let xs = match draws {
        Some(d) => d.apply(&xs, begin, &data.black),
        None => xs,
    };
    let ys = data.train_y.index_select(0, &idx);
    Batch { idx, xs, ys }
}

/// Calls [`DriveHooks::at_epoch_end`] with the single member's epochs so far (a run that has not
/// failed; a fused group has no such hook).
fn at_epoch_end(
    hook: &mut Option<&mut EpochEnd>,
    epoch: u32,
    members: &[Member],
) -> Result<(), TrainError> {
    match (hook.as_mut(), members) {
        (Some(f), [Member { history: Ok(h), .. }]) => f(epoch, h),
        _ => Ok(()),
    }
}

/// Where training starts: fresh members at epoch 1, or — from checkpoints, one per member — each
/// member's history and steps so far, the batch order's state and (first epoch, first step of it,
/// seconds of training before) to continue from, the trainee restored.
#[allow(clippy::type_complexity)]
fn start_at(
    t: &mut dyn Trainee,
    s: &RunSettings,
    resume: &[TrainState],
) -> (Vec<Member>, SplitMix64, (u32, usize, f64)) {
    let mut members: Vec<Member> = (0..t.width())
        .map(|_| Member {
            history: Ok(Vec::new()),
            steps: Vec::new(),
        })
        .collect();
    let Some(first) = resume.first() else {
        return (members, s.batch_order(), (1, 0, 0.0));
    };
    assert_eq!(resume.len(), t.width(), "a state per member");
    t.restore(resume);
    for (m, state) in members.iter_mut().zip(resume) {
        m.history = Ok(state.history.clone());
        m.steps = state.step_losses.clone();
    }
    let order = SplitMix64::new(first.order);
    (members, order, (first.epoch + 1, first.step, first.seconds))
}

/// Each member's step losses of an epoch, or why it failed.
type EpochLosses = Vec<Result<Vec<f64>, TrainError>>;

/// The end of an epoch for every healthy member: its steps' losses (a member whose loss stopped
/// being finite fails alone), its epoch's stats, its best weights kept when the epoch is a new best
/// (strictly higher validation accuracy). Returns the members' new stats.
fn end_epoch(
    t: &mut dyn Trainee,
    members: &mut [Member],
    (each, earlier): (EpochLosses, Vec<Vec<f64>>),
    val: &[f64],
    (epoch, last, seconds): (u32, u32, f64),
) -> Result<Vec<(usize, EpochStats)>, TrainError> {
    let mut reports = Vec::new();
    for (i, ((m, loss), mut steps)) in members.iter_mut().zip(each).zip(earlier).enumerate() {
        let Ok(epochs) = &mut m.history else { continue };
        match loss {
            Err(e) => m.history = Err(e),
            Ok(new) => {
                steps.extend(new);
                let stats = EpochStats {
                    epoch,
                    train_loss: mean(&steps),
                    val_acc: val[i],
                    seconds,
                    learned_temperature: t.note(i),
                };
                m.steps.extend(steps);
                epochs.push(stats.clone());
                if best_index(epochs) == Some(epochs.len() - 1) {
                    t.keep_best(i, epoch == last)?;
                }
                reports.push((i, stats));
            }
        }
    }
    Ok(reports)
}

/// After the last epoch: the test set, once, for each member's last weights and its best epoch's,
/// and how closely each imitates its teacher (when the run is measured against one).
fn finish(
    t: &mut dyn Trainee,
    data: &Dataset,
    teacher_test_logits: Option<&Tensor>,
    members: Vec<Member>,
) -> Result<Vec<Result<Fitted, TrainError>>, TrainError> {
    if members.iter().all(|m| m.history.is_err()) {
        return Ok(members
            .into_iter()
            .map(|m| Err(m.history.unwrap_err()))
            .collect());
    }
    let test = t.test(data)?;
    let imitation: Vec<Option<super::Imitation>> = match teacher_test_logits {
        Some(teacher) => t
            .test_logits(data)
            .iter()
            .map(|s| Some(super::Imitation::of(s, teacher)))
            .collect(),
        None => vec![None; members.len()],
    };
    Ok(members
        .into_iter()
        .zip(test)
        .zip(imitation)
        .map(|((m, (last, best)), imitation)| {
            m.history.map(|h| Fitted {
                imitation,
                ..Fitted::new(h, last, best, m.steps)
            })
        })
        .collect())
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

/// Whether a run that just finished `epoch` of `epochs` pauses there for a search rung (a pause needs a
/// checkpoint to continue from).
pub fn pauses(until: Option<u32>, epoch: u32, epochs: u32, checkpoints: bool) -> bool {
    checkpoints && until.is_some_and(|u| epoch >= u && epoch < epochs)
}

pub fn mean(steps: &[f64]) -> f64 {
    if steps.is_empty() {
        return 0.0;
    }
    steps.iter().sum::<f64>() / steps.len() as f64
}
