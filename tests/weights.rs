//! A trained teacher used as it is (`[teacher] epochs = 0`): state dicts saved by PyTorch
//! (tests/fixtures/make_state_dict.py) give kd-sweep's networks PyTorch's logits, and sweeps with a
//! weights file or a TorchScript file's own weights evaluate the teacher, never train it, and key it
//! by the file's content.

mod common;

use common::{csv_rows, text, Case};
use kd_sweep::model::weights::{pytorch_name, Weights};
use kd_sweep::model::{Arch, Init, Net};
use std::path::Path;
use std::process::Command;
use tch::{nn, Device, Tensor};

/// Runs the fixture script into `out`; `None` without a Python with torch.
fn pytorch_files(out: &Path) -> Option<()> {
    let python = kd_sweep::tools::bench::reference_python(None)?;
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_state_dict.py");
    let status = Command::new(python).arg(maker).arg(out).status().unwrap();
    assert!(status.success(), "make_state_dict.py failed");
    Some(())
}

/// kd-sweep's network `arch` with `file`'s weights: its logits in eval mode on `x`.
fn logits_of(arch: Arch, shape: [i64; 3], file: &Weights, x: &Tensor) -> Tensor {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), arch, shape, 10, Init::default());
    file.load_into(&vs, arch, 10)
        .unwrap_or_else(|e| panic!("{}: {e}", arch.name()));
    let _guard = tch::no_grad_guard();
    net.forward_t(x, false)
}

