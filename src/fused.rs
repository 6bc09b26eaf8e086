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

use crate::data::Prepared;
use crate::model::{Arch, Net};
use crate::rng::{hash64, SplitMix64};
use crate::train::{EpochStats, TrainError, STOP};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

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
/// α as [G] tensors. Returns (sum, per-student losses [G]).
pub fn fused_kd_loss(
    logits: &Tensor,
    teacher: &Tensor,
    labels: &Tensor,
    temperature: &Tensor,
    alpha: &Tensor,
) -> (Tensor, Tensor) {
    let (g, n, k) = (logits.size()[0], logits.size()[1], logits.size()[2]);
    let ce = logits
        .reshape([g * n, k])
        .log_softmax(-1, Kind::Float)
        .gather(1, &labels.repeat([g]).unsqueeze(1), false)
        .view([g, n])
        .mean_dim(1, false, Kind::Float)
        .neg();
    let t = temperature.view([g, 1, 1]);
    let log_ps = (logits / &t).log_softmax(-1, Kind::Float);
    let log_pt = (teacher.unsqueeze(0) / &t).log_softmax(-1, Kind::Float);
    let kl = (log_pt.exp() * (&log_pt - log_ps))
        .sum_dim_intlist(-1, false, Kind::Float)
        .mean_dim(1, false, Kind::Float);
    let per = ce * (alpha.ones_like() - alpha) + kl * alpha * temperature * temperature;
    (per.sum(Kind::Float), per)
}

/// Draws a dropout mask exactly as libtorch's CPU dropout does for an [N, 256] activation: Bernoulli
/// with keep probability 1 − p, divided by 1 − p.
pub fn dropout_mask(n: i64, width: i64, p: f64, like: &Tensor) -> Tensor {
    let mut noise = Tensor::empty([n, width], (Kind::Float, like.device()));
    let _ = noise.bernoulli_float_(1.0 - p);
    noise / (1.0 - p)
}

/// One member of a fused group.
pub struct Member {
    pub temperature: f64,
    pub alpha: f64,
}

/// Trains G logit students of one seed together. `init` is the common initial student (all members
/// start from it, as unfused students of a seed do); libtorch's generator must be in the state the
/// unfused run has right after building its student (see `train::init`). Returns each member's epochs.
#[allow(clippy::too_many_arguments)]
pub fn fit_fused(
    init: &nn::VarStore,
    data: &Prepared,
    teacher_logits: &Tensor,
    members: &[Member],
    epochs: u32,
    batch_size: u32,
    lr: f64,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize, &EpochStats),
) -> Result<Vec<Vec<EpochStats>>, TrainError> {
    let start = Instant::now();
    let device = init.device();
    let vs = nn::VarStore::new(device);
    let copies: Vec<&nn::VarStore> = members.iter().map(|_| init).collect();
    let model = FusedStudent::stack(&vs, &copies);
    let mut opt = nn::Adam::default().build(&vs, lr)?;
    let temps = Tensor::from_slice(
        &members
            .iter()
            .map(|m| m.temperature as f32)
            .collect::<Vec<_>>(),
    )
    .to_device(device);
    let alphas = Tensor::from_slice(&members.iter().map(|m| m.alpha as f32).collect::<Vec<_>>())
        .to_device(device);
    // the batch order of the unfused students of this seed
    let mut order = SplitMix64::new(hash64(&format!("batches-student-{seed}")));
    let n = data.n_train() as usize;
    let mut history: Vec<Vec<EpochStats>> = members.iter().map(|_| Vec::new()).collect();
    for epoch in 1..=epochs {
        let perm: Vec<i64> = order.permutation(n).into_iter().map(|i| i as i64).collect();
        let mut loss_sums = vec![0.0; members.len()];
        let mut steps = 0usize;
        for chunk in perm.chunks(batch_size as usize) {
            if STOP.load(Ordering::Relaxed) {
                return Err(TrainError::Interrupted);
            }
            let idx = Tensor::from_slice(chunk).to_device(device);
            let xs = data.train_x.index_select(0, &idx);
            let ys = data.train_y.index_select(0, &idx);
            let t = teacher_logits
                .index_select(0, &idx.to_device(teacher_logits.device()))
                .to_device(device);
            let mask = dropout_mask(chunk.len() as i64, model.w3.size()[2], 0.1, &xs);
            let logits = model.forward(&xs, Some(&mask));
            let (total, per) = fused_kd_loss(&logits, &t, &ys, &temps, &alphas);
            opt.backward_step(&total);
            steps += 1;
            let per: Vec<f64> =
                Vec::<f64>::try_from(per.to_kind(Kind::Double).to_device(tch::Device::Cpu))?;
            for (i, l) in per.iter().enumerate() {
                if !l.is_finite() {
                    return Err(TrainError::Diverged {
                        epoch,
                        step: steps,
                        loss: *l,
                    });
                }
                loss_sums[i] += l;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let val = accuracies(&model, &data.val_x, &data.val_y);
        let test = accuracies(&model, &data.test_x, &data.test_y);
        for (i, h) in history.iter_mut().enumerate() {
            let stats = EpochStats {
                epoch,
                train_loss: loss_sums[i] / steps.max(1) as f64,
                val_acc: val[i],
                test_acc: test[i],
                seconds: secs,
            };
            on_epoch(i, &stats);
            h.push(stats);
        }
    }
    Ok(history)
}

/// Accuracy in % of each of the G students (eval mode), from one fused forward pass per batch.
pub fn accuracies(model: &FusedStudent, xs: &Tensor, ys: &Tensor) -> Vec<f64> {
    let _guard = tch::no_grad_guard();
    let n = ys.size()[0];
    let mut correct = vec![0i64; model.g as usize];
    for start in (0..n).step_by(1024) {
        let len = (n - start).min(1024);
        let pred = model
            .forward(&xs.narrow(0, start, len), None)
            .argmax(-1, false);
        let hits = pred
            .eq_tensor(&ys.narrow(0, start, len).unsqueeze(0))
            .sum_dim_intlist(1, false, Kind::Int64)
            .to_device(tch::Device::Cpu);
        for (c, h) in correct
            .iter_mut()
            .zip(Vec::<i64>::try_from(hits).unwrap_or_default())
        {
            *c += h;
        }
    }
    correct
        .iter()
        .map(|&c| {
            if n == 0 {
                0.0
            } else {
                100.0 * c as f64 / n as f64
            }
        })
        .collect()
}

/// Builds the common initial student of a seed exactly as an unfused run does (same seed, same stream),
/// leaving libtorch's generator where the unfused run's is when it starts training.
pub fn common_init(data: &Prepared, device: tch::Device, seed: u64) -> nn::VarStore {
    let (vs, _net): (nn::VarStore, Net) =
        crate::train::init(Arch::Student, data, device, seed, "student");
    vs
}
