//! A run continued from a checkpoint gives the numbers of an uninterrupted run, bit for bit on the CPU:
//! stopped at an epoch boundary or in the middle of an epoch, a teacher and a KD student continue and
//! end with the same epochs, step losses, test accuracies and weights.
//!
//! One test in this binary: it uses the process-wide stop flag (`train::STOP`) and libtorch's generator.

use kd_sweep::store::checkpoint::RunCheckpoint;
mod common;

use kd_sweep::data::Dataset;
use kd_sweep::model::{Arch, Init};
use kd_sweep::store::Store;
use kd_sweep::train::{self, Checkpoints, Fitted, Hooks, RunSettings, Source, TrainState};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

fn tiny_data(dir: &std::path::Path) -> Dataset {
    let mut d = common::mnist_dataset(dir, 300, 60, 60, 5);
    // noisy labels keep the loss (and so every difference) from vanishing within a few epochs
    tch::manual_seed(8);
    let keep = Tensor::rand([d.n_train()], (Kind::Float, Device::Cpu)).lt(0.7);
    let noise = Tensor::randint(10, [d.n_train()], (Kind::Int64, Device::Cpu));
    d.train_y = d.train_y.where_self(&keep, &noise);
    d
}

/// A checkpoint store that also stops the run (as a kill would) after its `stop_after`-th save.
struct Stopping<'a> {
    inner: &'a RunCheckpoint,
    saves: Cell<usize>,
    stop_after: usize,
}

impl Checkpoints for Stopping<'_> {
    fn load(&self) -> Option<TrainState> {
        self.inner.load()
    }
    fn save(&self, state: &TrainState) {
        self.inner.save(state);
        self.saves.set(self.saves.get() + 1);
        if self.saves.get() == self.stop_after {
            train::STOP.store(true, Ordering::SeqCst);
        }
    }
    fn every(&self) -> Option<Duration> {
        self.inner.every()
    }
}

/// Where a run is stopped, as (case, checkpoint interval, the saves after which it stops): at the end
/// of epoch 2; in epoch 3 after 3 of its steps (saving at every step); twice in one run.
fn stop_cases(steps_per_epoch: usize) -> [(&'static str, Option<Duration>, Vec<usize>); 3] {
    [
        ("after epoch 2", None, vec![2]),
        (
            "mid-epoch 3",
            Some(Duration::ZERO),
            vec![2 * (steps_per_epoch + 1) + 4],
        ),
        ("stopped twice", Some(Duration::ZERO), vec![3, 15]),
    ]
}

struct Run<'a> {
    arch: Arch,
    settings: RunSettings,
    signal: &'a dyn Fn() -> Source<'a>,
    temperature: f64,
    alpha: f64,
}

/// Trains `run` to the end through `checkpoints` (continuing from what it holds); returns the result
/// and the final weights, or `None` when stopped.
fn train(
    run: &Run,
    data: &Dataset,
    checkpoints: Option<&dyn Checkpoints>,
) -> Option<(Fitted, Vec<(String, Tensor)>)> {
    // as the worker does: a TorchScript network is built from the module its checkpoint holds
    let resume = checkpoints.and_then(|c| c.load());
    let saved = resume.as_ref().and_then(|s| s.script_state());
    let (vs, net) =
        train::try_init(run.arch, data, Device::Cpu, &run.settings, saved.as_ref()).unwrap();
    let mut on_epoch = |_: &train::EpochStats| {};
    let mut hooks = Hooks {
        on_epoch: &mut on_epoch,
        checkpoints,
        resume,
        until: None,
        teacher_test_logits: None,
        at_epoch_end: None,
    };
    let signal = (run.signal)();
    match train::fit_logit(
        &vs,
        &net,
        data,
        &run.settings,
        signal,
        run.temperature,
        run.alpha,
        &mut hooks,
    ) {
        Ok(f) => {
            // the weights, and evaluation-mode logits (which batch norm's buffers shape)
            let mut state = train::snapshot(&vs);
            state.push(("eval logits".into(), train::logits(&net, &data.val_x)));
            Some((f, state))
        }
        Err(train::TrainError::Interrupted) => None,
        Err(e) => panic!("{e}"),
    }
}

