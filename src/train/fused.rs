//! Fused grid training (horizontal fusion, after HFTA): the G logit students of one seed trained as one
//! model. Their parameters are stacked along a group dimension: the first convolution becomes one
//! convolution with G×16 output channels, the second a grouped convolution (groups = G), the linear
//! layers batched matrix products. The loss sums the G students' KD losses, each with its own T and α,
//! so each student's gradient is exactly its own; Adam is elementwise, so one optimizer over the
//! stacked tensors updates every student as its own optimizer would.
//!
//! Dropout: with common random numbers every student of a seed draws the same dropout mask at each
//! step when trained apart (same seed, same shapes, same draws), so the fused model draws that one
//! mask per step — from the same generator, in the same way as libtorch's CPU dropout — and applies it
//! to all G students. A fused sweep therefore gives the numbers of an unfused one, up to float
//! summation order.

use super::driver::{drive, rows_on, Batch, DriveHooks, Trainee};
use crate::data::Dataset;
use crate::model::{dropout_mask, Arch, Net, DROPOUT};
use crate::train::optim::Optimizer;
use crate::train::{Fitted, RunSettings, TrainError, TrainState};
use tch::{nn, Kind, Tensor};

/// G students stacked along a group dimension.
pub struct FusedStudent {
    pub g: i64,
    /// [G·16, C, 3, 3] and [G·16]
    pub w1: Tensor,
    pub b1: Tensor,
    /// [G·16, 16, 3, 3] and [G·16], applied with groups = G
    pub w2: Tensor,
    pub b2: Tensor,
    /// [G, F, 256] and [G, 1, 256]
    pub w3: Tensor,
    pub b3: Tensor,
    /// [G, 256, classes] and [G, 1, classes]
    pub w4: Tensor,
    pub b4: Tensor,
}

impl FusedStudent {
    /// Stacks the weights of `students` (each a `Net` of `Arch::Student` in its own var store).
    pub fn stack(vs: &nn::VarStore, students: &[&nn::VarStore]) -> FusedStudent {
        let _guard = tch::no_grad_guard();
        let get = |name: &str| -> Vec<Tensor> {
            students
                .iter()
                .map(|s| s.variables()[name].detach())
                .collect()
        };
        let g = students.len() as i64;
        let cat = |name: &str| Tensor::cat(&get(name), 0);
        // tch's Linear stores [out, in]; the batched product wants [in, out]
        let stack_t = |name: &str| {
            Tensor::stack(
                &get(name)
                    .iter()
                    .map(|w| w.transpose(0, 1))
                    .collect::<Vec<_>>(),
                0,
            )
        };
        let stack_b = |name: &str| Tensor::stack(&get(name), 0).unsqueeze(1);
        let root = vs.root();
        let var = |n: &str, t: Tensor| root.var_copy(n, &t);
        FusedStudent {
            g,
            w1: var("w1", cat("conv1.weight")),
            b1: var("b1", cat("conv1.bias")),
            w2: var("w2", cat("conv2.weight")),
            b2: var("b2", cat("conv2.bias")),
            w3: var("w3", stack_t("fc1.weight")),
            b3: var("b3", stack_b("fc1.bias")),
            w4: var("w4", stack_t("fc2.weight")),
            b4: var("b4", stack_b("fc2.bias")),
        }
    }

    /// Logits [G, N, classes]. `dropout`: the [N, 256] mask (already scaled by 1/(1 − p)) shared by
    /// the G students, or `None` in evaluation.
    pub fn forward(&self, xs: &Tensor, dropout: Option<&Tensor>) -> Tensor {
        let n = xs.size()[0];
        let x = xs
            .conv2d(&self.w1, Some(&self.b1), [1, 1], [1, 1], [1, 1], 1)
            .relu()
            .max_pool2d_default(2);
        let x = x
            .conv2d(&self.w2, Some(&self.b2), [1, 1], [1, 1], [1, 1], self.g)
            .relu()
            .max_pool2d_default(2);
        // per student: its 16 channels, flattened as (channel, row, column) like the unfused Net
        let x = x.view([n, self.g, -1]).transpose(0, 1);
        let h = x.bmm(&self.w3).g_add(&self.b3).relu();
        // not in place: ReLU's backward reads its output
        let h = match dropout {
            Some(mask) => h * mask.unsqueeze(0),
            None => h,
        };
        h.bmm(&self.w4).g_add(&self.b4)
    }

    /// A group over named tensors (`w1` … `b4`), e.g. Adam's moments of a group's parameters.
    fn from_named(g: i64, get: impl Fn(&str) -> Tensor) -> FusedStudent {
        FusedStudent {
            g,
            w1: get("w1"),
            b1: get("b1"),
            w2: get("w2"),
            b2: get("b2"),
            w3: get("w3"),
            b3: get("b3"),
            w4: get("w4"),
            b4: get("b4"),
        }
    }

