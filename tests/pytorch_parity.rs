//! kd-sweep trains exactly as PyTorch does. For a teacher, a baseline and a distilled student
//! (T = 4, α = 0.5): kd-sweep's `train::fit` trains from its own initialisation in its own batch order;
//! `bench/pytorch_replay.py` (plain PyTorch from the project's torch wheel: `nn.Sequential`,
//! `torch.optim.Adam`, `nn.Dropout`, the tutorial's loss) trains the same network from the same
//! initial weights, with torch's generator seeded by each step's seed, on the same batches. Every
//! step's loss, the final weights and the evaluation-mode logits must agree to 1e-5 relative (CPU, one
//! thread). The same for a network a user scripted (TorchScript, with batch norm): PyTorch trains the
//! file itself from kd-sweep's re-initialised weights.
//!
//! Also checked here: the initial weights follow PyTorch's default rule (uniform in ±1/√fan_in for
//! weights and biases), which the replay cannot see (it starts from kd-sweep's draw).

mod common;

use kd_sweep::data::Dataset;
use kd_sweep::distill::{Coord, Distiller, Fixed, GridValue, Method};
use kd_sweep::model::{Arch, Init};
use kd_sweep::train::optim::{Algorithm, Recipe, Schedule};
use kd_sweep::train::{self, Precision, RunSettings, Source};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

const CLASSES: i64 = 10;

/// libtorch's generator is process-wide; the tests of this file take turns with it.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Parameters in the order of the PyTorch `nn.Sequential` (layer by layer, weight then bias), or of
/// a TorchScript module's `parameters()`.
fn ordered(vs: &nn::VarStore, arch: Arch) -> Vec<(String, Tensor)> {
    let vars = vs.variables();
    if let Some(script) = arch.script() {
        let module = script.load(Device::Cpu).unwrap();
        return module
            .named_parameters()
            .unwrap()
            .into_iter()
            .map(|(n, _)| {
                let t = vars[&n.replace('.', "_")].detach().copy();
                (n, t)
            })
            .collect();
    }
    let convs = match arch {
        Arch::Teacher => 4,
        Arch::Student => 2,
        // a zoo network: bench/cifar_nets.py's twin has kd-sweep's names, matched by name
        _ => {
            let mut named: Vec<(String, Tensor)> = vars
                .iter()
                .filter(|(_, t)| t.requires_grad())
                .map(|(n, t)| (n.clone(), t.detach().copy()))
                .collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            return named;
        }
    };
    let layers = (1..=convs)
        .map(|i| format!("conv{i}"))
        .chain(["fc1".into(), "fc2".into()]);
    layers
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .map(|n| {
            let t = vars[&n].detach().copy();
            (n, t)
        })
        .collect()
}