fn same(a: &(Fitted, Vec<(String, Tensor)>), b: &(Fitted, Vec<(String, Tensor)>), what: &str) {
    let strip = |f: &Fitted| -> Vec<(u32, u64, u64)> {
        f.history
            .iter()
            .map(|e| (e.epoch, e.train_loss.to_bits(), e.val_acc.to_bits()))
            .collect()
    };
    assert_eq!(strip(&a.0), strip(&b.0), "{what}: epochs");
    assert_eq!(a.0.step_losses, b.0.step_losses, "{what}: step losses");
    assert_eq!(
        (a.0.best_epoch, a.0.test_acc, a.0.test_acc_at_best),
        (b.0.best_epoch, b.0.test_acc, b.0.test_acc_at_best),
        "{what}: best epoch and test accuracies"
    );
    for ((n, x), (_, y)) in a.1.iter().zip(&b.1) {
        assert!(x.equal(y), "{what}: final {n}");
    }
}

#[test]
fn a_continued_run_gives_the_numbers_of_an_uninterrupted_one() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let store = Store::new(dir.path(), "ck");
    tch::manual_seed(3);
    let logits = Tensor::randn([data.n_train(), 10], (Kind::Float, Device::Cpu)) * 3.0;
    let settings = |stream| RunSettings {
        epochs: 5,
        batch_size: 32,
        lr: 2e-3,
        seed: 1,
        stream,
        init: Init::Pytorch,
        recipe: Default::default(),
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    };
    let none = || Source::None;
    let cached = || Source::Cached(&logits);
    let runs = [
        (
            "teacher",
            Run {
                // resnet8: batch norm's running statistics continue too (the students' dropout
                // draws are checked by the student runs; the tutorial teacher took 7× as long)
                arch: Arch::ResNet {
                    depth: 8,
                    x4: false,
                },
                settings: settings(train::TEACHER_STREAM),
                signal: &none,
                temperature: 1.0,
                alpha: 0.0,
            },
        ),
        (
            "student",
            Run {
                arch: Arch::Student,
                settings: settings(train::STUDENT_STREAM),
                signal: &cached,
                temperature: 4.0,
                alpha: 0.5,
            },
        ),
    ];
    // SGD with momentum and a schedule: the momentum buffers and the epoch's rate continue too
    let sgd = Run {
        arch: Arch::Student,
        settings: RunSettings {
            recipe: kd_sweep::train::optim::Recipe {
                optimizer: kd_sweep::train::optim::Algorithm::Sgd,
                momentum: 0.9,
                nesterov: false,
                weight_decay: 5e-4,
                schedule: kd_sweep::train::optim::Schedule::Cosine,
                warmup_epochs: 1,
                ..Default::default()
            },
            lr: 0.05,
            ..settings(train::STUDENT_STREAM)
        },
        signal: &cached,
        temperature: 4.0,
        alpha: 0.9,
    };
    // crop-flip batches, and a live teacher (the student network itself) in every step: the epoch's
    // draws are the same after a restart
    let teacher_net = {
        let (_, net) = train::init(Arch::Student, &data, Device::Cpu, &settings("other"));
        net
    };
    let live = || Source::Live(&teacher_net);
    let augmented = Run {
        arch: Arch::Student,
        settings: RunSettings {
            augment: kd_sweep::train::augment::Augment::CropFlip,
            precision: Default::default(),
            channels_last: false,
            label_smoothing: 0.0,
            ..settings(train::STUDENT_STREAM)
        },
        signal: &live,
        temperature: 4.0,
        alpha: 0.5,
    };
    // a user's network scripted by PyTorch, with batch norm (buffers the checkpoint must keep)
    let script = common::scripted(&dir.path().join("bn.pt"), "bn", 1, 10, 4);
    let scripted = script.map(|p| Run {
        arch: Arch::parse_in(&format!("torchscript:{}", p.display()), dir.path()).unwrap(),
        settings: settings(train::STUDENT_STREAM),
        signal: &cached,
        temperature: 4.0,
        alpha: 0.5,
    });
    if scripted.is_none() {
        common::skip_without_pytorch();
    }
    let steps_per_epoch = (data.n_train() as usize).div_ceil(32); // 8
    for (name, run) in runs
        .iter()
        .map(|(n, r)| (*n, r))
        .chain([("SGD student", &sgd), ("augmented student", &augmented)])
        .chain(scripted.as_ref().map(|r| ("torchscript student", r)))
    {
        let whole = train(run, &data, None).unwrap();
        assert_eq!(whole.0.step_losses.len(), 5 * steps_per_epoch);
        for (case, every, stops) in stop_cases(steps_per_epoch) {
            let key = format!("{:0>64}", format!("{name}{}", case.len()));
            let ck = RunCheckpoint::new(&store, name, &key, every);
            let mut continued = None;
            for stop_after in stops.iter().copied().chain([usize::MAX]) {
                let stopping = Stopping {
                    inner: &ck,
                    saves: Cell::new(0),
                    stop_after,
                };
                train::STOP.store(false, Ordering::SeqCst);
                continued = train(run, &data, Some(&stopping));
                if stop_after != usize::MAX {
                    assert!(continued.is_none(), "{name}, {case}: was not stopped");
                    let kept = ck.load().expect("a checkpoint is kept when stopped");
                    eprintln!(
                        "{name}, {case}: stopped at epoch {} + {} steps",
                        kept.epoch, kept.step
                    );
                    assert!(kept.epoch < 5);
                }
            }
            same(&whole, &continued.unwrap(), &format!("{name}, {case}"));
            kd_sweep::store::checkpoint::remove(&store, name, &key);
        }
    }
    fused_groups_continue_bit_for_bit(&data, &store, &logits, &settings(train::STUDENT_STREAM));
    train::STOP.store(false, Ordering::SeqCst);
}