    /// Copies member `i`'s weights from `from` (a group of the same shape) into this group's slices.
    pub fn copy_member(&self, i: i64, from: &FusedStudent) {
        let _guard = tch::no_grad_guard();
        let id = |t: &Tensor| t.shallow_clone();
        for ((_, mut dst), (_, src)) in self.member(i, id).into_iter().zip(from.member(i, id)) {
            dst.copy_(&src);
        }
    }

    /// Student `i`'s parameters in the layout of an unfused `Net` (name → tensor), each passed through
    /// `f` first (the identity for weights, `Tensor::grad` for gradients).
    pub fn member(&self, i: i64, f: impl Fn(&Tensor) -> Tensor) -> Vec<(String, Tensor)> {
        let c = self.w1.size()[0] / self.g;
        vec![
            ("conv1.weight".into(), f(&self.w1).narrow(0, i * c, c)),
            ("conv1.bias".into(), f(&self.b1).narrow(0, i * c, c)),
            ("conv2.weight".into(), f(&self.w2).narrow(0, i * c, c)),
            ("conv2.bias".into(), f(&self.b2).narrow(0, i * c, c)),
            ("fc1.weight".into(), f(&self.w3).get(i).transpose(0, 1)),
            ("fc1.bias".into(), f(&self.b3).get(i).squeeze_dim(0)),
            ("fc2.weight".into(), f(&self.w4).get(i).transpose(0, 1)),
            ("fc2.bias".into(), f(&self.b4).get(i).squeeze_dim(0)),
        ]
    }
}

/// The summed KD losses of the G students: logits [G, N, K], teacher logits [N, K], per-student T and
/// α as \[G\] tensors, the cross-entropy label-smoothed by ε = `smoothing` (as
/// [`crate::distill::losses::ce`]: `(1 − ε)·NLL + (ε/K)·Σ −log p`, as ATen computes it). Returns
/// (sum, per-student losses \[G\]).
pub fn fused_kd_loss(
    logits: &Tensor,
    teacher: &Tensor,
    labels: &Tensor,
    (temperature, alpha): (&Tensor, &Tensor),
    smoothing: f64,
) -> (Tensor, Tensor) {
    let (g, n, k) = (logits.size()[0], logits.size()[1], logits.size()[2]);
    let log_p = logits.reshape([g * n, k]).log_softmax(-1, Kind::Float);
    let nll = log_p
        .gather(1, &labels.repeat([g]).unsqueeze(1), false)
        .view([g, n])
        .mean_dim(1, false, Kind::Float)
        .neg();
    let ce = if smoothing == 0.0 {
        nll
    } else {
        let smooth = log_p
            .sum_dim_intlist(-1, false, Kind::Float)
            .view([g, n])
            .mean_dim(1, false, Kind::Float)
            .neg();
        nll * (1.0 - smoothing) + smooth * (smoothing / k as f64)
    };
    let t = temperature.view([g, 1, 1]);
    // the KD term in the tutorial's order of operations, as crate::distill::losses::kd, per member
    // (T² and 1 − α in float32 here, in f64 there: fused and separate students agree to rounding,
    // tests/fused.rs)
    let soft_targets = (teacher.unsqueeze(0) / &t).softmax(-1, Kind::Float);
    let soft_prob = (logits / &t).log_softmax(-1, Kind::Float);
    let soft = (&soft_targets * (crate::distill::losses::finite_log(&soft_targets) - soft_prob))
        .sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float)
        / n
        * temperature
        * temperature;
    let per = soft * alpha + ce * (alpha.ones_like() - alpha);
    (per.sum(Kind::Float), per)
}

/// One member of a fused group.
pub struct Member {
    pub temperature: f64,
    pub alpha: f64,
}

/// Members train together only from one common position (they share the batch order and each step's
/// seed): splits a group by where each member's checkpoint left it — those without one from the start
/// (first), then each position — as (member indices, their states).
pub fn resume_groups(states: Vec<Option<TrainState>>) -> Vec<(Vec<usize>, Vec<TrainState>)> {
    type Place = (u32, usize, u64, u64);
    let mut fresh = Vec::new();
    let mut at: std::collections::BTreeMap<Place, (Vec<usize>, Vec<TrainState>)> =
        Default::default();
    for (i, s) in states.into_iter().enumerate() {
        match s {
            None => fresh.push(i),
            Some(s) => {
                let e = at
                    .entry((s.epoch, s.step, s.order, s.adam_steps))
                    .or_default();
                e.0.push(i);
                e.1.push(s);
            }
        }
    }
    let fresh = (!fresh.is_empty()).then_some((fresh, Vec::new()));
    fresh.into_iter().chain(at.into_values()).collect()
}

