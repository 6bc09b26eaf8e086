//! The optimizers and learning-rate schedules a role trains with ([`Recipe`]), written as PyTorch
//! 2.11 computes them on the CPU, so that a run's numbers are a PyTorch user's numbers, and with their
//! state in plain named tensors, so that a run can be checkpointed and continued.
//!
//! - Adam as `torch.optim.Adam` (the single-tensor path: `lerp_` for the first moment,
//!   `mul_`/`addcmul_` for the second, `addcdiv_` for the update): β = (0.9, 0.999), ε = 1e-8, no
//!   AMSGrad; `weight_decay` adds wd·p to the gradient first (L2, as PyTorch's Adam, not AdamW).
//! - SGD as `torch.optim.SGD`: wd·p added to the gradient, the momentum buffer starting as the first
//!   gradient and then `buf·μ + g` (no dampening), Nesterov's `g + μ·buf` when asked.
//! - Schedules set the learning rate once per epoch, as a PyTorch scheduler stepped after each epoch:
//!   `multistep` (MultiStepLR: ×γ after each milestone epoch), `cosine` (CosineAnnealingLR to 0 over
//!   the epochs after the warm-up), after an optional linear warm-up (epoch k of w at k/w of the rate).

use crate::util::KeyProblem;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// `optimizer = "adam" | "sgd"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Adam,
    Sgd,
}

/// `schedule = "constant" | "multistep" | "cosine"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    Multistep,
    Cosine,
}

/// How a role's weights are updated, apart from the base learning rate (`lr`, kept in the phase):
/// the defaults (Adam, constant rate, no weight decay) are those of every sweep written before this
/// existed, and are left out of run keys so that their keys are unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub optimizer: Algorithm,
    /// SGD's momentum μ (0: none).
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Epochs (1-based) after which `multistep` multiplies the rate by `gamma` once more (150: epoch
    /// 151 on, as PyTorch's MultiStepLR stepped after each epoch).
    pub milestones: Vec<u32>,
    pub gamma: f64,
    /// Epochs of linear warm-up before the schedule.
    pub warmup_epochs: u32,
}

impl Default for Recipe {
    fn default() -> Recipe {
        Recipe {
            optimizer: Algorithm::Adam,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            milestones: Vec::new(),
            gamma: 0.1,
            warmup_epochs: 0,
        }
    }
}

impl Recipe {
    /// Adam at a constant rate without weight decay: what every sweep did before recipes.
    pub fn is_default(&self) -> bool {
        *self == Recipe::default()
    }

    /// The learning rate of epoch `epoch` (1-based) of `epochs`, from the base rate `lr`.
    pub fn lr_at(&self, lr: f64, epoch: u32, epochs: u32) -> f64 {
        let w = self.warmup_epochs;
        if epoch <= w {
            return lr * epoch as f64 / w as f64;
        }
        match self.schedule {
            Schedule::Constant => lr,
            Schedule::Multistep => {
                let passed = self.milestones.iter().filter(|&&m| m < epoch).count();
                lr * self.gamma.powi(passed as i32)
            }
            Schedule::Cosine => {
                let (k, span) = ((epoch - w - 1) as f64, (epochs - w).max(1) as f64);
                lr * (1.0 + (std::f64::consts::PI * k / span).cos()) / 2.0
            }
        }
    }

    /// A one-line description for `plan`.
    pub fn describe(&self, lr: f64) -> String {
        let mut out = match self.optimizer {
            Algorithm::Adam => format!("Adam lr {lr}"),
            Algorithm::Sgd => format!(
                "SGD lr {lr}, momentum {}{}",
                self.momentum,
                if self.nesterov { " (Nesterov)" } else { "" }
            ),
        };
        if self.weight_decay > 0.0 {
            out += &format!(", weight decay {}", self.weight_decay);
        }
        match self.schedule {
            Schedule::Constant => {}
            Schedule::Multistep => {
                out += &format!(", ×{} at epochs {:?}", self.gamma, self.milestones)
            }
            Schedule::Cosine => out += ", cosine to 0",
        }
        if self.warmup_epochs > 0 {
            out += &format!(", {} warm-up epoch(s)", self.warmup_epochs);
        }
        out
    }
}