/// A fused group stopped after an epoch, mid-epoch and twice continues with every member's numbers of
/// the uninterrupted group; each member keeps its own checkpoint, which an unfused run of the same
/// student (same seed, same key) can continue from too: fused and apart are the same numbers.
fn fused_groups_continue_bit_for_bit(
    data: &Dataset,
    store: &Store,
    logits: &Tensor,
    settings: &RunSettings,
) {
    use kd_sweep::train::fused::{self, Member};
    use kd_sweep::train::DriveHooks;
    let grid = [(4.0, 0.5), (1.0, 0.9), (8.0, 0.25)];
    let members: Vec<Member> = grid
        .iter()
        .map(|&(temperature, alpha)| Member { temperature, alpha })
        .collect();
    let init = fused::common_init(data, Device::Cpu, settings);
    let run = |checkpoints: Vec<&dyn Checkpoints>| {
        // all members stop together here: all have a state, or none
        let resume = checkpoints
            .iter()
            .map(|c| c.load())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let mut on_epoch = |_: usize, _: &train::EpochStats| {};
        let mut hooks = DriveHooks {
            on_epoch: &mut on_epoch,
            checkpoints,
            resume,
            until: None,
            teacher_test_logits: None,
            at_epoch_end: None,
        };
        match fused::fit_fused(&init, data, logits, &members, settings, &mut hooks) {
            Ok(each) => Some(each.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()),
            Err(train::TrainError::Interrupted) => None,
            Err(e) => panic!("{e}"),
        }
    };
    let whole = run(Vec::new()).unwrap();
    let steps_per_epoch = (data.n_train() as usize).div_ceil(32);
    let keys: Vec<String> = (0..grid.len()).map(|i| format!("{i:0>64}")).collect();
    for (case, every, stops) in stop_cases(steps_per_epoch) {
        let cks: Vec<RunCheckpoint> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| RunCheckpoint::new(store, &format!("student-{i}"), k, every))
            .collect();
        let mut continued = None;
        for stop_after in stops.iter().copied().chain([usize::MAX]) {
            // the group saves all members at once: each counts its own saves
            let stopping: Vec<Stopping> = cks
                .iter()
                .map(|inner| Stopping {
                    inner,
                    saves: Cell::new(0),
                    stop_after,
                })
                .collect();
            train::STOP.store(false, Ordering::SeqCst);
            continued = run(stopping.iter().map(|s| s as &dyn Checkpoints).collect());
            if stop_after != usize::MAX {
                assert!(continued.is_none(), "fused, {case}: was not stopped");
            }
        }
        let continued = continued.unwrap();
        for (i, (a, b)) in whole.iter().zip(&continued).enumerate() {
            same(
                &(a.clone(), Vec::new()),
                &(b.clone(), Vec::new()),
                &format!("fused member {i}, {case}"),
            );
        }
        for (i, k) in keys.iter().enumerate() {
            kd_sweep::store::checkpoint::remove(store, &format!("student-{i}"), k);
        }
    }

    // paused by a search rung after epoch 2 (every member), then promoted: the uninterrupted numbers
    let cks: Vec<RunCheckpoint> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| RunCheckpoint::new(store, &format!("student-{i}"), k, None))
        .collect();
    for until in [Some(2), None] {
        let resume = cks
            .iter()
            .map(train::Checkpoints::load)
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let mut trained = Vec::new();
        let mut on_epoch = |_: usize, e: &train::EpochStats| trained.push(e.epoch);
        let mut hooks = DriveHooks {
            on_epoch: &mut on_epoch,
            checkpoints: cks.iter().map(|c| c as &dyn Checkpoints).collect(),
            resume,
            until,
            teacher_test_logits: None,
            at_epoch_end: None,
        };
        let each = fused::fit_fused(&init, data, logits, &members, settings, &mut hooks).unwrap();
        // the promotion trains only the epochs after the pause
        let first = if until.is_some() { 1 } else { 3 };
        assert_eq!(trained.first(), Some(&first), "{until:?}: {trained:?}");
        for (i, r) in each.into_iter().enumerate() {
            match (until, r) {
                (Some(_), Err(train::TrainError::Paused(h))) => {
                    let numbers = |h: &[train::EpochStats]| -> Vec<(u32, f64, f64)> {
                        h.iter()
                            .map(|e| (e.epoch, e.train_loss, e.val_acc))
                            .collect()
                    };
                    assert_eq!(
                        numbers(&h),
                        numbers(&whole[i].history[..2]),
                        "fused member {i}: the paused epochs"
                    )
                }
                (None, Ok(f)) => same(
                    &(whole[i].clone(), Vec::new()),
                    &(f, Vec::new()),
                    &format!("fused member {i}, paused after epoch 2 and promoted"),
                ),
                (u, r) => panic!("member {i}, until {u:?}: {:?}", r.map(|f| f.history.len())),
            }
        }
    }
    for (i, k) in keys.iter().enumerate() {
        kd_sweep::store::checkpoint::remove(store, &format!("student-{i}"), k);
    }

    // a member's checkpoint, continued apart: the unfused run ends with the fused member's numbers
    let ck = RunCheckpoint::new(store, "student-0", &keys[0], None);
    let stop_first = [Stopping {
        inner: &ck,
        saves: Cell::new(0),
        stop_after: 2,
    }];
    train::STOP.store(false, Ordering::SeqCst);
    let mut on_epoch = |_: usize, _: &train::EpochStats| {};
    let mut hooks = DriveHooks {
        on_epoch: &mut on_epoch,
        checkpoints: stop_first.iter().map(|s| s as &dyn Checkpoints).collect(),
        resume: Vec::new(),
        until: None,
        teacher_test_logits: None,
        at_epoch_end: None,
    };
    let one = [Member {
        temperature: grid[0].0,
        alpha: grid[0].1,
    }];
    assert!(matches!(
        fused::fit_fused(&init, data, logits, &one, settings, &mut hooks),
        Err(train::TrainError::Interrupted)
    ));
    train::STOP.store(false, Ordering::SeqCst);
    let cached = || Source::Cached(logits);
    let apart = Run {
        arch: Arch::Student,
        settings: settings.clone(),
        signal: &cached,
        temperature: grid[0].0,
        alpha: grid[0].1,
    };
    let (fitted, _) = train(&apart, data, Some(&ck)).unwrap();
    let strip = |f: &Fitted| -> Vec<(u32, u64)> {
        f.history
            .iter()
            .map(|e| (e.epoch, e.val_acc.to_bits()))
            .collect()
    };
    assert_eq!(
        strip(&fitted),
        strip(&whole[0]),
        "a fused member's checkpoint continued apart"
    );
    assert_eq!(fitted.test_acc, whole[0].test_acc);
    kd_sweep::store::checkpoint::remove(store, "student-0", &keys[0]);
}
