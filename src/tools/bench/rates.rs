//! The timed kernels of `kd-sweep bench`: a matrix product's rate (the ceiling), a training
//! step's and an evaluation pass's rate for one network, the fused students' rate, and the cost of
//! feeding batches. Each synchronises the device around its timing.

use crate::distill::losses::kd as kd_loss;
use crate::model::{Arch, Init, Net};
use crate::rng::SplitMix64;
use crate::train::optim::Optimizer;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

pub(super) fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds taken by `steps` calls of `step` after `warmup` untimed ones, the device synchronized
/// before and after.
pub(super) fn timed(device: Device, warmup: usize, steps: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        step();
    }
    sync(device);
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    sync(device);
    start.elapsed().as_secs_f64()
}

/// GFLOP/s of an n×n float32 matrix product on `device` with `threads` intra-op threads.
pub fn matmul_gflops(device: Device, threads: i32, n: i64, min_secs: f64) -> f64 {
    tch::set_num_threads(threads);
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    for _ in 0..2 {
        let _ = a.mm(&b);
    }
    sync(device);
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed().as_secs_f64() < min_secs || reps < 3 {
        let _ = a.mm(&b);
        reps += 1;
        if reps.is_multiple_of(8) {
            sync(device);
        }
    }
    sync(device);
    2.0 * (n * n * n) as f64 * reps as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// Images per second of `steps` training steps (forward, loss, backward, Adam) on one fixed batch:
/// cross-entropy for the teacher, the KD loss for the student. No batch gathering.
pub fn step_rate(
    arch: Arch,
    (shape, classes): ([i64; 3], i64),
    device: Device,
    batch: i64,
    (warmup, steps): (usize, usize),
) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), arch, shape, classes, Init::default());
    let mut opt = Optimizer::new(&vs, 1e-3);
    let xs = Tensor::randn([batch, shape[0], shape[1], shape[2]], (Kind::Float, device));
    let ys = Tensor::randint(classes, [batch], (Kind::Int64, device));
    let teacher = Tensor::randn([batch, classes], (Kind::Float, device));
    let step = |opt: &mut Optimizer| {
        let out = net.forward_t(&xs, true);
        let loss = if arch == Arch::Teacher {
            out.cross_entropy_for_logits(&ys)
        } else {
            kd_loss(
                || crate::distill::losses::ce(&out, &ys, 0.0),
                &out,
                &teacher,
                4.0,
                0.5,
            )
        };
        opt.backward_step(&loss);
    };
    let secs = timed(device, warmup, steps, || step(&mut opt));
    (steps as f64 * batch as f64) / secs
}

/// Images per second of evaluation (no gradient) over `images` random images in batches of
/// `batch`: through [`Net::predict`] (`fast`, as accuracies are counted) or plain `forward_t`.
pub(super) fn eval_rate(
    arch: Arch,
    (shape, classes): ([i64; 3], i64),
    device: Device,
    fast: bool,
    batch: i64,
    images: i64,
) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), arch, shape, classes, Init::default());
    let xs = Tensor::randn(
        [images, shape[0], shape[1], shape[2]],
        (Kind::Float, device),
    );
    let _guard = tch::no_grad_guard();
    let pass = || {
        for start in (0..images).step_by(batch as usize) {
            let x = xs.narrow(0, start, batch.min(images - start));
            let _ = if fast {
                net.predict(&x)
            } else {
                net.forward_t(&x, false)
            };
        }
    };
    // two timed passes after one untimed
    2.0 * images as f64 / timed(device, 1, 2, pass)
}

/// Student-steps per second of G students trained as one fused model on one fixed batch.
pub(super) fn fused_rate(
    (shape, classes): ([i64; 3], i64),
    device: Device,
    g: usize,
    steps: usize,
) -> f64 {
    tch::manual_seed(0);
    let stores: Vec<nn::VarStore> = (0..g)
        .map(|_| {
            let vs = nn::VarStore::new(device);
            let _ = Net::new(&vs.root(), Arch::Student, shape, classes, Init::default());
            vs
        })
        .collect();
    let fvs = nn::VarStore::new(device);
    let refs: Vec<&nn::VarStore> = stores.iter().collect();
    let model = crate::train::fused::FusedStudent::stack(&fvs, &refs);
    let mut opt = Optimizer::new(&fvs, 1e-3);
    let xs = Tensor::randn([128, shape[0], shape[1], shape[2]], (Kind::Float, device));
    let ys = Tensor::randint(classes, [128], (Kind::Int64, device));
    let teacher = Tensor::randn([128, classes], (Kind::Float, device));
    let temps = Tensor::full([g as i64], 4.0, (Kind::Float, device));
    let alphas = Tensor::full([g as i64], 0.5, (Kind::Float, device));
    let step = |opt: &mut Optimizer| {
        let mask =
            crate::model::dropout_mask(128, 256, crate::model::DROPOUT, (xs.kind(), xs.device()));
        let (loss, _) = crate::train::fused::fused_kd_loss(
            &model.forward(&xs, Some(&mask)),
            &teacher,
            &ys,
            (&temps, &alphas),
            0.0,
        );
        opt.backward_step(&loss);
    };
    (g * steps) as f64 / timed(device, 2, steps, || step(&mut opt))
}

/// Seconds per student step with batch gathering (shuffled index → `index_select` of images and
/// labels, as training does) and without (one batch reused).
pub(super) fn feeding(
    data: &crate::data::Dataset,
    device: Device,
    batch: usize,
    steps: usize,
) -> (f64, f64) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = Net::new(
        &vs.root(),
        Arch::Student,
        data.shape,
        data.classes,
        Init::default(),
    );
    let mut opt = Optimizer::new(&vs, 1e-3);
    let n = data.n_train() as usize;
    let mut rng = SplitMix64::new(1);
    let mut run = |gather: bool| {
        let first: Vec<i64> = (0..batch as i64).collect();
        let fixed = Tensor::from_slice(&first).to_device(device);
        let (fx, fy) = (
            data.train_x.index_select(0, &fixed),
            data.train_y.index_select(0, &fixed),
        );
        let start = Instant::now();
        let mut perm: Vec<usize> = Vec::new();
        for s in 0..steps {
            let (xs, ys) = if gather {
                if (s * batch) % n + batch > n || perm.is_empty() {
                    perm = rng.permutation(n);
                }
                let at = (s * batch) % n;
                let idx: Vec<i64> = perm[at..(at + batch).min(n)]
                    .iter()
                    .map(|&i| i as i64)
                    .collect();
                let idx = Tensor::from_slice(&idx).to_device(device);
                (
                    data.train_x.index_select(0, &idx),
                    data.train_y.index_select(0, &idx),
                )
            } else {
                (fx.shallow_clone(), fy.shallow_clone())
            };
            let loss = net.forward_t(&xs, true).cross_entropy_for_logits(&ys);
            opt.backward_step(&loss);
        }
        sync(device);
        start.elapsed().as_secs_f64() / steps as f64
    };
    run(false); // warm-up
    (run(true), run(false))
}
