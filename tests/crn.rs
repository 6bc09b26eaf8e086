//! Common random numbers: every student of one seed (the baseline included) starts from the same
//! weights and sees the same batches; only T and α differ.

use kd_sweep::config::{DataConfig, DatasetKind};
use kd_sweep::data::{self, write, Dataset};
use kd_sweep::model::Arch;
use kd_sweep::train;
use tch::Device;

/// libtorch's random generator is process-wide and tests run on parallel threads: tests that seed it
/// and draw from it hold this lock, or they would draw from each other's streams.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn weights(vs: &tch::nn::VarStore) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A small generated MNIST-format dataset, prepared on the CPU.
fn tiny() -> Dataset {
    let d = tempfile::tempdir().unwrap();
    write::synthetic_mnist(d.path(), 64, 16, 1, false).unwrap();
    let raw = data::read(DatasetKind::Mnist, d.path()).unwrap();
    let cfg = DataConfig::of(DatasetKind::Mnist, d.path().into(), 8, 0);
    Dataset::from_raw(&raw, &cfg, Device::Cpu)
}

/// The settings of a student run of `seed` (only the seed and stream matter for initialisation).
fn student(seed: u64) -> train::RunSettings {
    train::RunSettings {
        epochs: 1,
        batch_size: 8,
        lr: 1e-3,
        seed,
        stream: train::STUDENT_STREAM,
        init: Default::default(),
        recipe: Default::default(),
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    }
}

#[test]
fn training_draws_start_from_the_dropout_seed_whatever_the_initialisation_drew() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let prep = tiny();
    let s = student(7);
    let draw = || tch::Tensor::rand([16], (tch::Kind::Float, Device::Cpu));
    tch::manual_seed(s.dropout_seed());
    let want = draw();
    let _ = train::init(Arch::Student, &prep, Device::Cpu, &s);
    assert_eq!(draw(), want, "after init");
    let kaiming = train::RunSettings {
        init: kd_sweep::model::Init::Kaiming,
        ..student(7)
    };
    let _ = train::init(Arch::Student, &prep, Device::Cpu, &kaiming);
    assert_eq!(draw(), want, "after a Kaiming init");
    let _ = train::init_with(Arch::Student, &prep, Device::Cpu, &s, |p| {
        tch::nn::conv2d(p / "regressor", 16, 32, 1, Default::default())
    });
    assert_eq!(draw(), want, "after init with a regressor");
    // and another seed's training draws differ
    assert_ne!(student(8).dropout_seed(), s.dropout_seed());
}

#[test]
fn students_of_one_seed_start_identical_and_seeds_differ() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let prep = tiny();
    let (a, _) = train::init(Arch::Student, &prep, Device::Cpu, &student(3));
    // something else drawing from libtorch's generator in between must not matter
    let _noise = tch::Tensor::randn([100], (tch::Kind::Float, Device::Cpu));
    let (b, _) = train::init(Arch::Student, &prep, Device::Cpu, &student(3));
    assert_eq!(weights(&a), weights(&b));
    let (c, _) = train::init(Arch::Student, &prep, Device::Cpu, &student(4));
    assert_ne!(weights(&a), weights(&c));
}

#[test]
fn a_regressor_built_beside_the_student_does_not_change_its_initial_weights() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let prep = tiny();
    let (plain, _) = train::init(Arch::Student, &prep, Device::Cpu, &student(5));
    let (with, _, _reg) = train::init_with(Arch::Student, &prep, Device::Cpu, &student(5), |p| {
        tch::nn::conv2d(p / "regressor", 16, 32, 1, Default::default())
    });
    let student_only: Vec<_> = weights(&with)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("regressor"))
        .collect();
    assert_eq!(student_only, weights(&plain));
    assert_eq!(
        weights(&with).len(),
        weights(&plain).len() + 2,
        "the regressor's weight and bias are there too"
    );
}