fn write_f32(path: &Path, tensors: &[&Tensor]) {
    let mut bytes = Vec::new();
    for t in tensors {
        let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap();
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

fn write_i64(path: &Path, values: &[i64]) {
    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// ‖a − b‖ / ‖b‖.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-12)
}

fn tiny_data(dir: &Path) -> Dataset {
    common::mnist_dataset(dir, 400, 20, 80, 11)
}

/// The zoo's networks (resnet20: 20 layers where the tutorial's have 3) replay on fewer images: 224,
/// 7 steps an epoch (21 in their 3 epochs, `compare`'s least), random labels and teacher logits as
/// `tiny_data`'s cases have.
fn zoo_data(dir: &Path) -> (Dataset, Tensor) {
    let dir = dir.join("zoo");
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = common::mnist_dataset(&dir, 304, 20, 80, 11);
    tch::manual_seed(22);
    data.train_y = Tensor::randint(CLASSES, [data.n_train()], (Kind::Int64, Device::Cpu));
    let logits = Tensor::randn([data.n_train(), CLASSES], (Kind::Float, Device::Cpu)) * 3.0;
    (data, logits)
}

struct Case {
    name: &'static str,
    arch: Arch,
    stream: &'static str,
    temperature: f64,
    alpha: f64,
    /// The optimizer and schedule (3 epochs when not the default, 2 otherwise).
    recipe: Recipe,
    /// kd-sweep's precision, and the replay's (the same, but for the test that they differ).
    precision: Precision,
    replay: Precision,
    /// Convolutions channels-last (`channels_last = true`; the replay's network and inputs in
    /// `torch.channels_last`).
    channels_last: bool,
    /// The learning rate (Adam's 1e-3, or the CRD recipe's SGD rate).
    lr: f64,
    /// Another distillation method than logit KD at (temperature, alpha), with the sweep's fixed
    /// settings: PyTorch trains with bench/kd_losses.py's loss.
    method: Option<(Coord, Fixed)>,
    /// ε of every cross-entropy term (`F.cross_entropy(label_smoothing=ε)` in the replay).
    label_smoothing: f64,
}

/// A case kd-sweep has trained, with the files the replay reads written beside it.
struct Trained<'a> {
    case: &'a Case,
    data: &'a Dataset,
    dir: tempfile::TempDir,
    vs: nn::VarStore,
    net: kd_sweep::model::Net,
    init: Vec<(String, Tensor)>,
    step_losses: Vec<f64>,
    eval_rows: i64,
}

/// Trains each case in kd-sweep, then all of them in PyTorch in one process (torch's import takes
/// seconds, a replay a fraction of one), and compares each; returns every case's largest step-loss
/// and weight relative errors, in order.
fn compare_all(python: &Path, cases: &[(&Case, &Dataset, &Tensor)]) -> Vec<(f64, f64)> {
    let trained: Vec<Trained> = cases
        .iter()
        .map(|&(case, data, logits)| train_ours(data, logits, case))
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pytorch_replay.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(trained.iter().map(|t| t.dir.path()))
        .output()
        .unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c.0.name).collect();
    assert!(
        out.status.success(),
        "{names:?}: the PyTorch replay failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trained.iter().map(check).collect()
}

/// Trains `case` in kd-sweep and writes what the replay needs: the initial weights, the data, the
/// batch order, each step's seed and the teacher's logits.
fn train_ours<'a>(data: &'a Dataset, logits: &Tensor, case: &'a Case) -> Trained<'a> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = RunSettings {
        epochs: if case.recipe.is_default() { 2 } else { 3 },
        batch_size: 32,
        lr: case.lr,
        seed: 3,
        stream: case.stream,
        init: Init::Pytorch,
        recipe: case.recipe.clone(),
        augment: Default::default(),
        precision: case.precision,
        channels_last: case.channels_last,
        label_smoothing: case.label_smoothing,
    };
    let (vs, net) = train::init(case.arch, data, Device::Cpu, &s);
    let (coord, fixed) = case.method.clone().unwrap_or_else(|| {
        let v = |x: f64| GridValue::of(&x.to_string());
        (
            Coord::logit(v(case.temperature), v(case.alpha)),
            Fixed::default(),
        )
    });
    let mut distiller =
        Distiller::new(&coord, &fixed, s.epochs).with_label_smoothing(case.label_smoothing);
    // the method's own parameters (CTKD's θ) live beside the network's, as in a sweep
    distiller.build(&vs.root(), (0, 0), Init::Pytorch);
    let init = ordered(&vs, case.arch);
    let n = data.n_train();
    let steps_per_epoch = (n as usize).div_ceil(s.batch_size as usize);
    // the batch order fit takes: one permutation of the training rows per epoch from this stream
    let mut order = s.batch_order();
    let perms: Vec<i64> = (0..s.epochs)
        .flat_map(|_| order.permutation(n as usize))
        .map(|i| i as i64)
        .collect();
    let eval_rows = 64.min(n);
    let meta = serde_json::json!({
        "arch": match case.arch {
            Arch::Teacher => "teacher".to_string(),
            Arch::Script(_) => "torchscript".to_string(),
            Arch::Student => "student".to_string(),
            zoo => zoo.name(),
        },
        "precision": case.replay,
        "channels_last": case.channels_last,
        "script": case.arch.script().map(|s| s.path.clone()),
        "eval_rows": eval_rows,
        "shape": data.shape,
        "classes": CLASSES,
        "n_train": n,
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "recipe": s.recipe,
        // libtorch's generator is seeded before every step (train::RunSettings::step_seed)
        "step_seeds": (1..=s.epochs)
            .flat_map(|e| (0..steps_per_epoch).map(move |k| (e, k)))
            .map(|(e, k)| s.step_seed(e, k))
            .collect::<Vec<_>>(),
        "temperature": case.temperature,
        "alpha": case.alpha,
        "label_smoothing": case.label_smoothing,
        "method": case.method.as_ref().map(|(c, _)| c.method.name()),
        "method_params": common::method_params(&coord, &fixed),
        "params": init.iter().map(|(n, t)| serde_json::json!({"name": n, "shape": t.size()})).collect::<Vec<_>>(),
    });
    std::fs::write(d.join("meta.json"), meta.to_string()).unwrap();
    write_f32(
        &d.join("init.bin"),
        &init.iter().map(|(_, t)| t).collect::<Vec<_>>(),
    );
    write_f32(&d.join("train_x.bin"), &[&data.train_x]);
    write_i64(
        &d.join("train_y.bin"),
        &Vec::<i64>::try_from(&data.train_y).unwrap(),
    );
    write_i64(&d.join("order.bin"), &perms);
    write_f32(&d.join("teacher.bin"), &[logits]);

    // kd-sweep
    let signal = if case.alpha > 0.0 || case.method.is_some() {
        Source::Cached(logits)
    } else {
        Source::None
    };
    let fitted = train::fit(
        (&vs, &net),
        data,
        &s,
        (signal, &distiller),
        &mut train::Hooks::epochs(&mut |_| {}),
    )
    .unwrap();
    Trained {
        case,
        data,
        dir,
        vs,
        net,
        init,
        step_losses: fitted.step_losses,
        eval_rows,
    }
}

