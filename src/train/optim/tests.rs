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
fn the_variables_live_in_one_flat_buffer_with_their_values() {
    let vs = nn::VarStore::new(Device::Cpu);
    let a = vs.root().var("a", &[3, 4], nn::Init::Const(1.5));
    let b = vs.root().var("b", &[5], nn::Init::Const(-2.0));
    let frozen = vs.root().zeros_no_train("running_mean", &[7]);
    let opt = Optimizer::new(&vs, 0.1);
    // the handles taken before (as a network's layers hold them) now point into one buffer,
    // in name order, with their values kept; a non-trainable variable stays where it was
    let base = opt.params.data_ptr() as usize;
    assert_eq!(opt.params.numel(), 12 + 5);
    assert_eq!(a.data_ptr() as usize, base);
    assert_eq!(b.data_ptr() as usize, base + 12 * 4);
    assert_eq!(a.size(), [3, 4]);
    assert_eq!(a.double_value(&[2, 3]), 1.5);
    assert_eq!(b.double_value(&[4]), -2.0);
    assert!(frozen.data_ptr() as usize != base + 17 * 4);
    assert_eq!(opt.state().len(), 4, "exp_avg and exp_avg_sq of a and b");
}

#[test]
fn adams_second_moment_is_one_fused_multiply_add_as_pytorchs_addcmul() {
    // two steps with the same gradient g: v₁ = (0.001·g)·g, then
    // v₂ = fma(round(0.001·g), g, round(0.999·v₁)) with one rounding, by hand in f64
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root().var("p", &[256], nn::Init::Const(0.0));
    let g = Tensor::linspace(-3.0, 7.0, 256, (Float, Device::Cpu));
    let mut opt = Optimizer::new(&vs, 1e-6);
    for _ in 0..2 {
        opt.backward_step(&(&p * &g).sum(Float));
    }
    let v = Vec::<f32>::try_from(&opt.state()[1].1).unwrap();
    let mut differs = 0;
    for (gi, vi) in Vec::<f32>::try_from(&g).unwrap().into_iter().zip(v) {
        let cg = 0.001f32 * gi;
        let v1 = (cg as f64 * gi as f64) as f32;
        let decayed = 0.999f32 * v1;
        let fused = (cg as f64 * gi as f64 + decayed as f64) as f32;
        assert_eq!(vi, fused, "g = {gi}");
        differs += usize::from(fused != cg * gi + decayed);
    }
    assert!(differs > 0, "the test tells one rounding from two");
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