/// A role's recipe keys as the sweep file writes them (each `None` when absent).
#[derive(Debug, Clone, Default)]
pub struct RecipeKeys<'a> {
    pub optimizer: Option<&'a str>,
    pub momentum: Option<f64>,
    pub nesterov: Option<bool>,
    pub weight_decay: Option<f64>,
    pub schedule: Option<&'a str>,
    pub milestones: Option<&'a [i64]>,
    pub gamma: Option<f64>,
    pub warmup_epochs: Option<i64>,
}

impl Recipe {
    /// The recipe a role's keys describe, checked against each other and the role's `epochs`: SGD's
    /// keys only with SGD, Nesterov only with momentum, the schedule's keys only with their
    /// schedule, milestones inside the run and increasing, a warm-up shorter than the run and not
    /// past the first milestone.
    pub fn from_keys(k: &RecipeKeys, epochs: u32) -> Result<Recipe, KeyProblem> {
        let mut r = Recipe::default();
        if let Some(o) = k.optimizer {
            r.optimizer = match o {
                "adam" => Algorithm::Adam,
                "sgd" => Algorithm::Sgd,
                other => {
                    return Err(KeyProblem::new(
                        "optimizer",
                        format!(
                        "unknown optimizer \"{other}\"; allowed: \"adam\" (the default) or \"sgd\""
                    ),
                    ))
                }
            };
        }
        let sgd_only = "is SGD's; set optimizer = \"sgd\" to use it";
        if let Some(v) = k.momentum {
            if r.optimizer != Algorithm::Sgd {
                return Err(KeyProblem::new("momentum", sgd_only));
            }
            if !(0.0..1.0).contains(&v) {
                return Err(KeyProblem::new(
                    "momentum",
                    format!("must be in [0, 1), e.g. 0.9; got {v}"),
                ));
            }
            r.momentum = v;
        }
        if let Some(n) = k.nesterov {
            if r.optimizer != Algorithm::Sgd {
                return Err(KeyProblem::new("nesterov", sgd_only));
            }
            if n && r.momentum == 0.0 {
                return Err(KeyProblem::new(
                    "nesterov",
                    "Nesterov momentum needs momentum > 0 (e.g. momentum = 0.9)",
                ));
            }
            r.nesterov = n;
        }
        if let Some(v) = k.weight_decay {
            if !(v.is_finite() && v >= 0.0) {
                return Err(KeyProblem::new(
                    "weight_decay",
                    format!("must be a finite number ≥ 0 (L2, added to the gradient), e.g. 5e-4; got {v}"),
                ));
            }
            r.weight_decay = v;
        }
        r.schedule = match k.schedule {
            None | Some("constant") => Schedule::Constant,
            Some("multistep") => Schedule::Multistep,
            Some("cosine") => Schedule::Cosine,
            Some(other) => return Err(KeyProblem::new(
                "schedule",
                format!("unknown schedule \"{other}\"; allowed: \"constant\" (the default), \"multistep\" (with milestones, gamma) or \"cosine\""),
            )),
        };
        r.milestones = milestones(k.milestones, r.schedule, epochs)?;
        let multistep_only = |name: &str| {
            format!("is for schedule = \"multistep\" only; set that, or leave `{name}` out")
        };
        if let Some(v) = k.gamma {
            if r.schedule != Schedule::Multistep {
                return Err(KeyProblem::new("gamma", multistep_only("gamma")));
            }
            if !(v.is_finite() && v > 0.0) {
                return Err(KeyProblem::new(
                    "gamma",
                    format!("must be a finite number > 0 (the factor at each milestone, e.g. 0.1); got {v}"),
                ));
            }
            r.gamma = v;
        }
        if let Some(v) = k.warmup_epochs {
            if v < 0 || v >= epochs as i64 {
                return Err(KeyProblem::new(
                    "warmup_epochs",
                    format!("must be a whole number in 0 … {} (fewer than the {epochs} epochs); got {v}", epochs - 1),
                ));
            }
            if let Some(&first) = r.milestones.first() {
                if v as u32 > first {
                    return Err(KeyProblem::new(
                        "warmup_epochs",
                        format!("ends after the first milestone ({first}); warm up for at most {first} epochs"),
                    ));
                }
            }
            r.warmup_epochs = v as u32;
        }
        Ok(r)
    }
}