/// Compares a case kd-sweep trained with PyTorch's replay of it: every step's loss, the final
/// weights (each of which training moved), CTKD's θ and the evaluation-mode logits. Returns the
/// largest step-loss and weight relative errors.
fn check(t: &Trained) -> (f64, f64) {
    let Trained {
        case,
        data,
        vs,
        net,
        init,
        eval_rows,
        ..
    } = t;
    let d = t.dir.path();
    let steps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("steps.json")).unwrap()).unwrap();
    let theirs: Vec<f64> = steps["step_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ours = &t.step_losses;
    assert_eq!(ours.len(), theirs.len(), "{}: steps", case.name);
    assert!(ours.len() >= 20, "at least 20 steps compared");
    let mut worst_loss = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let e = (a - b).abs() / b.abs().max(1e-12);
        eprintln!(
            "{} step {:2}: kd-sweep {a:.7} PyTorch {b:.7} ({e:.1e})",
            case.name,
            i + 1
        );
        worst_loss = worst_loss.max(e);
    }
    let flat = Tensor::from_slice(&read_f32(&d.join("final.bin")));
    let mut at = 0;
    let mut worst_weight = 0.0f64;
    for (name, w) in ordered(vs, case.arch) {
        let len = w.numel() as i64;
        let theirs = flat.narrow(0, at, len).view(w.size().as_slice());
        at += len;
        let e = rel_err(&w, &theirs);
        eprintln!("{} final {name}: {e:.1e}", case.name);
        worst_weight = worst_weight.max(e);
        // and training moved it: agreement is not agreement of two untouched tensors
        let start = &init.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(
            rel_err(&w, start) > 1e-4,
            "{}: {name} did not move",
            case.name
        );
    }
    assert_eq!(at, flat.numel() as i64);
    if let Some(theta) = vs.variables().get("ctkd_theta") {
        // CTKD's temperature parameter learned as PyTorch's did, and it did learn
        let ours = theta.double_value(&[0]);
        let theirs = steps["theta"].as_f64().unwrap();
        let e = (ours - theirs).abs() / theirs.abs();
        eprintln!(
            "{} final θ: {ours:.7} (PyTorch {theirs:.7}, {e:.1e})",
            case.name
        );
        assert!((ours - 1.0).abs() > 1e-4, "{}: θ did not move", case.name);
        worst_weight = worst_weight.max(e);
    }
    // evaluation mode after training: the same logits (batch norm's running statistics included)
    let ours = train::logits(net, &data.train_x.narrow(0, 0, *eval_rows));
    let theirs = Tensor::from_slice(&read_f32(&d.join("eval.bin"))).view(ours.size().as_slice());
    let e = rel_err(&ours, &theirs);
    eprintln!("{} evaluation-mode logits: {e:.1e}", case.name);
    worst_weight = worst_weight.max(e);
    (worst_loss, worst_weight)
}