/// A fused group in training: the stacked weights, each member's best weights, the optimizer, and
/// what every member's loss needs.
struct Fused<'a> {
    model: FusedStudent,
    /// Each member's best-validation weights, copied into its slices when it improves.
    best: FusedStudent,
    opt: Optimizer,
    teacher_logits: &'a Tensor,
    temps: Tensor,
    alphas: Tensor,
    precision: super::Precision,
    label_smoothing: f64,
}

impl Fused<'_> {
    /// One of the optimizer's per-parameter states (Adam's `exp_avg`, `exp_avg_sq`; SGD's
    /// `momentum_buffer`) as a group (views of the optimizer's own tensors).
    fn moments(&self, which: &str) -> FusedStudent {
        let state = self.opt.state();
        FusedStudent::from_named(self.model.g, |n| {
            let want = format!("{which}/{n}");
            state
                .iter()
                .find(|(k, _)| *k == want)
                .map(|(_, t)| t.shallow_clone())
                .expect("the optimizer keeps its state per parameter")
        })
    }

    /// Member `i`'s tensors under the names an unfused run's checkpoint uses (`param/`, the
    /// optimizer's states such as `exp_avg/`, `best/`), as views of the group's.
    fn member_tensors(&self, i: i64) -> Vec<(String, Tensor)> {
        let id = |t: &Tensor| t.shallow_clone();
        let named = |prefix: &str, g: &FusedStudent| {
            g.member(i, id)
                .into_iter()
                .map(|(n, t)| (format!("{prefix}/{n}"), t))
                .collect::<Vec<_>>()
        };
        let mut all = named("param", &self.model);
        for which in self.opt.state_names() {
            all.extend(named(which, &self.moments(which)));
        }
        all.extend(named("best", &self.best));
        all
    }
}

impl Trainee for Fused<'_> {
    fn width(&self) -> usize {
        self.model.g as usize
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    fn step(&mut self, b: &Batch, _epoch: u32) -> Tensor {
        let device = self.model.w1.device();
        let t = rows_on(self.teacher_logits, &b.idx, device);
        let len = b.xs.size()[0];
        // the step's seed of the unfused students of this seed: the same dropout mask, in the hidden
        // layer's type (bf16 under bf16 autocast, as a plain student's)
        let hidden = (self.precision.activation_kind(), device);
        let mask = dropout_mask(len, self.model.w3.size()[2], DROPOUT, hidden);
        let (total, per) = self.precision.run(device, || {
            // the losses take float32 logits (bf16 autocast's cast up)
            let logits = self.model.forward(&b.xs, Some(&mask)).to_kind(Kind::Float);
            fused_kd_loss(
                &logits,
                &t,
                &b.ys,
                (&self.temps, &self.alphas),
                self.label_smoothing,
            )
        });
        self.opt.backward_step(&total);
        per
    }

    fn validate(&self, data: &Dataset) -> Vec<f64> {
        accuracies(&self.model, &data.val_x, &data.val_y)
    }

    fn keep_best(&mut self, i: usize, _last: bool) -> Result<(), TrainError> {
        self.best.copy_member(i as i64, &self.model);
        Ok(())
    }

    fn tensors(&self, i: usize) -> Result<Vec<(String, Tensor)>, TrainError> {
        Ok(self.member_tensors(i as i64))
    }

    fn steps(&self) -> u64 {
        self.opt.steps()
    }

    fn restore(&mut self, states: &[TrainState]) {
        let _guard = tch::no_grad_guard();
        self.opt.load_state(&[], states[0].adam_steps);
        for (i, state) in states.iter().enumerate() {
            for (name, mut into) in self.member_tensors(i as i64) {
                if let Some((_, t)) = state.tensors.iter().find(|(n, _)| *n == name) {
                    into.copy_(t);
                }
            }
        }
    }

    fn test_logits(&self, data: &Dataset) -> Vec<Tensor> {
        let _guard = tch::no_grad_guard();
        let xs = &data.test_x;
        let n = xs.size()[0];
        let chunk = eval_chunk(self.model.g);
        let parts: Vec<Tensor> = (0..n)
            .step_by(chunk as usize)
            .map(|s| {
                self.model
                    .forward(&xs.narrow(0, s, (n - s).min(chunk)), None)
            })
            .collect();
        let all = Tensor::cat(&parts, 1);
        (0..self.model.g).map(|i| all.get(i)).collect()
    }

    fn test(&mut self, data: &Dataset) -> Result<Vec<(f64, f64)>, TrainError> {
        let last = accuracies(&self.model, &data.test_x, &data.test_y);
        let best = accuracies(&self.best, &data.test_x, &data.test_y);
        Ok(last.into_iter().zip(best).collect())
    }
}

