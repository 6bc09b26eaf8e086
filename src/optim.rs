//! Adam, written as PyTorch 2.11's `torch.optim.Adam` computes it on the CPU (the single-tensor path:
//! `lerp_` for the first moment, `mul_`/`addcmul_` for the second, `addcdiv_` for the update), so that
//! a run's numbers are a PyTorch user's numbers, and with its state in plain named tensors, so that a
//! run can be checkpointed and continued.
//!
//! The defaults are PyTorch's: β = (0.9, 0.999), ε = 1e-8, no weight decay, no AMSGrad.

use tch::{nn, Tensor};

/// Adam over the trainable variables of a var store.
pub struct Adam {
    /// (name, parameter, first moment, second moment), in name order.
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
    /// Steps taken so far.
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// PyTorch's default Adam at learning rate `lr` over every variable of `vs`.
    pub fn new(vs: &nn::VarStore, lr: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .map(|(name, p)| {
                let m = p.zeros_like();
                let v = p.zeros_like();
                (name, p, m, v)
            })
            .collect();
        Adam {
            slots,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
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

    /// One Adam step from the gradients in place. A parameter without a gradient is left alone (as
    /// PyTorch does for a parameter whose `.grad` is None).
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
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

    /// Puts back a state written by [`Adam::state`] (names as there, on any device) after `steps`
    /// steps. Moments it does not hold stay zero.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)], steps: u64) {
        let _guard = tch::no_grad_guard();
        for (name, _, m, v) in &mut self.slots {
            for (suffix, into) in [("exp_avg", &mut *m), ("exp_avg_sq", &mut *v)] {
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

    /// The optimizer's state as named tensors: `exp_avg/<name>` and `exp_avg_sq/<name>` per parameter
    /// (the step count is kept by the caller, see [`Adam::steps`]).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|(name, _, m, v)| {
                [
                    (format!("exp_avg/{name}"), m.shallow_clone()),
                    (format!("exp_avg_sq/{name}"), v.shallow_clone()),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Adam's update by hand in f64 for one scalar parameter with loss = p²/2 (gradient p).
    #[test]
    fn matches_the_update_written_out() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var("p", &[1], nn::Init::Const(0.5));
        let mut opt = Adam::new(&vs, 0.1);
        let (mut x, mut m, mut v) = (0.5f64, 0.0f64, 0.0f64);
        for t in 1..=5 {
            let loss = (&p * &p).sum(Kind::Float) * 0.5;
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

    #[test]
    fn a_parameter_without_a_gradient_is_left_alone() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var("a", &[2], nn::Init::Const(1.0));
        let b = vs.root().var("b", &[2], nn::Init::Const(1.0));
        let mut opt = Adam::new(&vs, 0.1);
        opt.backward_step(&a.sum(Kind::Float));
        assert!(a.double_value(&[0]) < 1.0);
        assert_eq!(b.double_value(&[0]), 1.0);
    }
}