#[test]
fn pytorch_state_dicts_give_kd_sweep_s_networks_pytorch_s_logits() {
    let dir = tempfile::tempdir().unwrap();
    if pytorch_files(dir.path()).is_none() {
        return common::skip_without_pytorch();
    }
    let expected: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("expected.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let open = |f: &str| Weights::open(f, dir.path()).unwrap();
    let nets = [
        ("resnet8", [3, 32, 32]),
        ("wrn-16-2", [3, 32, 32]),
        ("vgg8", [3, 32, 32]),
        ("tutorial-teacher", [1, 28, 28]),
    ];
    let mut files = Vec::new();
    for (name, shape) in nets {
        for ext in ["pt", "safetensors"] {
            files.push((name, shape, format!("{name}.{ext}")));
        }
    }
    for variant in ["ckpt.pth", "dp.pt", "views.pt", "f64.pt"] {
        files.push(("resnet8", [3, 32, 32], format!("resnet8-{variant}")));
    }
    for (name, shape, file) in &files {
        let arch = Arch::parse(name).unwrap();
        let x = &expected[&format!("{name}.x")];
        let want = &expected[&format!("{name}.logits")];
        let got = logits_of(arch, *shape, &open(file), x);
        let diff = (&got - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale.max(1.0),
            "{file}: logits differ from PyTorch's by {diff} (largest {scale})"
        );
    }
    // PyTorch's names are the zoo's for resnet8; RepDistiller's VGG and the tutorial's are mapped
    let r8 = Arch::parse("resnet8").unwrap();
    assert_eq!(
        pytorch_name(r8, "layer1.0.bn1.running_var"),
        "layer1.0.bn1.running_var"
    );
    // a file of another network, or for another number of classes, says what does not fit
    let e = open("resnet8.pt")
        .check(Arch::parse("resnet14").unwrap(), [3, 32, 32], 10)
        .unwrap_err();
    assert!(
        e.contains("missing from the file: layer1.1.bn1.bias"),
        "{e}"
    );
    let e = open("resnet8-ckpt.pth")
        .check(r8, [3, 32, 32], 100)
        .unwrap_err();
    assert!(
        e.contains("fc.weight: file has [10, 64], resnet8 expects [100, 64]"),
        "{e}"
    );
    let e = open("vgg8.pt").check(r8, [3, 32, 32], 10).unwrap_err();
    assert!(
        e.contains("in the file but not in the network: block0.0.bias"),
        "{e}"
    );
}

/// A resnet8 for MNIST's 1×28×28 images and 10 classes, initialised from `seed`, saved with
/// PyTorch's names as a safetensors file at `path`.
fn resnet8_weights(path: &Path, seed: i64) {
    tch::manual_seed(seed);
    let arch = Arch::parse("resnet8").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Net::new(&vs.root(), arch, [1, 28, 28], 10, Init::default());
    let named: Vec<(String, Tensor)> = (vs.variables().into_iter())
        .map(|(n, t)| (pytorch_name(arch, &n), t))
        .collect();
    Tensor::write_safetensors(&named, path).unwrap();
}

fn body(teacher: &str, lr: &str) -> String {
    format!(
        "seeds = [0]\n[data]\ndataset = \"mnist\"\npath = \"data\"\nvalidation = 40\n\
         [teacher]\n{teacher}\nepochs = 0\nbatch_size = 16\nlr = {lr}\n\
         [student]\nepochs = 2\nbatch_size = 16\nlr = 0.005\n\
         [grid]\ntemperature = [4]\nalpha = [0.5]\nmethod = [\"logit\", \"feature\"]\n"
    )
}

/// The test accuracy of the sweep's teacher as loaded, computed in this process.
fn teacher_test_accuracy(sweep: &Path) -> f64 {
    let s = kd_sweep::config::load(sweep).unwrap();
    let raw = kd_sweep::data::read(s.data.dataset, &s.data.path).unwrap();
    let data = kd_sweep::data::Dataset::from_raw(&raw, &s.data, Device::Cpu);
    let arch = s.teacher.model.unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::try_new(
        &vs.root(),
        arch,
        data.shape,
        data.classes,
        s.teacher.init,
        None,
    )
    .unwrap();
    if let Some(w) = &s.teacher.weights {
        w.load_into(&vs, arch, data.classes).unwrap();
    }
    kd_sweep::train::accuracy(&net, &data.test_x, &data.test_y)
}

/// The sweep's teacher and students: the teacher evaluated (no epochs, its accuracies recorded and
/// those of its network as loaded), the students trained for 2 epochs.
fn check_outputs(c: &Case, sweep: &Path) {
    let dir = c.path("out/w");
    let runs = csv_rows(&dir.join("runs.csv"));
    assert_eq!(
        runs.len(),
        4,
        "teacher, baseline, logit and feature students"
    );
    let teacher = runs.iter().find(|r| r["role"] == "teacher").unwrap();
    assert_eq!(
        (teacher["epochs"].as_str(), teacher["best_epoch"].as_str()),
        ("0", "0")
    );
    assert!(!teacher["val_acc"].is_empty(), "{teacher:?}");
    let test: f64 = teacher["test_acc"].parse().unwrap();
    let mine = teacher_test_accuracy(sweep);
    assert!(
        (test - mine).abs() < 1e-9,
        "recorded {test}, as loaded {mine}"
    );
    for r in runs.iter().filter(|r| r["role"] != "teacher") {
        assert_eq!(
            (r["status"].as_str(), r["epochs"].as_str()),
            ("done", "2"),
            "{r:?}"
        );
    }
    let epochs = csv_rows(&dir.join("epochs.csv"));
    assert!(
        epochs.iter().all(|e| e["role"] != "teacher"),
        "a teacher used as it is has no epochs"
    );
    assert_eq!(epochs.len(), 3 * 2);
    // the teacher's newest record (a rerun with other weights leaves the first one beside it)
    let record = (std::fs::read_dir(dir.join("records")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("teacher-s0")
        })
        .map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap())
        .max_by_key(|r| r["finished_at"].as_u64())
        .unwrap();
    assert_eq!(record["epochs"], 0);
    assert_eq!(record["history"], serde_json::json!([]));
    assert_eq!(record["test_acc_at_best"], record["test_acc"]);
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_teacher_with_weights_is_evaluated_not_trained_and_keyed_by_their_content() {
    let c = Case::new(240, 80);
    std::fs::create_dir_all(c.path("nets")).unwrap();
    resnet8_weights(&c.path("nets/t.safetensors"), 1);
    let teacher = |file: &str| format!("model = \"resnet8\"\nweights = \"{file}\"");
    let s = c.sweep("w", &body(&teacher("nets/t.safetensors"), "0.01"));
    let plan = c.run(&["plan", s.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan));
    let said = String::from_utf8_lossy(&plan.stdout);
    assert!(
        said.contains("teacher used as it is: weights of ")
            && said.contains("t.safetensors (sha256 "),
        "{said}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("teacher-s0 evaluated as loaded in "),
        "{}",
        text(&o)
    );
    check_outputs(&c, &s);

    // moved, and lr edited (not used): same keys, nothing runs again
    std::fs::rename(c.path("nets"), c.path("moved")).unwrap();
    let s = c.sweep("w", &body(&teacher("moved/t.safetensors"), "0.5"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("4 runs (4 already done)"),
        "{}",
        text(&o)
    );

    // other weights: the teacher and its students run again, the baseline does not
    resnet8_weights(&c.path("moved/t.safetensors"), 2);
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("4 runs (1 already done)"),
        "{}",
        text(&o)
    );
    check_outputs(&c, &s);
}

#[test]
fn a_torchscript_teacher_as_saved_with_no_epochs_is_evaluated_not_trained() {
    let c = Case::new(240, 80);
    std::fs::create_dir_all(c.path("nets")).unwrap();
    if common::scripted(&c.path("nets/teacher.pt"), "wide", 1, 10, 1).is_none() {
        return common::skip_without_pytorch();
    }
    let teacher = "model = \"torchscript:nets/teacher.pt\"\ninit = \"as-saved\"";
    let s = c.sweep("w", &body(teacher, "0.01"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    check_outputs(&c, &s);
    // without as-saved, epochs = 0 is refused: it would evaluate a network re-initialised at random
    let s = c.sweep(
        "w",
        &body("model = \"torchscript:nets/teacher.pt\"", "0.01"),
    );
    let o = c.run(&["plan", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("epochs = 0 uses a TorchScript file's own weights as they are"),
        "{}",
        text(&o)
    );
}

/// `[data] mean/std` are torchvision's `Normalize`: a teacher trained and saved in PyTorch on
/// `ToTensor()` + `Normalize(mean, std)` inputs (tests/fixtures/normalized_teacher.py), loaded with
/// `epochs = 0` and the same mean and std, classifies exactly as many test images correctly as it did
/// in PyTorch. Without them (the training images' own statistics) it does not: the file's mean and std
/// are far from those.
#[test]
fn a_pytorch_teacher_normalized_as_in_pytorch_gets_pytorch_s_test_accuracy() {
    common::portable_numerics();
    let Some(python) = kd_sweep::tools::bench::reference_python(None) else {
        common::skip_without_pytorch();
        return;
    };
    let c = Case::new(10, 10);
    let out = c.path("pt");
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/normalized_teacher.py");
    let status = Command::new(python).arg(script).arg(&out).status().unwrap();
    assert!(status.success(), "normalized_teacher.py failed");
    let said: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pytorch.json")).unwrap()).unwrap();
    let (correct, n) = (
        said["correct"].as_u64().unwrap(),
        said["n_test"].as_u64().unwrap(),
    );
    let sweep = |name: &str, normalize: &str| {
        c.sweep(
            name,
            &format!(
                "seeds = [0]\n[data]\ndataset = \"tensors\"\npath = \"pt/data.safetensors\"\n\
                 validation = 40\n{normalize}\n\
                 [teacher]\nmodel = \"tutorial-teacher\"\nweights = \"pt/teacher.pt\"\nepochs = 0\n\
                 batch_size = 16\nlr = 0.001\n\
                 [student]\nepochs = 1\nbatch_size = 32\nlr = 0.001\n\
                 [grid]\ntemperature = [4]\nalpha = [0.5]\nbaseline = false\n"
            ),
        )
    };
    let teacher_correct = |s: &Path, name: &str| {
        let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
        assert!(o.status.success(), "{}", text(&o));
        let rows = csv_rows(&c.path(&format!("out/{name}/runs.csv")));
        let t = rows.iter().find(|r| r["role"] == "teacher").unwrap();
        let acc: f64 = t["test_acc"].parse().unwrap();
        acc * n as f64 / 100.0
    };
    let given = teacher_correct(&sweep("given", "mean = [0.7]\nstd = [0.2]"), "given");
    // runs.csv has two decimals: a count off by one image would be 1.0 away
    assert!(
        (given - correct as f64).abs() < 0.05,
        "kd-sweep: {given} of {n} test images right, PyTorch: {correct}"
    );
    let own = teacher_correct(&sweep("own", ""), "own");
    assert!(
        (own - correct as f64).abs() > 0.5,
        "the training images' statistics gave PyTorch's count too ({own}): the test shows nothing"
    );
}
