//! Training steps as CUDA graphs (`[schedule] cuda_graphs`), what the CPU can check: the graph
//! protocol of `train::graph` — the first steps eager, then each step's batch copied into static
//! buffers, one capture per (epoch, learning rate), replays, the loss copied out, the last shorter
//! batch eager — rehearsed without capturing trains exactly what eager training trains, bit for bit:
//! the same step losses, accuracies and weights. The capture itself needs a GPU (`kd-sweep bench
//! --device cuda:0`, section 9, and target/gpu's check on a lent one).

mod common;

use kd_sweep::data::Dataset;
use kd_sweep::model::{Arch, Init};
use kd_sweep::train::graph::{self, Mode};
use kd_sweep::train::optim::{Algorithm, Recipe, Schedule};
use kd_sweep::train::{self, Fitted, Hooks, RunSettings, Source};
use tch::{Device, Tensor};

fn settings(stream: &'static str, optimizer: Algorithm) -> RunSettings {
    RunSettings {
        epochs: 3,
        // 240 training images (300 less 60 held out): 7 full batches and a last one of 16 an epoch
        batch_size: 32,
        lr: 0.05,
        seed: 4,
        stream,
        init: Init::Pytorch,
        recipe: Recipe {
            optimizer,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            // a new rate every epoch: a new capture every epoch
            schedule: Schedule::Cosine,
            ..Default::default()
        },
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    }
}

/// Trains `arch` under graph mode `mode`: the result and the final weights.
fn run(
    mode: Mode,
    arch: Arch,
    data: &Dataset,
    s: &RunSettings,
    teacher: Option<&kd_sweep::model::Net>,
) -> (Fitted, Vec<(String, Tensor)>) {
    graph::set_mode(mode);
    let (vs, net) = train::init(arch, data, Device::Cpu, s);
    let mut quiet = |_: &train::EpochStats| {};
    let source = teacher.map_or(Source::None, Source::Live);
    let (t, a) = if teacher.is_some() {
        (4.0, 0.7)
    } else {
        (1.0, 0.0)
    };
    let fitted = train::fit_logit(
        &vs,
        &net,
        data,
        s,
        source,
        t,
        a,
        &mut Hooks::epochs(&mut quiet),
    );
    graph::set_mode(Mode::Off);
    (fitted.unwrap(), train::snapshot(&vs))
}

fn same(a: &(Fitted, Vec<(String, Tensor)>), b: &(Fitted, Vec<(String, Tensor)>), what: &str) {
    assert_eq!(a.0.step_losses, b.0.step_losses, "{what}: step losses");
    assert_eq!(
        (a.0.test_acc, a.0.test_acc_at_best, a.0.best_epoch),
        (b.0.test_acc, b.0.test_acc_at_best, b.0.best_epoch),
        "{what}: test accuracies"
    );
    assert_eq!(a.1.len(), b.1.len());
    for ((n, x), (_, y)) in a.1.iter().zip(&b.1) {
        assert!(x.equal(y), "{what}: final {n}");
    }
}

#[test]
fn a_graphed_run_trains_what_an_eager_run_trains() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = common::mnist_dataset(dir.path(), 300, 60, 60, 5);
    // a teacher with dropout (its draws follow each step's seed) and a KD student of it, live
    let s = settings(train::TEACHER_STREAM, Algorithm::Sgd);
    let eager = run(Mode::Off, Arch::Teacher, &data, &s, None);
    let graphed = run(Mode::Rehearse, Arch::Teacher, &data, &s, None);
    same(&eager, &graphed, "teacher");
    assert_eq!(eager.0.step_losses.len(), 24);

    let (tvs, teacher) = train::init(Arch::Teacher, &data, Device::Cpu, &s);
    train::restore(&tvs, &graphed.1);
    let s = settings(train::STUDENT_STREAM, Algorithm::Sgd);
    let eager = run(Mode::Off, Arch::Student, &data, &s, Some(&teacher));
    let graphed = run(Mode::Rehearse, Arch::Student, &data, &s, Some(&teacher));
    same(&eager, &graphed, "student");
}

#[test]
fn the_protocol_captures_once_per_epoch_and_replays_the_rest() {
    graph::set_mode(Mode::Rehearse);
    let mut stepper = graph::Stepper::for_mode(Device::Cpu, 4)
        .unwrap()
        .expect("rehearsal on the CPU");
    graph::set_mode(Mode::Off);
    let batch = |rows: i64, v: f64| train::driver::Batch {
        idx: Tensor::arange(rows, (tch::Kind::Int64, Device::Cpu)),
        xs: Tensor::full([rows, 2], v, (tch::Kind::Float, Device::Cpu)),
        ys: Tensor::zeros([rows], (tch::Kind::Int64, Device::Cpu)),
    };
    let mut seen = Vec::new();
    // the step: the mean of its images, noting whether it was given the caller's batch
    let mut step = |b: &train::driver::Batch| {
        seen.push(b.xs.double_value(&[0, 0]));
        b.xs.mean(tch::Kind::Float)
    };
    let mut losses = Vec::new();
    // two epochs of 5 full batches and a short one, the rate changing with the epoch
    for (epoch, lr) in [(1, 0.1), (2, 0.05)] {
        for i in 0..6 {
            let rows = if i == 5 { 2 } else { 4 };
            let v = (10 * epoch + i) as f64;
            let (loss, _) = stepper
                .step(&batch(rows, v), (epoch, lr), &mut step)
                .unwrap();
            losses.push(loss.double_value(&[]));
        }
    }
    let want: Vec<f64> = [1, 2]
        .iter()
        .flat_map(|e| (0..6).map(move |i| (10 * e + i) as f64))
        .collect();
    assert_eq!(seen, want, "every step saw its own batch's values");
    assert_eq!(losses, want, "and returned its own loss");
    // eager: the 3 warm-up steps and the 2 short batches; a capture at epoch 1 step 4 and epoch 2's
    // first step; replays: the other full batches
    assert_eq!(stepper.counts(), (2, 5));
}