/// `milestones` of a `schedule` in a run of `epochs`: required by and only allowed with
/// `multistep`, each inside 1 … epochs − 1, increasing.
fn milestones(m: Option<&[i64]>, schedule: Schedule, epochs: u32) -> Result<Vec<u32>, KeyProblem> {
    let m = match (m, schedule) {
        (None, Schedule::Multistep) => {
            return Err(KeyProblem::new(
                "schedule",
                "\"multistep\" needs milestones, e.g. milestones = [150, 180, 210]",
            ))
        }
        (None, _) => return Ok(Vec::new()),
        (Some(_), s) if s != Schedule::Multistep => {
            return Err(KeyProblem::new(
                "milestones",
                "is for schedule = \"multistep\" only; set that, or leave `milestones` out",
            ))
        }
        (Some(m), _) => m,
    };
    if m.is_empty() {
        return Err(KeyProblem::new(
            "milestones",
            "is empty; give the epochs after which the rate drops, e.g. [150, 180, 210]",
        ));
    }
    let mut out = Vec::new();
    let mut last = 0;
    for (i, &e) in m.iter().enumerate() {
        if e < 1 || e >= epochs as i64 {
            return Err(KeyProblem::element("milestones", i, format!(
                "milestone {e} is outside epochs 1 … {}: the rate drops after a milestone epoch, so each must be before the last epoch ({epochs})",
                epochs.saturating_sub(1)
            )));
        }
        if e <= last {
            return Err(KeyProblem::element(
                "milestones",
                i,
                "milestones must increase (e.g. [150, 180, 210])",
            ));
        }
        last = e;
        out.push(e as u32);
    }
    Ok(out)
}

/// `a + s·b` as PyTorch's `a.add(b, alpha=s)` computes it on the CPU: one fused multiply-add with
/// `s` in the tensors' precision, one rounding (done here in f64, where `s·b` is exact for f32
/// tensors, then rounded once to f32).
fn add_scaled(a: &Tensor, b: &Tensor, s: f64) -> Tensor {
    let kind = a.kind();
    let s = if kind == tch::Kind::Float {
        s as f32 as f64
    } else {
        s
    };
    (a.to_kind(tch::Kind::Double) + b.to_kind(tch::Kind::Double) * s).to_kind(kind)
}

/// `a·b + c` with one rounding, as a fused multiply-add computes it: the product of two float32
/// values is exact in f64, the sum is rounded once to f64 and then to float32 (a second rounding
/// that can differ from a true fused multiply-add only on exact ties, about one element in 2²⁹).
fn fma(a: &Tensor, b: &Tensor, c: &Tensor) -> Tensor {
    let kind = c.kind();
    let d = tch::Kind::Double;
    (a.to_kind(d) * b.to_kind(d) + c.to_kind(d)).to_kind(kind)
}

/// The optimizer of a run over the trainable variables of a var store, PyTorch's `foreach` idea taken
/// one step further: the parameters live as views in one contiguous buffer (`set_data` on each
/// variable, so the network, the var store and a TorchScript module all see the same memory), the
/// gradients are gathered into one buffer after each backward pass, and the optimizer's state is one
/// buffer per moment. A step is then a handful of elementwise kernels over the whole network,
/// whatever its number of tensors (resnet56: about 10 launches instead of about 1,900 on a GPU).
/// Every operation is elementwise, so each parameter is updated exactly as PyTorch's single-tensor
/// update computes it (the same formulas, the same roundings).
pub struct Optimizer {
    /// The trainable variables in name order, each a view of `params`.
    slots: Vec<Slot>,
    /// Every trainable weight, flattened in slot order (undefined when there is none).
    params: Tensor,
    /// Adam's first moment, or SGD's momentum buffer, in the same layout.
    first: Tensor,
    /// Adam's second moment (undefined for SGD).
    second: Tensor,
    /// Steps taken so far.
    step: u64,
    lr: f64,
    recipe: Recipe,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

/// One trainable variable: its name, the variable (a view of the flat buffer), its place there.
struct Slot {
    name: String,
    var: Tensor,
    offset: i64,
    numel: i64,
    shape: Vec<i64>,
}

impl Slot {
    /// This variable's part of a flat buffer, in its own shape.
    fn of(&self, flat: &Tensor) -> Tensor {
        flat.narrow(0, self.offset, self.numel)
            .view(self.shape.as_slice())
    }
}

impl Optimizer {
    /// PyTorch's default Adam at learning rate `lr` over every variable of `vs`.
    pub fn new(vs: &nn::VarStore, lr: f64) -> Optimizer {
        Optimizer::with(vs, lr, &Recipe::default())
    }

