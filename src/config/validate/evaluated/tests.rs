//! `[teacher] epochs = 0` and `weights`: each rule, on files in a temporary folder.

use crate::config::{parse, ConfigErrors, Sweep};
use crate::model::{Arch, Init, Net};
use std::path::Path;
use tch::{nn, Device, Tensor};

/// A sweep over Fashion-MNIST (1×28×28, 10 classes) with `teacher` as its [teacher] table.
fn text(teacher: &str) -> String {
    format!(
        "name = \"w\"\nseeds = [0]\n[data]\ndataset = \"fashion-mnist\"\n[teacher]\n{teacher}\n\
         [student]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n[grid]\ntemperature = [4]\nalpha = [0.5]\n"
    )
}

fn in_dir(dir: &Path, teacher: &str) -> Result<Sweep, ConfigErrors> {
    parse(&text(teacher), &dir.join("w.toml"))
}

/// A tutorial teacher's state dict for `classes` classes under PyTorch's names, as `file` in `dir`.
fn state_dict(dir: &Path, file: &str, classes: i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Net::new(
        &vs.root(),
        Arch::Teacher,
        [1, 28, 28],
        classes,
        Init::default(),
    );
    let named: Vec<(String, Tensor)> = (vs.variables().into_iter())
        .map(|(n, t)| (crate::model::weights::pytorch_name(Arch::Teacher, &n), t))
        .collect();
    Tensor::write_safetensors(&named, dir.join(file)).unwrap();
}

/// Each problem as `key: message`.
fn problems(e: ConfigErrors) -> Vec<String> {
    e.iter()
        .map(|e| format!("{}: {}", e.key.clone().unwrap_or_default(), e.message))
        .collect()
}

#[test]
fn a_teacher_with_weights_and_no_epochs_is_read_with_its_file_s_hash() {
    let dir = tempfile::tempdir().unwrap();
    state_dict(dir.path(), "t.safetensors", 10);
    let s = in_dir(
        dir.path(),
        "epochs = 0\nbatch_size = 8\nlr = 0.01\nweights = \"t.safetensors\"",
    )
    .unwrap();
    assert_eq!(s.teacher.epochs, 0);
    let w = s.teacher.weights.unwrap();
    assert_eq!(w.path, dir.path().join("t.safetensors"));
    assert_eq!(w.sha256.len(), 64);
    // a batch size larger than the data is no problem for a teacher that takes no steps
    assert!(s.teacher.batch_size > 0);
}

#[test]
fn no_epochs_needs_weights_and_refuses_what_only_training_reads() {
    let dir = tempfile::tempdir().unwrap();
    state_dict(dir.path(), "t.safetensors", 10);
    let e = problems(in_dir(dir.path(), "epochs = 0\nbatch_size = 8\nlr = 0.01").unwrap_err());
    assert!(
        e[0].starts_with("teacher.epochs: must be a whole number ≥ 1")
            && e[0].contains("add weights = \"<file>\""),
        "{e:?}"
    );
    let e = problems(
        in_dir(
            dir.path(),
            "epochs = 0\nbatch_size = 8\nlr = 0.01\nweights = \"t.safetensors\"\n\
             optimizer = \"sgd\"\nmomentum = 0.9\ninit = \"kaiming\"\naugment = \"crop-flip\"",
        )
        .unwrap_err(),
    );
    let keys: Vec<&str> = e.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "teacher.optimizer",
            "teacher.momentum",
            "teacher.init",
            "teacher.augment"
        ],
        "{e:?}"
    );
    assert!(e[0].contains("epochs = 0 trains nothing"), "{e:?}");
    assert!(e[2].contains("the weights are the file's"), "{e:?}");
}

#[test]
fn weights_are_the_teacher_s_key_for_a_kd_sweep_network_without_epochs() {
    let dir = tempfile::tempdir().unwrap();
    state_dict(dir.path(), "t.safetensors", 10);
    let e = problems(
        in_dir(
            dir.path(),
            "epochs = 2\nbatch_size = 8\nlr = 0.01\nweights = \"t.safetensors\"",
        )
        .unwrap_err(),
    );
    assert!(
        e[0].starts_with("teacher.weights: ") && e[0].contains("needs epochs = 0"),
        "{e:?}"
    );
    let student = text("epochs = 1\nbatch_size = 8\nlr = 0.01").replace(
        "[student]\nepochs = 1",
        "[student]\nweights = \"t.safetensors\"\nepochs = 1",
    );
    let e = problems(parse(&student, &dir.path().join("w.toml")).unwrap_err());
    assert!(
        e[0].starts_with("student.weights: is [teacher]'s key"),
        "{e:?}"
    );
    let e = problems(
        in_dir(
            dir.path(),
            "epochs = 0\nbatch_size = 8\nlr = 0.01\nmodel = \"torchscript:t.pt\"\n\
             init = \"as-saved\"\nweights = \"t.safetensors\"",
        )
        .unwrap_err(),
    );
    // advice that does not contradict itself: keep init (no problem with it), remove weights
    let weights = "teacher.weights: is for kd-sweep's own networks; a TorchScript file holds its \
                   weights, which init = \"as-saved\" uses: remove weights";
    assert!(
        e.iter().any(|p| p == weights) && !e.iter().any(|p| p.starts_with("teacher.init")),
        "{e:?}"
    );
}

#[test]
fn a_weights_file_that_is_missing_or_does_not_fit_is_named_with_its_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let table = |file: &str| format!("epochs = 0\nbatch_size = 8\nlr = 0.01\nweights = \"{file}\"");
    let e = problems(in_dir(dir.path(), &table("gone.pt")).unwrap_err());
    assert!(
        e[0].starts_with("teacher.weights: cannot read the weights file")
            && e[0].contains("gone.pt"),
        "{e:?}"
    );
    state_dict(dir.path(), "three.safetensors", 3);
    let e = problems(in_dir(dir.path(), &table("three.safetensors")).unwrap_err());
    assert!(
        e[0].contains("does not fit tutorial-teacher for 10 classes")
            && e[0].contains(
                "classifier.3.bias: file has [3], tutorial-teacher expects [10]; \
                 classifier.3.weight: file has [3, 512], tutorial-teacher expects [10, 512]"
            ),
        "{e:?}"
    );
    std::fs::write(dir.path().join("notes.txt"), "not weights").unwrap();
    let e = problems(in_dir(dir.path(), &table("notes.txt")).unwrap_err());
    assert!(e[0].contains("neither a PyTorch state dict"), "{e:?}");
}
