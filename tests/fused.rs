//! Fused grid training is exactly training apart: one fused step gives the same losses, gradients and
//! updated weights as G separate steps, and several epochs give the same numbers as G separate runs.

mod common;

use kd_sweep::data::Dataset;
use kd_sweep::distill::losses::kd as kd_loss;
use kd_sweep::model::{Arch, Init, Net};
use kd_sweep::train::fused::{self, FusedStudent, Member};
use kd_sweep::train::optim::Optimizer;
use kd_sweep::train::{self, Source};
use tch::{nn, Device, Kind, Tensor};

/// libtorch's random generator is process-wide and tests run on parallel threads: tests that seed it
/// and draw from it hold this lock, or they would draw from each other's streams.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// ‖a − b‖ / ‖b‖ (Frobenius). Not the largest element-wise ratio: after one Adam step an update is about
/// lr·g/(|g| + ε), so a gradient element near zero (|g| ≈ 1e-7) that differs by float rounding (1e-8)
/// moves its weight visibly (seen: 8e-6 on one element), while the tensor as a whole agrees to 4e-7.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).norm().double_value(&[]);
    diff / b.norm().double_value(&[]).max(1e-12)
}

fn student(seed: i64, shape: [i64; 3]) -> (nn::VarStore, Net) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), Arch::Student, shape, 10, Init::default());
    (vs, net)
}

#[test]
fn one_fused_step_equals_g_separate_steps() {
    one_fused_step_with(0.0);
}

/// The same with the cross-entropy label-smoothed (the fused loss computes ATen's formula itself).
#[test]
fn one_fused_step_equals_g_separate_steps_with_label_smoothing() {
    one_fused_step_with(0.1);
}

fn one_fused_step_with(label_smoothing: f64) {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let shape = [3, 32, 32];
    let (temps, alphas) = ([1.0, 2.0, 4.0, 8.0], [0.0, 0.5, 0.9, 1.0]);
    // four students with different initial weights
    let students: Vec<(nn::VarStore, Net)> = (0..4).map(|g| student(10 + g, shape)).collect();
    tch::manual_seed(99);
    let xs = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu));
    let ys = Tensor::randint(10, [16], (Kind::Int64, Device::Cpu));
    let teacher = Tensor::randn([16, 10], (Kind::Float, Device::Cpu)) * 3.0;

    let fvs = nn::VarStore::new(Device::Cpu);
    let stores: Vec<&nn::VarStore> = students.iter().map(|s| &s.0).collect();
    let model = FusedStudent::stack(&fvs, &stores);
    for (g, (vs, _)) in students.iter().enumerate() {
        for (name, t) in model.member(g as i64, |t| t.shallow_clone()) {
            assert_eq!(
                rel_err(&t, &vs.variables()[&name]),
                0.0,
                "stacking changed {name}"
            );
        }
    }
    let mut fopt = Optimizer::new(&fvs, 1e-3);
    let t = Tensor::from_slice(&temps.map(|v| v as f32));
    let a = Tensor::from_slice(&alphas.map(|v| v as f32));
    let (total, per) = fused::fused_kd_loss(
        &model.forward(&xs, None),
        &teacher,
        &ys,
        (&t, &a),
        label_smoothing,
    );
    fopt.zero_grad();
    total.backward();

    for (g, (vs, net)) in students.iter().enumerate() {
        let mut opt = Optimizer::new(vs, 1e-3);
        let out = net.forward_t(&xs, false);
        let ce = kd_sweep::distill::losses::ce(&out, &ys, label_smoothing);
        let loss = kd_loss(move || ce, &out, &teacher, temps[g], alphas[g]);
        let (l1, l2) = (loss.double_value(&[]), per.double_value(&[g as i64]));
        assert!(
            (l1 - l2).abs() / l1.abs().max(1e-12) < 1e-5,
            "student {g}: loss {l1} apart, {l2} fused"
        );
        opt.zero_grad();
        loss.backward();
        let grads = model.member(g as i64, |t| t.grad());
        for (name, fg) in &grads {
            let e = rel_err(fg, &vs.variables()[name].grad());
            assert!(
                e < 1e-5,
                "student {g}: gradient of {name} differs (relative error {e})"
            );
        }
        opt.step();
    }
    fopt.step();
    for (g, (vs, _)) in students.iter().enumerate() {
        for (name, w) in model.member(g as i64, |t| t.shallow_clone()) {
            let e = rel_err(&w, &vs.variables()[&name]);
            assert!(
                e < 1e-5,
                "student {g}: updated {name} differs (relative error {e})"
            );
        }
    }
}