    /// The optimizer `recipe` names, at learning rate `lr`, over every trainable variable of `vs`.
    /// Moves the variables' data into one flat buffer (their values unchanged).
    pub fn with(vs: &nn::VarStore, lr: f64, recipe: &Recipe) -> Optimizer {
        let _guard = tch::no_grad_guard();
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let vars: Vec<(String, Tensor)> = vars
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .collect();
        let total: i64 = vars.iter().map(|(_, p)| p.numel() as i64).sum();
        let (kind, device) = vars
            .first()
            .map_or((tch::Kind::Float, vs.device()), |(_, p)| {
                (p.kind(), p.device())
            });
        let params = Tensor::zeros([total], (kind, device));
        let mut slots = Vec::with_capacity(vars.len());
        let mut offset = 0;
        for (name, mut var) in vars {
            assert_eq!(
                (var.kind(), var.device()),
                (kind, device),
                "every trainable variable of a run has one type and device ({name})"
            );
            let slot = Slot {
                name,
                offset,
                numel: var.numel() as i64,
                shape: var.size(),
                var: var.shallow_clone(),
            };
            let view = slot.of(&params);
            view.shallow_clone().copy_(&var);
            var.set_data(&view);
            offset += slot.numel;
            slots.push(slot);
        }
        let first = params.zeros_like();
        let second = match recipe.optimizer {
            Algorithm::Adam => params.zeros_like(),
            Algorithm::Sgd => Tensor::new(),
        };
        Optimizer {
            slots,
            params,
            first,
            second,
            step: 0,
            lr,
            recipe: recipe.clone(),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Sets the learning rate (a schedule's, at the start of each epoch).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The learning rate now.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Counts a step taken by replaying a CUDA graph of an earlier one ([`super::graph`]): the
    /// update ran on the device, the host's count did not move.
    pub fn count_replayed_step(&mut self) {
        self.step += 1;
    }

    /// Back-propagates `loss` to the trainable variables and takes one step. The gradients are
    /// computed for the variables directly (as `torch.autograd.grad` does) rather than accumulated
    /// into each variable's `.grad`, so there is nothing to zero before the next step.
    pub fn backward_step(&mut self, loss: &Tensor) {
        let vars: Vec<&Tensor> = self.slots.iter().map(|s| &s.var).collect();
        let grads = Tensor::run_backward(&[loss], &vars, false, false);
        self.step_with(grads);
    }

    /// Sets every variable's `.grad` to zero (for a caller that runs `backward` itself and then
    /// [`Optimizer::step`]; [`Optimizer::backward_step`] needs none of this).
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            s.var.zero_grad();
        }
    }

    /// One step from the variables' `.grad` (after the caller's own `backward`).
    pub fn step(&mut self) {
        let grads = self.slots.iter().map(|s| s.var.grad()).collect();
        self.step_with(grads);
    }

    /// One step from `grads` (one per slot; an undefined one: that variable has no gradient and is
    /// left alone, weights and state, as PyTorch leaves a parameter whose `.grad` is None).
    fn step_with(&mut self, grads: Vec<Tensor>) {
        let _guard = tch::no_grad_guard();
        if self.slots.is_empty() {
            return;
        }
        let missing: Vec<usize> = (grads.iter().enumerate())
            .filter(|(_, g)| !g.defined())
            .map(|(i, _)| i)
            .collect();
        let flat: Vec<Tensor> = (grads.iter().zip(&self.slots))
            .map(|(g, s)| match g.defined() {
                true => g.reshape([-1]),
                false => Tensor::zeros([s.numel], (self.params.kind(), self.params.device())),
            })
            .collect();
        let g = Tensor::cat(&flat, 0);
        // what a variable without a gradient must keep
        let kept: Vec<(usize, Vec<Tensor>)> = missing
            .iter()
            .map(|&i| {
                let s = &self.slots[i];
                let parts = [&self.params, &self.first, &self.second]
                    .iter()
                    .filter(|t| t.defined())
                    .map(|t| s.of(t).copy())
                    .collect();
                (i, parts)
            })
            .collect();
        self.step += 1;
        let wd = self.recipe.weight_decay;
        match self.recipe.optimizer {
            Algorithm::Adam => self.adam_step(g, wd),
            Algorithm::Sgd => self.sgd_step(g, wd),
        }
        for (i, parts) in kept {
            let s = &self.slots[i];
            let into = [&self.params, &self.first, &self.second];
            for (dst, src) in into.iter().filter(|t| t.defined()).zip(parts) {
                s.of(dst).copy_(&src);
            }
        }
    }

    fn adam_step(&mut self, g: Tensor, wd: f64) {
        let t = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2 = 1.0 - self.beta2.powf(t);
        let step_size = self.lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.sqrt();
        let p = &mut self.params;
        // g ← g + wd·p  (grad.add(param, alpha=wd))
        let g = if wd != 0.0 { add_scaled(&g, p, wd) } else { g };
        // m ← lerp(m, g, 1 − β1)
        let _ = self.first.lerp_(&g, 1.0 - self.beta1);
        // v ← β2·v, then addcmul_(g, g, value = 1 − β2), which PyTorch's CPU kernel computes as one
        // fused multiply-add: fma(round((1 − β2)·g), g, v), one rounding (measured: separate
        // multiply and add differ from it in 17 % of elements, and the difference grows through
        // Adam's updates; model version 3)
        let v = &mut self.second;
        let _ = v.g_mul_scalar_(self.beta2);
        let next = fma(&(&g * (1.0 - self.beta2)), &g, v);
        v.copy_(&next);
        // p ← p − step_size·m / (√v / √bc2 + ε)  (addcdiv_: value·t1 first, then / t2)
        let denom = v.sqrt() / bias_correction2_sqrt + self.eps;
        *p += (&self.first * -step_size) / denom;
    }

    fn sgd_step(&mut self, g: Tensor, wd: f64) {
        let (mu, nesterov, first) = (self.recipe.momentum, self.recipe.nesterov, self.step == 1);
        let p = &mut self.params;
        let g = if wd != 0.0 { add_scaled(&g, p, wd) } else { g };
        let d = if mu != 0.0 {
            let buf = &mut self.first;
            // the buffer starts as the first gradient, then buf ← μ·buf + g
            if first {
                buf.copy_(&g);
            } else {
                let _ = buf.g_mul_scalar_(mu);
                *buf += &g;
            }
            if nesterov {
                add_scaled(&g, buf, mu)
            } else {
                buf.shallow_clone()
            }
        } else {
            g
        };
        // p ← p − lr·d  (param.add_(grad, alpha=-lr))
        let next = add_scaled(p, &d, -self.lr);
        p.copy_(&next);
    }

    /// The names of the per-parameter state tensors, as [`Optimizer::state`] prefixes them.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self.recipe.optimizer {
            Algorithm::Adam => &["exp_avg", "exp_avg_sq"],
            Algorithm::Sgd => &["momentum_buffer"],
        }
    }

    /// The state tensors of `state_names`, in that order.
    fn states(&self) -> [&Tensor; 2] {
        [&self.first, &self.second]
    }

    /// Puts back a state written by [`Optimizer::state`] (names as there, on any device) after
    /// `steps` steps. State it does not hold stays zero.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)], steps: u64) {
        let _guard = tch::no_grad_guard();
        let names = self.state_names();
        for s in &self.slots {
            for (suffix, flat) in names.iter().zip(self.states()) {
                let want = format!("{suffix}/{}", s.name);
                if let Some((_, t)) = tensors.iter().find(|(n, _)| *n == want) {
                    s.of(flat).copy_(t);
                }
            }
        }
        self.step = steps;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The optimizer's state as named tensors (views of its buffers): `exp_avg/<name>` and
    /// `exp_avg_sq/<name>` per parameter for Adam, `momentum_buffer/<name>` for SGD (the step count is
    /// kept by the caller, see [`Optimizer::steps`]).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let names = self.state_names();
        self.slots
            .iter()
            .flat_map(|s| {
                names
                    .iter()
                    .zip(self.states())
                    .map(|(n, flat)| (format!("{n}/{}", s.name), s.of(flat)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
