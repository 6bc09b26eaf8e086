//! Bring-your-own networks: modules scripted by PyTorch (tests/fixtures/make_torchscript.py) as
//! teacher and student of a sweep, their keys (by content, not path), their initialisation rules, and
//! the sweep-file errors about them. Training parity with PyTorch itself is in pytorch_parity.rs; an
//! exact continuation from a checkpoint (batch norm's buffers included) in checkpoints.rs.

mod common;

use common::{csv_rows, records_without_clock, text, Case};
use kd_sweep::config;
use kd_sweep::model::{Arch, Init};
use kd_sweep::train::{self, RunSettings};
use std::path::Path;
use tch::Device;

fn body(teacher: &str, student: &str, methods: &str) -> String {
    format!(
        "seeds = [0]\n[data]\ndataset = \"mnist\"\npath = \"data\"\nvalidation = 40\n\
         [teacher]\nmodel = \"{teacher}\"\nepochs = 3\nbatch_size = 16\nlr = 0.005\n\
         [student]\nmodel = \"{student}\"\nepochs = 3\nbatch_size = 16\nlr = 0.005\n\
         [grid]\ntemperature = [4]\nalpha = [0.5]\nmethod = {methods}\n"
    )
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn torchscript_teacher_and_student_train_in_a_sweep_keyed_by_their_content() {
    let c = Case::new(240, 80);
    std::fs::create_dir_all(c.path("nets")).unwrap();
    let (Some(_), Some(_)) = (
        common::scripted(&c.path("nets/teacher.pt"), "wide", 1, 10, 1),
        common::scripted(&c.path("nets/student.pt"), "bn", 1, 10, 2),
    ) else {
        return common::skip_without_pytorch();
    };
    let methods = "[\"logit\", \"feature\", \"imitation\"]";
    let s = c.sweep(
        "ts",
        &body(
            "torchscript:nets/teacher.pt",
            "torchscript:nets/student.pt",
            methods,
        ),
    );
    let plan = c.run(&["plan", s.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(
        out.contains("model student.pt") && out.contains("not counted for TorchScript"),
        "{out}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/ts");
    let runs = csv_rows(&dir.join("runs.csv"));
    assert_eq!(runs.len(), 5, "teacher, baseline, 3 students");
    let epochs = csv_rows(&dir.join("epochs.csv"));
    for r in &runs {
        assert_eq!(r["status"], "done", "{r:?}");
        // trained: the training loss fell from the first epoch to the last
        let loss = |e: &str| -> f64 {
            epochs
                .iter()
                .find(|x| x["run_id"] == r["run_id"] && x["epoch"] == e)
                .unwrap()["train_loss"]
                .parse()
                .unwrap()
        };
        assert!(loss("3") < loss("1"), "{}: loss did not fall", r["run_id"]);
        if r["role"] == "student" {
            assert_eq!(
                (r["teacher_model"].as_str(), r["student_model"].as_str()),
                ("teacher.pt", "student.pt")
            );
        }
    }
    let records = records_without_clock(&dir);

    // moved: same content, same keys — nothing trains again
    std::fs::rename(c.path("nets"), c.path("moved")).unwrap();
    let s = c.sweep(
        "ts",
        &body(
            "torchscript:moved/teacher.pt",
            "torchscript:moved/student.pt",
            methods,
        ),
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("5 runs (5 already done)"),
        "{}",
        text(&o)
    );

    // changed: another student file is another network — its runs train; the teacher is reused
    common::scripted(&c.path("moved/student.pt"), "bn", 1, 10, 3).unwrap();
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("5 runs (1 already done)"),
        "{}",
        text(&o)
    );
    assert_ne!(records_without_clock(&dir), records);
}

#[test]
fn a_file_changed_after_planning_fails_its_runs_with_a_clear_message() {
    let c = Case::new(120, 40);
    let Some(p) = common::scripted(&c.path("student.pt"), "plain", 1, 10, 1) else {
        return common::skip_without_pytorch();
    };
    let arch = Arch::parse_in("torchscript:student.pt", c.dir.path()).unwrap();
    common::scripted(&p, "plain", 1, 10, 2).unwrap();
    let data = common::mnist_dataset(&c.path("d"), 60, 10, 10, 1);
    let s = settings(0, Init::Pytorch);
    let e = train::try_init(arch, &data, Device::Cpu, &s, None).unwrap_err();
    assert!(
        e.contains("changed since the sweep was planned") && e.contains("student.pt"),
        "{e}"
    );
}

fn settings(seed: u64, init: Init) -> RunSettings {
    RunSettings {
        epochs: 1,
        batch_size: 16,
        lr: 1e-3,
        seed,
        stream: train::STUDENT_STREAM,
        init,
        recipe: Default::default(),
        augment: Default::default(),
        precision: Default::default(),
        channels_last: false,
        label_smoothing: 0.0,
    }
}

#[test]
fn each_seed_reinitialises_a_script_and_as_saved_keeps_the_files_weights() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = common::scripted(&dir.path().join("n.pt"), "plain", 1, 10, 7) else {
        return common::skip_without_pytorch();
    };
    let arch = Arch::parse_in(&format!("torchscript:{}", p.display()), dir.path()).unwrap();
    let mut by_name: Vec<(String, tch::Tensor)> = arch
        .script()
        .unwrap()
        .load(Device::Cpu)
        .unwrap()
        .named_parameters()
        .unwrap();
    let data = common::mnist_dataset(&dir.path().join("d"), 60, 10, 10, 1);
    let weights = |seed, init| {
        let (vs, _) =
            train::try_init(arch, &data, Device::Cpu, &settings(seed, init), None).unwrap();
        train::snapshot(&vs)
    };
    let same = |a: &[(String, tch::Tensor)], b: &[(String, tch::Tensor)]| {
        a.iter().zip(b).all(|((_, x), (_, y))| x.equal(y))
    };
    let (a, a2, b) = (
        weights(0, Init::Pytorch),
        weights(0, Init::Pytorch),
        weights(1, Init::Pytorch),
    );
    assert_eq!(a.len(), 4, "conv and fc, weight and bias: {a:?}");
    assert!(same(&a, &a2), "a seed gives the same weights");
    assert!(!same(&a, &b), "seeds give different weights");
    by_name.sort_by_key(|x| x.0.replace('.', "_"));
    assert!(!same(&a, &by_name), "re-initialised, not the file's");
    for seed in [0, 1] {
        assert!(
            same(&weights(seed, Init::AsSaved), &by_name),
            "as-saved: the file's weights (seed {seed})"
        );
    }
}

fn sweep_error(dir: &Path, body: &str) -> String {
    let text = format!("name = \"e\"\n{body}");
    config::parse(&text, &dir.join("e.toml"))
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn sweep_file_errors_name_the_file_and_what_it_must_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (Some(_), Some(_), Some(_), Some(_)) = (
        common::scripted(&d.join("plain.pt"), "plain", 1, 10, 1),
        common::scripted(&d.join("five.pt"), "bn", 1, 5, 1),
        common::scripted(&d.join("feats.pt"), "features-only", 1, 10, 1),
        common::scripted(&d.join("viewed.pt"), "viewed", 3, 10, 1),
    ) else {
        return common::skip_without_pytorch();
    };
    let logit = "[\"logit\"]";
    let cases = [
        (
            body("tutorial-teacher", "torchscript:missing.pt", logit),
            vec![
                "e.toml:",
                "`student.model`",
                "missing.pt",
                "relative to the sweep file",
            ],
        ),
        (
            body("tutorial-teacher", "torchscript:five.pt", logit),
            vec!["[2, 5]", "10 classes", "must return [2, 10]"],
        ),
        (
            body("tutorial-teacher", "torchscript:plain.pt", "[\"feature\"]"),
            vec!["`student.model`", "no features(x)", "@torch.jit.export"],
        ),
        (
            body("tutorial-teacher", "torchscript:feats.pt", "[\"feature\"]"),
            vec!["`student.model`", "no head(f)", "@torch.jit.export"],
        ),
        (
            body("torchscript:plain.pt", "tutorial-student", "[\"feature\"]"),
            vec!["`teacher.model`", "no features(x)"],
        ),
        (
            body("tutorial-teacher", "torchscript:plain.pt", logit)
                .replace("[student]\n", "[student]\ninit = \"kaiming\"\n"),
            vec!["`student.model`", "\"as-saved\""],
        ),
        (
            body("tutorial-teacher", "resnet8", logit)
                .replace("[student]\n", "[student]\ninit = \"as-saved\"\n"),
            vec!["`student.model`", "is not a TorchScript file"],
        ),
        (
            body("tutorial-teacher", "tutorial-student", logit)
                .replace("model = \"tutorial-teacher\"\n", "init = \"as-saved\"\n"),
            vec!["`teacher.init`", "torchscript:<file>"],
        ),
    ];
    // `kd-sweep models` of a network that cannot take the dataset's images says why (it listed 0
    // parameters), and how to list it for its own images
    let viewed_pt = format!("torchscript:{}", d.join("viewed.pt").display());
    let why =
        kd_sweep::model::listing::table("mnist", [1, 28, 28], 10, std::slice::from_ref(&viewed_pt))
            .unwrap_err();
    for want in [
        "forward fails on a batch of 1×28×28 images",
        "kd-sweep models --dataset",
    ] {
        assert!(why.contains(want), "{why}");
    }
    let listed = kd_sweep::model::listing::table("cifar10", [3, 32, 32], 10, &[viewed_pt]).unwrap();
    assert!(!listed.contains(" 0 "), "{listed}");
    // channels_last = true gives a network channels-last inputs: one that cannot take them is
    // stopped by plan, not by its first training step
    let viewed = body("tutorial-teacher", "torchscript:viewed.pt", logit)
        .replace("dataset = \"mnist\"", "dataset = \"cifar10\"");
    config::parse(&format!("name = \"e\"\n{viewed}"), &d.join("e.toml"))
        .expect("a .view() network runs in the default layout");
    let cases = cases.into_iter().chain([
        (
            viewed.replace("[student]\n", "[student]\nchannels_last = true\n"),
            vec!["`student.model`", "channels-last inputs", ".reshape()"],
        ),
        // a 3-channel network on 1-channel images: the interpreter's reason, not only that it failed
        (
            body("tutorial-teacher", "torchscript:viewed.pt", logit),
            vec!["`student.model`", "forward fails", "3 channels, but got 1"],
        ),
    ]);
    // a teacher needs only features(x) for feature distillation
    let teacher_ok = body("torchscript:feats.pt", "tutorial-student", "[\"feature\"]");
    let text = format!("name = \"e\"\n{teacher_ok}");
    config::parse(&text, &d.join("e.toml")).expect("a features-only teacher serves feature KD");
    for (body, wants) in cases {
        let e = sweep_error(d, &body);
        for w in wants {
            assert!(e.contains(w), "{w:?} missing from: {e}");
        }
        // a line:column position
        assert!(
            e.split(':')
                .nth(1)
                .is_some_and(|l| l.parse::<u32>().is_ok()),
            "{e}"
        );
    }
}