#[test]
fn the_shared_dropout_mask_is_the_one_libtorch_draws() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let h = Tensor::ones([8, 256], (Kind::Float, Device::Cpu));
    tch::manual_seed(7);
    let apart = h.dropout(0.1, true);
    tch::manual_seed(7);
    let mask = kd_sweep::model::dropout_mask(8, 256, 0.1, (h.kind(), h.device()));
    assert_eq!(rel_err(&apart, &(&h * &mask)), 0.0);
    let kept = mask.ne(0.0).sum(Kind::Int64).int64_value(&[]);
    assert!(kept > 1700 && kept < 2048, "about 90 % kept: {kept}");
}

/// A generated MNIST-format dataset (seed 4), prepared on the CPU.
fn tiny_data(n_train: usize, n_test: usize, validation: usize) -> Dataset {
    let d = tempfile::tempdir().unwrap();
    common::mnist_dataset(d.path(), n_train, n_test, validation, 4)
}

#[test]
fn several_fused_epochs_give_the_numbers_of_separate_runs() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let data = tiny_data(300, 100, 60);
    tch::manual_seed(3);
    let logits = Tensor::randn([data.n_train(), 10], (Kind::Float, Device::Cpu)) * 4.0;
    let members = [(1.0, 0.5), (4.0, 0.5), (4.0, 0.9), (8.0, 0.25)];
    let seed = 5;
    // Adam at a constant rate, and SGD with Nesterov momentum, weight decay and a multistep schedule
    // (the optimizer's state is per parameter, so a group's slices follow each member's own)
    let sgd = kd_sweep::train::optim::Recipe {
        optimizer: kd_sweep::train::optim::Algorithm::Sgd,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 5e-4,
        schedule: kd_sweep::train::optim::Schedule::Multistep,
        milestones: vec![2],
        gamma: 0.1,
        warmup_epochs: 0,
    };
    for recipe in [Default::default(), sgd] {
        let settings = train::RunSettings {
            epochs: 3,
            batch_size: 32,
            lr: 2e-3,
            seed,
            stream: "student",
            init: Init::default(),
            recipe,
            augment: Default::default(),
            precision: Default::default(),
            channels_last: false,
            label_smoothing: 0.0,
        };
        let apart: Vec<train::Fitted> = members
            .iter()
            .map(|&(t, a)| {
                let (vs, net) = train::init(Arch::Student, &data, Device::Cpu, &settings);
                train::fit_logit(
                    &vs,
                    &net,
                    &data,
                    &settings,
                    Source::Cached(&logits),
                    t,
                    a,
                    &mut train::Hooks::epochs(&mut |_| {}),
                )
                .unwrap()
            })
            .collect();
        let together: Vec<train::Fitted> = fit_group(&data, &logits, &members, &settings)
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        for (g, (fa, ff)) in apart.iter().zip(&together).enumerate() {
            let (a, f) = (&fa.history, &ff.history);
            for (ea, ef) in a.iter().zip(f) {
                eprintln!(
                    "student {g} epoch {}: loss {:.6} / {:.6}, val {:.2} / {:.2}",
                    ea.epoch, ea.train_loss, ef.train_loss, ea.val_acc, ef.val_acc,
                );
            }
            eprintln!(
                "student {g}: best epoch {} / {}, test at best {:.2} / {:.2}, last {:.2} / {:.2}",
                fa.best_epoch,
                ff.best_epoch,
                fa.test_acc_at_best,
                ff.test_acc_at_best,
                fa.test_acc,
                ff.test_acc
            );
            assert_eq!(fa.best_epoch, ff.best_epoch, "student {g}: best epoch");
            for (x, y) in [
                (fa.test_acc, ff.test_acc),
                (fa.test_acc_at_best, ff.test_acc_at_best),
            ] {
                assert!(
                    (x - y).abs() <= 100.0 / 100.0 + 1e-9,
                    "student {g}: test {x} vs {y}"
                );
            }
            for (ea, ef) in a.iter().zip(f) {
                assert!(
                    (ea.train_loss - ef.train_loss).abs() < 1e-4 * ea.train_loss.abs().max(1.0),
                    "student {g} epoch {}: loss {} vs {}",
                    ea.epoch,
                    ea.train_loss,
                    ef.train_loss
                );
                assert!(
                    (ea.val_acc - ef.val_acc).abs() <= 100.0 / 240.0 + 1e-9,
                    "student {g} epoch {}: val {} vs {}",
                    ea.epoch,
                    ea.val_acc,
                    ef.val_acc
                );
            }
        }
        // the students really are different (T and α matter), so agreement is not trivial
        assert!(
            (together[0].history[2].train_loss - together[3].history[2].train_loss).abs() > 1e-3
        );
    }
}

