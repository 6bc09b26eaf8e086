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

/// The optimizer of a run over the trainable variables of a var store.
pub struct Optimizer {
    /// (name, parameter, first state, second state), in name order: Adam's two moments, or SGD's
    /// momentum buffer (and an unused tensor).
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
    /// Steps taken so far.
    step: u64,
    lr: f64,
    recipe: Recipe,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Optimizer {
    /// PyTorch's default Adam at learning rate `lr` over every variable of `vs`.
    pub fn new(vs: &nn::VarStore, lr: f64) -> Optimizer {
        Optimizer::with(vs, lr, &Recipe::default())
    }

    /// The optimizer `recipe` names, at learning rate `lr`, over every variable of `vs`.
    pub fn with(vs: &nn::VarStore, lr: f64, recipe: &Recipe) -> Optimizer {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .map(|(name, p)| {
                let m = p.zeros_like();
                let v = match recipe.optimizer {
                    Algorithm::Adam => p.zeros_like(),
                    Algorithm::Sgd => Tensor::new(),
                };
                (name, p, m, v)
            })
            .collect();
        Optimizer {
            slots,
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

    /// Clears the gradients, back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Sets every gradient to zero (numerically the same as PyTorch's `set_to_none`: the next
    /// backward adds to zeros).
    pub fn zero_grad(&mut self) {
        for (_, p, _, _) in &mut self.slots {
            p.zero_grad();
        }
    }

    /// One step from the gradients in place. A parameter without a gradient is left alone (as
    /// PyTorch does for a parameter whose `.grad` is None).
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let wd = self.recipe.weight_decay;
        match self.recipe.optimizer {
            Algorithm::Adam => self.adam_step(wd),
            Algorithm::Sgd => self.sgd_step(wd),
        }
    }

    fn adam_step(&mut self, wd: f64) {
        let t = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2 = 1.0 - self.beta2.powf(t);
        let step_size = self.lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.sqrt();
        for (_, p, m, v) in &mut self.slots {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            // g ← g + wd·p  (grad.add(param, alpha=wd))
            let g = if wd != 0.0 { add_scaled(&g, p, wd) } else { g };
            // m ← lerp(m, g, 1 − β1)
            let _ = m.lerp_(&g, 1.0 - self.beta1);
            // v ← β2·v + (1 − β2)·g·g  (addcmul_ multiplies value·t1 first, then t2)
            let _ = v.g_mul_scalar_(self.beta2);
            *v += (&g * (1.0 - self.beta2)) * &g;
            // p ← p − step_size·m / (√v / √bc2 + ε)  (addcdiv_: value·t1 first, then / t2)
            let denom = v.sqrt() / bias_correction2_sqrt + self.eps;
            *p += (&*m * -step_size) / denom;
        }
    }

    fn sgd_step(&mut self, wd: f64) {
        let (mu, nesterov, first) = (self.recipe.momentum, self.recipe.nesterov, self.step == 1);
        for (_, p, buf, _) in &mut self.slots {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let g = if wd != 0.0 { add_scaled(&g, p, wd) } else { g };
            let d = if mu != 0.0 {
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
    }

    /// The names of the per-parameter state tensors, as [`Optimizer::state`] prefixes them.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self.recipe.optimizer {
            Algorithm::Adam => &["exp_avg", "exp_avg_sq"],
            Algorithm::Sgd => &["momentum_buffer"],
        }
    }

    /// Puts back a state written by [`Optimizer::state`] (names as there, on any device) after
    /// `steps` steps. State it does not hold stays zero.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)], steps: u64) {
        let _guard = tch::no_grad_guard();
        let names = self.state_names();
        for (name, _, m, v) in &mut self.slots {
            for (suffix, into) in names.iter().zip([&mut *m, &mut *v]) {
                let want = format!("{suffix}/{name}");
                if let Some((_, t)) = tensors.iter().find(|(n, _)| *n == want) {
                    into.copy_(t);
                }
            }
        }
        self.step = steps;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The optimizer's state as named tensors: `exp_avg/<name>` and `exp_avg_sq/<name>` per
    /// parameter for Adam, `momentum_buffer/<name>` for SGD (the step count is kept by the caller,
    /// see [`Optimizer::steps`]).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let names = self.state_names();
        self.slots
            .iter()
            .flat_map(|(name, _, m, v)| {
                names
                    .iter()
                    .zip([m, v])
                    .map(|(s, t)| (format!("{s}/{name}"), t.shallow_clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;
    use tch::Kind::Float;

    /// Adam's update by hand in f64 for one scalar parameter with loss = p²/2 (gradient p).
    #[test]
    fn matches_the_update_written_out() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var("p", &[1], nn::Init::Const(0.5));
        let mut opt = Optimizer::new(&vs, 0.1);
        let (mut x, mut m, mut v) = (0.5f64, 0.0f64, 0.0f64);
        for t in 1..=5 {
            let loss = (&p * &p).sum(Float) * 0.5;
            opt.backward_step(&loss);
            let g = x;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let mhat = m / (1.0 - 0.9f64.powi(t));
            let vhat = v / (1.0 - 0.999f64.powi(t));
            x -= 0.1 * mhat / (vhat.sqrt() + 1e-8);
            let got = p.double_value(&[0]);
            assert!((got - x).abs() < 1e-6, "step {t}: {got} vs {x}");
        }
        assert_eq!(opt.steps(), 5);
        let names: Vec<String> = opt.state().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["exp_avg/p", "exp_avg_sq/p"]);
    }

    /// SGD with momentum, Nesterov and weight decay by hand in f64, loss = p²/2 (gradient p).
    #[test]
    fn sgd_matches_the_update_written_out() {
        for nesterov in [false, true] {
            let vs = nn::VarStore::new(Device::Cpu);
            let p = vs.root().var("p", &[1], nn::Init::Const(0.5));
            let recipe = Recipe {
                optimizer: Algorithm::Sgd,
                momentum: 0.9,
                nesterov,
                weight_decay: 0.01,
                ..Recipe::default()
            };
            let mut opt = Optimizer::with(&vs, 0.1, &recipe);
            let (mut x, mut buf) = (0.5f64, 0.0f64);
            for t in 1..=5 {
                let loss = (&p * &p).sum(Float) * 0.5;
                opt.backward_step(&loss);
                let g = x + 0.01 * x;
                buf = if t == 1 { g } else { 0.9 * buf + g };
                let d = if nesterov { g + 0.9 * buf } else { buf };
                x -= 0.1 * d;
                let got = p.double_value(&[0]);
                assert!((got - x).abs() < 1e-6, "step {t}: {got} vs {x}");
            }
            let names: Vec<String> = opt.state().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["momentum_buffer/p"]);
        }
    }

    #[test]
    fn adam_weight_decay_is_added_to_the_gradient() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var("p", &[1], nn::Init::Const(0.5));
        let recipe = Recipe {
            weight_decay: 0.5,
            ..Recipe::default()
        };
        let mut opt = Optimizer::with(&vs, 0.1, &recipe);
        // a zero loss: the only gradient is the decay's, 0.25; Adam's first step is lr·sign
        opt.backward_step(&(&p * 0.0).sum(Float));
        assert!((p.double_value(&[0]) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn schedules_give_pytorchs_rates_per_epoch() {
        let lr = 0.05;
        let multistep = Recipe {
            schedule: Schedule::Multistep,
            milestones: vec![150, 180, 210],
            gamma: 0.1,
            ..Recipe::default()
        };
        // MultiStepLR stepped after each epoch: epochs 1..=150 at lr (0-based 0..149), then ×0.1 …
        let at = |r: &Recipe, e| r.lr_at(lr, e, 240);
        assert_eq!(at(&multistep, 1), lr);
        assert_eq!(at(&multistep, 150), lr);
        assert!((at(&multistep, 151) - lr * 0.1).abs() < 1e-15);
        assert!((at(&multistep, 240) - lr * 0.001).abs() < 1e-15);
        // CosineAnnealingLR(T_max = epochs): lr at the first epoch, half way at the middle
        let cosine = Recipe {
            schedule: Schedule::Cosine,
            ..Recipe::default()
        };
        assert_eq!(cosine.lr_at(lr, 1, 10), lr);
        assert!((cosine.lr_at(lr, 6, 10) - lr / 2.0).abs() < 1e-15);
        assert!(cosine.lr_at(lr, 10, 10) > 0.0);
        // a linear warm-up first, then the schedule over the epochs after it
        let warm = Recipe {
            warmup_epochs: 4,
            ..cosine
        };
        assert_eq!(warm.lr_at(lr, 1, 14), lr / 4.0);
        assert_eq!(warm.lr_at(lr, 4, 14), lr);
        assert_eq!(warm.lr_at(lr, 5, 14), lr);
        assert!((warm.lr_at(lr, 10, 14) - lr / 2.0).abs() < 1e-15);
        assert_eq!(Recipe::default().lr_at(lr, 7, 10), lr);
    }

    #[test]
    fn a_parameter_without_a_gradient_is_left_alone() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var("a", &[2], nn::Init::Const(1.0));
        let b = vs.root().var("b", &[2], nn::Init::Const(1.0));
        let mut opt = Optimizer::new(&vs, 0.1);
        opt.backward_step(&a.sum(Float));
        assert!(a.double_value(&[0]) < 1.0);
        assert_eq!(b.double_value(&[0]), 1.0);
    }
}