/// Trains G logit students of one seed together. A member whose loss stops being finite fails alone
/// (its error in its place of the result); the others train on (their gradients and optimizer
/// updates never mix with a diverged member's). `init` is the common initial student (all members
/// start from it, as unfused students of a seed do). `hooks` are the epoch loop's, one checkpoint
/// per member (its `at_epoch_end` is called for a single member only). Returns each member's epochs and
/// test accuracies (measured once).
pub fn fit_fused(
    init: &nn::VarStore,
    data: &Dataset,
    teacher_logits: &Tensor,
    members: &[Member],
    s: &RunSettings,
    hooks: &mut DriveHooks,
) -> Result<Vec<Result<Fitted, TrainError>>, TrainError> {
    let device = init.device();
    let vs = nn::VarStore::new(device);
    let copies: Vec<&nn::VarStore> = members.iter().map(|_| init).collect();
    let model = FusedStudent::stack(&vs, &copies);
    let best_vs = nn::VarStore::new(device);
    let best = FusedStudent::stack(&best_vs, &copies);
    let per = |f: &dyn Fn(&Member) -> f64| {
        Tensor::from_slice(&members.iter().map(|m| f(m) as f32).collect::<Vec<_>>())
            .to_device(device)
    };
    let mut fused = Fused {
        opt: Optimizer::with(&vs, s.lr, &s.recipe),
        model,
        best,
        teacher_logits,
        temps: per(&|m| m.temperature),
        alphas: per(&|m| m.alpha),
        precision: s.precision,
        label_smoothing: s.label_smoothing,
    };
    drive(&mut fused, data, s, hooks)
}

/// Images per evaluation chunk for a group of `g`: 1024 for up to 16 students, fewer beyond, so that
/// the activations held at once (∝ g × chunk) stay bounded — G = 64 evaluates 256 images at a time.
pub fn eval_chunk(g: i64) -> i64 {
    (16 * 1024 / g.max(1)).clamp(64, 1024)
}

/// Accuracy in % of each of the G students (eval mode), from one fused forward pass per batch.
pub fn accuracies(model: &FusedStudent, xs: &Tensor, ys: &Tensor) -> Vec<f64> {
    let _guard = tch::no_grad_guard();
    let n = ys.size()[0];
    if n == 0 {
        return vec![0.0; model.g as usize];
    }
    // counted on the device, read once
    let mut correct = Tensor::zeros([model.g], (Kind::Int64, ys.device()));
    let chunk = eval_chunk(model.g);
    for start in (0..n).step_by(chunk as usize) {
        let len = (n - start).min(chunk);
        let pred = model
            .forward(&xs.narrow(0, start, len), None)
            .argmax(-1, false);
        correct += pred
            .eq_tensor(&ys.narrow(0, start, len).unsqueeze(0))
            .sum_dim_intlist(1, false, Kind::Int64);
    }
    Vec::<i64>::try_from(correct.to_device(tch::Device::Cpu))
        .unwrap_or_default()
        .iter()
        .map(|&c| 100.0 * c as f64 / n as f64)
        .collect()
}

/// Builds the common initial student of a seed exactly as an unfused run does (same seed, same stream).
pub fn common_init(data: &Dataset, device: tch::Device, s: &RunSettings) -> nn::VarStore {
    let (vs, _net): (nn::VarStore, Net) = crate::train::init(Arch::Student, data, device, s);
    vs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: u32, step: usize) -> Option<TrainState> {
        Some(TrainState {
            epoch,
            step,
            order: 7,
            adam_steps: epoch as u64 * 10 + step as u64,
            history: Vec::new(),
            step_losses: Vec::new(),
            seconds: 0.0,
            tensors: Vec::new(),
        })
    }

    #[test]
    fn a_group_is_split_by_where_its_members_stopped() {
        let split = |states: Vec<Option<TrainState>>| -> Vec<Vec<usize>> {
            resume_groups(states).into_iter().map(|(m, _)| m).collect()
        };
        assert_eq!(split(vec![None, None, None]), vec![vec![0, 1, 2]]);
        assert_eq!(split(vec![at(2, 0), at(2, 0)]), vec![vec![0, 1]]);
        // fresh members first, then each place in order
        assert_eq!(
            split(vec![at(2, 3), None, at(1, 0), at(2, 3), None]),
            vec![vec![1, 4], vec![2], vec![0, 3]]
        );
        let groups = resume_groups(vec![None, at(1, 0)]);
        assert!(groups[0].1.is_empty(), "fresh members carry no states");
        assert_eq!(groups[1].1.len(), 1);
    }
}