#[test]
fn a_diverging_member_of_a_fused_group_fails_alone() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let data = tiny_data(200, 60, 40);
    tch::manual_seed(3);
    let logits = Tensor::randn([data.n_train(), 10], (Kind::Float, Device::Cpu)) * 4.0;
    let settings = train::RunSettings {
        epochs: 2,
        batch_size: 32,
        lr: 2e-3,
        seed: 5,
        stream: train::STUDENT_STREAM,
        init: Init::default(),
        recipe: Default::default(),
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    };
    let run = |members: &[(f64, f64)]| fit_group(&data, &logits, members, &settings);
    // T = 0 makes the middle member's KD term NaN at its first step (the config never allows it)
    let with_bad = run(&[(4.0, 0.5), (0.0, 0.5), (1.0, 0.9)]);
    let healthy = run(&[(4.0, 0.5), (1.0, 0.9)]);
    match &with_bad[1] {
        Err(train::TrainError::Diverged {
            epoch: 1, step: 1, ..
        }) => {}
        other => panic!("the T = 0 member should diverge at epoch 1, step 1: {other:?}"),
    }
    // the others finish, with the numbers they have without the bad member beside them
    for (got, want) in [(&with_bad[0], &healthy[0]), (&with_bad[2], &healthy[1])] {
        let (got, want) = (got.as_ref().unwrap(), want.as_ref().unwrap());
        assert_eq!(got.history.len(), 2);
        for (g, w) in got.history.iter().zip(&want.history) {
            assert!(g.train_loss.is_finite());
            assert!(
                (g.train_loss - w.train_loss).abs() < 1e-5 * w.train_loss.abs().max(1.0),
                "{} vs {}",
                g.train_loss,
                w.train_loss
            );
            assert!((g.val_acc - w.val_acc).abs() <= 100.0 / 40.0 + 1e-9);
        }
    }
}

#[test]
fn the_naive_way_gives_the_numbers_of_cached_teacher_logits() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let data = tiny_data(200, 60, 40);
    let t_settings = train::RunSettings {
        epochs: 1,
        batch_size: 32,
        lr: 1e-3,
        seed: 2,
        stream: train::TEACHER_STREAM,
        init: Init::default(),
        recipe: Default::default(),
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    };
    let (tvs, teacher) = train::init(Arch::Teacher, &data, Device::Cpu, &t_settings);
    let none = Source::None;
    train::fit_logit(
        &tvs,
        &teacher,
        &data,
        &t_settings,
        none,
        1.0,
        0.0,
        &mut train::Hooks::epochs(&mut |_| {}),
    )
    .unwrap();
    let logits = train::logits(&teacher, &data.train_x);
    let s = train::RunSettings {
        epochs: 2,
        stream: train::STUDENT_STREAM,
        ..t_settings
    };
    let run = |signal: Source| {
        let (vs, net) = train::init(Arch::Student, &data, Device::Cpu, &s);
        let mut on_epoch = |_: &train::EpochStats| {};
        let mut hooks = train::Hooks::epochs(&mut on_epoch);
        train::fit_logit(&vs, &net, &data, &s, signal, 4.0, 0.5, &mut hooks).unwrap()
    };
    let cached = run(Source::Cached(&logits));
    let live = run(Source::Live(&teacher));
    assert_eq!(cached.step_losses.len(), live.step_losses.len());
    for (a, b) in cached.step_losses.iter().zip(&live.step_losses) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{a} cached, {b} live"
        );
    }
    assert!((cached.test_acc - live.test_acc).abs() <= 100.0 / 60.0 + 1e-9);
}

#[test]
fn evaluation_chunks_shrink_with_the_group() {
    assert_eq!(fused::eval_chunk(1), 1024);
    assert_eq!(fused::eval_chunk(16), 1024);
    assert_eq!(fused::eval_chunk(64), 256);
    assert_eq!(fused::eval_chunk(1000), 64);
}

/// Trains the (T, α) `members` of one seed as one fused group from the seed's common initial student.
fn fit_group(
    data: &Dataset,
    logits: &Tensor,
    members: &[(f64, f64)],
    settings: &train::RunSettings,
) -> Vec<Result<train::Fitted, train::TrainError>> {
    let init = fused::common_init(data, Device::Cpu, settings);
    let ms: Vec<Member> = members
        .iter()
        .map(|&(temperature, alpha)| Member { temperature, alpha })
        .collect();
    fused::fit_fused(
        &init,
        data,
        logits,
        &ms,
        settings,
        &mut kd_sweep::train::DriveHooks::epochs(&mut |_, _| {}),
    )
    .unwrap()
}