/// The CRD recipe's teacher step on a zoo network with batch norm.
fn resnet20_sgd() -> Case {
    Case {
        name: "resnet20, SGD momentum weight decay",
        arch: Arch::parse("resnet20").unwrap(),
        stream: train::TEACHER_STREAM,
        temperature: 1.0,
        alpha: 0.0,
        recipe: Recipe {
            optimizer: Algorithm::Sgd,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Multistep,
            milestones: vec![2],
            ..Recipe::default()
        },
        precision: Precision::Fp32,
        replay: Precision::Fp32,
        channels_last: false,
        lr: 0.05,
        method: None,
        label_smoothing: 0.0,
    }
}

#[test]
fn kd_sweep_trains_exactly_as_pytorch_does() {
    common::portable_numerics();
    if kd_sweep::platform::numerics::portable_available().is_ok() {
        // both sides on ATen's, oneDNN's and MKL's AVX2 kernels, whatever this CPU is
        kd_sweep::platform::numerics::check_in_effect(
            kd_sweep::platform::numerics::Numerics::Portable,
        )
        .unwrap();
    }
    let Some(python) = kd_sweep::tools::bench::reference_python(None) else {
        eprintln!(
            "SKIPPED: no Python with torch beside this libtorch (LIBTORCH is not the pip wheel of \
             `make setup`); the comparison needs PyTorch itself"
        );
        return;
    };
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut data = tiny_data(dir.path());
    tch::manual_seed(21);
    // random labels: the synthetic classes are so easy that the loss reaches 1e-6 within 20 steps,
    // where float32's rounding of log(1 − ε) dominates; random labels keep every step's loss near
    // ln 10 and its gradients large, so differences would compound rather than vanish
    data.train_y = Tensor::randint(CLASSES, [data.n_train()], (Kind::Int64, Device::Cpu));
    let logits = Tensor::randn([data.n_train(), CLASSES], (Kind::Float, Device::Cpu)) * 3.0;
    let cases = [
        Case {
            name: "teacher",
            arch: Arch::Teacher,
            stream: train::TEACHER_STREAM,
            temperature: 1.0,
            alpha: 0.0,
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
        Case {
            name: "baseline",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 1.0,
            alpha: 0.0,
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
        Case {
            name: "student T=4 α=0.5",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 4.0,
            alpha: 0.5,
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
        // label smoothing (ε = 0.1) in a teacher's cross-entropy and in a student's KD loss
        // (label smoothing on the cross-entropy alone: the baseline's; the teacher's loss is the same
        // function, losses::ce, on a network 20 times larger)
        Case {
            name: "baseline ε=0.1",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 1.0,
            alpha: 0.0,
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.1,
        },
        Case {
            name: "student T=4 α=0.5 ε=0.1",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 4.0,
            alpha: 0.5,
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.1,
        },
        // the CRD recipe's parts: SGD with Nesterov momentum and weight decay, a multistep schedule;
        // Adam with weight decay after a warm-up into a cosine schedule
        Case {
            name: "student, SGD multistep",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 4.0,
            alpha: 0.9,
            recipe: Recipe {
                optimizer: Algorithm::Sgd,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 5e-4,
                schedule: Schedule::Multistep,
                milestones: vec![1, 2],
                gamma: 0.5,
                warmup_epochs: 0,
            },
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
        Case {
            name: "baseline, Adam warm-up cosine",
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: 1.0,
            alpha: 0.0,
            recipe: Recipe {
                weight_decay: 1e-3,
                schedule: Schedule::Cosine,
                warmup_epochs: 1,
                ..Recipe::default()
            },
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
        // a zoo network with batch norm (64 parameter tensors in one flat buffer): the CRD
        // recipe's SGD with momentum and weight decay, and Adam as a distilled student
        resnet20_sgd(),
        // the same in the channels-last layout on both sides (kd-sweep's channels_last = true
        // against `model.to(memory_format=torch.channels_last)` and channels-last batches)
        Case {
            name: "resnet20 channels-last, SGD momentum weight decay",
            channels_last: true,
            ..resnet20_sgd()
        },
        // distilled zoo students, T = 4, α = 0.5: batch norm's biases start at 0, so under SGD they
        // take any difference in the KD term's gradient whole, and under Adam a 1e-7 difference flips
        // the sign of near-zero gradients; both grow to 1e-3 within 20 steps unless kd-sweep writes
        // the term as the tutorial (and the replay) does, op for op
        Case {
            name: "resnet8 student T=4 α=0.5, SGD momentum weight decay",
            arch: Arch::parse("resnet8").unwrap(),
            stream: train::STUDENT_STREAM,
            temperature: 4.0,
            alpha: 0.5,
            ..resnet20_sgd()
        },
        Case {
            name: "resnet20 student T=4 α=0.5, Adam weight decay",
            arch: Arch::parse("resnet20").unwrap(),
            stream: train::STUDENT_STREAM,
            temperature: 4.0,
            alpha: 0.5,
            recipe: Recipe {
                weight_decay: 5e-4,
                ..Recipe::default()
            },
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: None,
            label_smoothing: 0.0,
        },
    ];
    // a user's own network: conv-batchnorm blocks scripted by PyTorch, re-initialised by kd-sweep
    let script = common::scripted(&dir.path().join("bn.pt"), "bn", 1, CLASSES, 5).unwrap();
    let base = script.parent().unwrap();
    let name = format!("torchscript:{}", script.display());
    let scripted = Case {
        name: "TorchScript student T=4 α=0.5",
        arch: Arch::parse_in(&name, base).unwrap(),
        stream: train::STUDENT_STREAM,
        temperature: 4.0,
        alpha: 0.5,
        recipe: Recipe::default(),
        precision: Precision::Fp32,
        replay: Precision::Fp32,
        channels_last: false,
        lr: 1e-3,
        method: None,
        label_smoothing: 0.0,
    };
    let zoo = zoo_data(dir.path());
    let all: Vec<_> = cases
        .iter()
        .chain([&scripted])
        .map(|case| match case.name.starts_with("resnet") {
            true => (case, &zoo.0, &zoo.1),
            false => (case, &data, &logits),
        })
        .collect();
    for (&(case, ..), (loss, weights)) in all.iter().zip(compare_all(&python, &all)) {
        eprintln!(
            "{}: largest relative difference: step loss {loss:.1e}, final weights {weights:.1e}",
            case.name
        );
        assert!(loss < 1e-5, "{}: step losses differ by {loss:e}", case.name);
        assert!(
            weights < 1e-5,
            "{}: final weights differ by {weights:e}",
            case.name
        );
    }
}

/// Each distillation method trains as PyTorch does with the method's loss written from its paper
/// (bench/kd_losses.py; tests/methods_parity.rs checks one step's loss and gradient): a student for
/// two epochs, every step's loss and the final weights to 1e-5 relative. DKD warms up across the
/// run, CTKD's λ ramps and its θ is trained by the same Adam.
#[test]
fn each_method_trains_as_pytorch_does() {
    common::portable_numerics();
    let Some(python) = kd_sweep::tools::bench::reference_python(None) else {
        common::skip_without_pytorch();
        return;
    };
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut data = tiny_data(dir.path());
    tch::manual_seed(21);
    data.train_y = Tensor::randint(CLASSES, [data.n_train()], (Kind::Int64, Device::Cpu));
    let logits = Tensor::randn([data.n_train(), CLASSES], (Kind::Float, Device::Cpu)) * 3.0;
    let g = |v: &str| Some(GridValue::of(v));
    let fixed = Fixed {
        dkd_warmup: 2,
        ctkd_ramp: 2,
        ..Fixed::default()
    };
    let methods = [
        (
            "logit KD, z-score",
            Coord {
                zscore: true,
                ..Coord::logit(GridValue::of("2"), GridValue::of("0.9"))
            },
        ),
        (
            "DKD",
            Coord {
                temperature: g("4"),
                alpha: g("1"),
                beta: g("8"),
                ..Coord::of(Method::Dkd)
            },
        ),
        (
            "DIST",
            Coord {
                temperature: g("4"),
                beta: g("1"),
                gamma: g("1"),
                ..Coord::of(Method::Dist)
            },
        ),
        (
            "multi-T",
            Coord {
                temperatures: ["2", "4", "6"].map(GridValue::of).to_vec(),
                alpha: g("0.9"),
                ..Coord::of(Method::MultiT)
            },
        ),
        (
            "CTKD",
            Coord {
                alpha: g("0.9"),
                ..Coord::of(Method::Ctkd)
            },
        ),
        (
            "TTM",
            Coord {
                temperature: g("4"),
                beta: g("3"),
                ..Coord::of(Method::Ttm)
            },
        ),
    ];
    // and one with the cross-entropy label-smoothed (every method takes its CE term from one place):
    // DIST, whose replay agrees bit for bit without smoothing, so any difference is the CE term's.
    let smoothed = ("DIST ε=0.1", methods[2].1.clone(), 0.1);
    assert_eq!(methods[2].0, "DIST");
    let cases: Vec<Case> = methods
        .into_iter()
        .map(|(n, c)| (n, c, 0.0))
        .chain([smoothed])
        .map(|(name, coord, label_smoothing)| Case {
            name,
            arch: Arch::Student,
            stream: train::STUDENT_STREAM,
            temperature: coord.temperature_value(),
            alpha: coord.alpha_value(),
            recipe: Recipe::default(),
            precision: Precision::Fp32,
            replay: Precision::Fp32,
            channels_last: false,
            lr: 1e-3,
            method: Some((coord, fixed.clone())),
            label_smoothing,
        })
        .collect();
    let all: Vec<_> = cases.iter().map(|c| (c, &data, &logits)).collect();
    for (case, (loss, weights)) in cases.iter().zip(compare_all(&python, &all)) {
        let name = case.name;
        eprintln!("{name}: largest relative difference: step loss {loss:.1e}, final weights {weights:.1e}");
        assert!(loss < 1e-5, "{name}: step losses differ by {loss:e}");
        assert!(
            weights < 1e-5,
            "{name}: final weights differ by {weights:e}"
        );
    }
}

/// `precision = "bf16"` is `torch.autocast("cpu", dtype=torch.bfloat16)` around the forward pass,
/// with the loss on the logits cast to float32 (dropout's mask in the activation's type, bf16, as
/// `nn.Dropout` draws it there). Both sides run the same bf16 kernels in the same order, so the
/// tolerance is float32's, 1e-5 — far below bf16's own resolution (2⁻⁸ ≈ 4e-3 per rounding): a
/// product rounded differently, a mask scaled in float32, or a loss kept in bf16 would miss it. And
/// it is not met by accident: the same student trained in float32 ends 1e-3 or more away.
#[test]
fn bf16_trains_as_pytorch_autocast_does() {
    common::portable_numerics();
    let Some(python) = kd_sweep::tools::bench::reference_python(None) else {
        common::skip_without_pytorch();
        return;
    };
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut data = tiny_data(dir.path());
    tch::manual_seed(21);
    data.train_y = Tensor::randint(CLASSES, [data.n_train()], (Kind::Int64, Device::Cpu));
    let logits = Tensor::randn([data.n_train(), CLASSES], (Kind::Float, Device::Cpu)) * 3.0;
    let zoo = zoo_data(dir.path());
    let case = |name, arch, recipe: Recipe, replay| Case {
        name,
        arch,
        stream: train::STUDENT_STREAM,
        temperature: 4.0,
        alpha: 0.5,
        lr: if recipe.optimizer == Algorithm::Sgd {
            0.05
        } else {
            1e-3
        },
        recipe,
        precision: Precision::Bf16,
        replay,
        channels_last: false,
        method: None,
        label_smoothing: 0.0,
    };
    let sgd = Recipe {
        optimizer: Algorithm::Sgd,
        momentum: 0.9,
        weight_decay: 5e-4,
        ..Recipe::default()
    };
    let student = "student T=4 α=0.5, bf16";
    let cases = [
        case(student, Arch::Student, Recipe::default(), Precision::Bf16),
        case(
            "resnet20 student T=4 α=0.5, bf16, SGD",
            Arch::parse("resnet20").unwrap(),
            sgd,
            Precision::Bf16,
        ),
        // the same student replayed in float32: where the tolerance would be met by accident
        case(student, Arch::Student, Recipe::default(), Precision::Fp32),
    ];
    let all: Vec<_> = cases
        .iter()
        .map(|c| match c.arch == Arch::Student {
            true => (c, &data, &logits),
            false => (c, &zoo.0, &zoo.1),
        })
        .collect();
    let results = compare_all(&python, &all);
    for (case, &(loss, weights)) in cases.iter().zip(&results).take(2) {
        let name = case.name;
        eprintln!("{name}: largest relative difference: step loss {loss:.1e}, final weights {weights:.1e}");
        assert!(loss < 1e-5, "{name}: step losses differ by {loss:e}");
        assert!(
            weights < 1e-5,
            "{name}: final weights differ by {weights:e}"
        );
    }
    let apart = results[2].1;
    eprintln!("{student}: against PyTorch in float32, final weights {apart:.1e}");
    assert!(
        apart > 1e-3,
        "bf16 and float32 runs barely differ ({apart:e})"
    );
}

#[test]
fn initial_weights_follow_pytorchs_default_rule() {
    common::portable_numerics();
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    for (init, conv_bias_zero, gain) in [
        (Init::Pytorch, false, 1.0),
        (Init::Kaiming, true, 6f64.sqrt()),
    ] {
        let s = RunSettings {
            epochs: 1,
            batch_size: 32,
            lr: 1e-3,
            seed: 0,
            stream: train::TEACHER_STREAM,
            init,
            recipe: Default::default(),
            augment: Default::default(),
            precision: Default::default(),
            channels_last: false,
            label_smoothing: 0.0,
        };
        let (vs, _) = train::init(Arch::Teacher, &data, Device::Cpu, &s);
        for (name, t) in ordered(&vs, Arch::Teacher) {
            let size = t.size();
            let fan_in: i64 = if name.ends_with(".bias") {
                // a bias's bound is the one of its layer's weight
                let w = &vs.variables()[&name.replace(".bias", ".weight")];
                w.size()[1..].iter().product()
            } else {
                size[1..].iter().product()
            };
            let is_bias = name.ends_with(".bias");
            let bound = if is_bias { 1.0 } else { gain } / (fan_in as f64).sqrt();
            let max = t.abs().max().double_value(&[]);
            if is_bias && conv_bias_zero && name.starts_with("conv") {
                assert_eq!(max, 0.0, "{init:?} {name}: zero");
                continue;
            }
            // (the bound is exact in f64; the drawn f32 may round up by half an ulp)
            assert!(
                max <= bound * (1.0 + 1e-6),
                "{init:?} {name}: |w| ≤ {bound}, got {max}"
            );
            if t.numel() >= 500 {
                // uniform on ±bound: standard deviation bound/√3, and it uses the whole range
                let std = t.std(true).double_value(&[]);
                let want = bound / 3f64.sqrt();
                assert!(
                    (std / want - 1.0).abs() < 0.1,
                    "{init:?} {name}: std {std} vs {want}"
                );
                assert!(max > 0.95 * bound, "{init:?} {name}: max {max} of {bound}");
            }
        }
    }
}
