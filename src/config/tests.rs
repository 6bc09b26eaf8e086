//! The sweep file's rules, one test per rule (bad files live in tests/bad_sweeps/).

use super::*;
use std::path::{Path, PathBuf};

pub(crate) const GOOD: &str = r#"
name = "t"
seeds = [0, 1]

[data]
dataset = "fashion-mnist"
validation = 100
train_subset = 500

[teacher]
epochs = 1
batch_size = 64
lr = 0.001

[student]
epochs = 2
batch_size = 64
lr = 0.001

[grid]
temperature = [1, 2.5, 0.1, 1e1]
alpha = [0, 0.5, 1]
"#;

/// The first problem of a file that must be rejected.
fn err(text: &str) -> ConfigError {
    errs(text).first().clone()
}

/// Every problem of a file that must be rejected.
fn errs(text: &str) -> ConfigErrors {
    parse(text, Path::new("s.toml")).expect_err("should be rejected")
}

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test bug: {from:?} not in GOOD");
    GOOD.replacen(from, to, 1)
}

#[test]
fn numerics_and_determinism_are_read_and_checked() {
    use crate::platform::numerics::Numerics;
    let s = parse(GOOD, Path::new("s.toml")).unwrap();
    assert_eq!(s.schedule.numerics, Numerics::Portable, "the default");
    assert!(!s.schedule.deterministic);
    assert!(!s.schedule.cuda_graphs);
    let s = parse(
        &format!(
            "{GOOD}\n[schedule]\nnumerics = \"native\"\ndeterministic = true\ncuda_graphs = true\n"
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(s.schedule.numerics, Numerics::Native);
    assert!(s.schedule.deterministic);
    assert!(s.schedule.cuda_graphs);
    let lines = GOOD.lines().count();
    for (keys, key, says) in [
        (
            "numerics = \"fast\"",
            "schedule.numerics",
            "\"portable\" or \"native\"",
        ),
        (
            "numerics = 1",
            "schedule.numerics",
            "\"portable\" or \"native\"",
        ),
        (
            "deterministic = \"yes\"",
            "schedule.deterministic",
            "true or false",
        ),
        ("cuda_graphs = 1", "schedule.cuda_graphs", "true or false"),
    ] {
        let e = err(&format!("{GOOD}\n[schedule]\n{keys}\n"));
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert_eq!(e.at.map(|(l, _)| l), Some(lines + 3), "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn teacher_epoch_multiplies_the_cells_and_takes_epochs_of_the_teacher_s_training() {
    let text = |axis: &str| {
        with("[teacher]\nepochs = 1", "[teacher]\nepochs = 30").replace(
            "alpha = [0, 0.5, 1]",
            &format!("alpha = [0, 0.5, 1]\nteacher_epoch = {axis}"),
        )
    };
    let s = parse(&text("[10, 30]"), Path::new("s.toml")).unwrap();
    assert_eq!(s.teacher_epochs, [10, 30]);
    let cells = s.cells();
    assert_eq!(cells.len(), 2 * 4 * 3, "every (T, α) once per snapshot");
    assert!(cells[..12].iter().all(|c| c.teacher_epoch == Some(10)));
    assert_eq!(cells[12].id_part(""), "te30-T1-a0");
    let plain = parse(GOOD, Path::new("s.toml")).unwrap();
    assert!(plain.cells().iter().all(|c| c.teacher_epoch.is_none()));
    for (axis, says) in [
        ("[40]", "from 1 to 30"),
        ("[0]", "from 1 to 30"),
        ("[10, 10]", "appears twice"),
        ("[]", "is empty"),
    ] {
        let e = err(&text(axis));
        assert_eq!(e.key.as_deref(), Some("grid.teacher_epoch"), "{e}");
        assert!(e.at.is_some() && e.message.contains(says), "{axis}: {e}");
    }
}

#[test]
fn label_smoothing_is_read_per_role_and_stays_out_of_keys_at_zero() {
    let s = parse(
        &with(
            "[teacher]\nepochs = 1",
            "[teacher]\nlabel_smoothing = 0.1\nepochs = 1",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(s.teacher.label_smoothing, 0.1);
    assert_eq!(s.student.label_smoothing, 0.0);
    let teacher = serde_json::to_string(&s.teacher).unwrap();
    assert!(teacher.contains("\"label_smoothing\":0.1"), "{teacher}");
    let plain = serde_json::to_string(&s.student).unwrap();
    assert!(!plain.contains("label_smoothing"), "{plain}");
    for bad in ["1.0", "-0.1", "nan"] {
        let e = err(&with(
            "[student]\nepochs = 2",
            &format!("[student]\nlabel_smoothing = {bad}\nepochs = 2"),
        ));
        assert_eq!(e.key.as_deref(), Some("student.label_smoothing"), "{e}");
        assert!(e.at.is_some() && e.message.contains("[0, 1)"), "{e}");
    }
}

#[test]
fn precision_is_read_per_role_and_fp16_is_refused_with_the_reason() {
    use crate::train::Precision;
    let s = parse(
        &with(
            "[student]\nepochs = 2",
            "[student]\nprecision = \"bf16\"\nepochs = 2",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(s.student.precision, Precision::Bf16);
    assert_eq!(s.teacher.precision, Precision::Fp32);
    let e = err(&with(
        "[teacher]\nepochs = 1",
        "[teacher]\nprecision = \"fp16\"\nepochs = 1",
    ));
    assert_eq!(e.key.as_deref(), Some("teacher.precision"));
    assert!(e.at.is_some() && e.message.contains("use \"bf16\""), "{e}");
    let e = err(&with(
        "[teacher]\nepochs = 1",
        "[teacher]\nprecision = \"tf32\"\nepochs = 1",
    ));
    assert!(
        e.message.contains("\"fp32\" (the default) or \"bf16\""),
        "{e}"
    );
    // float32 stays out of the serialized phase (and so of run keys)
    let plain = serde_json::to_string(&parse(GOOD, Path::new("s.toml")).unwrap().student).unwrap();
    assert!(!plain.contains("precision"), "{plain}");
}

#[test]
fn channels_last_is_read_per_role_and_stays_out_of_keys_when_off() {
    let s = parse(
        &with(
            "[teacher]\nepochs = 1",
            "[teacher]\nchannels_last = true\nepochs = 1",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert!(s.teacher.channels_last && !s.student.channels_last);
    let teacher = serde_json::to_string(&s.teacher).unwrap();
    assert!(teacher.contains("\"channels_last\":true"), "{teacher}");
    // off, said or not: the phase serializes (and so keys) as before the setting existed
    let good = parse(GOOD, Path::new("s.toml")).unwrap();
    let off = parse(
        &with(
            "[student]\nepochs = 2",
            "[student]\nchannels_last = false\nepochs = 2",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    let json = |p: &Phase| serde_json::to_string(p).unwrap();
    assert_eq!(json(&off.student), json(&good.student));
    assert!(!json(&good.student).contains("channels_last"));
    let e = err(&with(
        "[student]\nepochs = 2",
        "[student]\nchannels_last = \"yes\"\nepochs = 2",
    ));
    assert!(
        e.at.is_some() && e.to_string().contains("channels_last"),
        "{e}"
    );
}

#[test]
fn a_key_in_the_wrong_table_is_told_where_it_goes() {
    for (from, to, home) in [
        (
            "[grid]\n",
            "[grid]\nchannels_last = true\n",
            "is a key of [teacher] and [student]",
        ),
        (
            "[grid]\n",
            "[grid]\nnumerics = \"native\"\n",
            "is a key of [schedule]",
        ),
        (
            "[data]\n",
            "[data]\nseeds = [1]\n",
            "is a key of the top level",
        ),
    ] {
        let e = err(&with(from, to));
        assert!(e.at.is_some() && e.message.contains(home), "{to}: {e}");
    }
    // a slip of the keyboard is still named as one
    let e = err(&with("[student]\n", "[student]\nchannel_last = true\n"));
    assert!(e.message.contains("did you mean `channels_last`"), "{e}");
}

#[test]
fn optimizers_and_schedules_are_read_and_checked() {
    use crate::train::optim::{Algorithm, Schedule};
    let teacher = |keys: &str| {
        with(
            "[teacher]\nepochs = 1",
            &format!("[teacher]\n{keys}\nepochs = 240"),
        )
    };
    let s = parse(
        &teacher(
            "optimizer = \"sgd\"\nmomentum = 0.9\nnesterov = true\nweight_decay = 5e-4\n\
             schedule = \"multistep\"\nmilestones = [150, 180, 210]\ngamma = 0.1\nwarmup_epochs = 5",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    let r = &s.teacher.recipe;
    assert_eq!(
        (r.optimizer, r.momentum, r.nesterov, r.weight_decay),
        (Algorithm::Sgd, 0.9, true, 5e-4)
    );
    assert_eq!(
        (r.schedule, r.milestones.clone(), r.gamma, r.warmup_epochs),
        (Schedule::Multistep, vec![150, 180, 210], 0.1, 5)
    );
    assert!(s.student.recipe.is_default(), "per role");
    let cases = [
        ("optimizer = \"lamb\"", "teacher.optimizer", "\"sgd\""),
        ("momentum = 0.9", "teacher.momentum", "optimizer = \"sgd\""),
        (
            "optimizer = \"sgd\"\nnesterov = true",
            "teacher.nesterov",
            "momentum > 0",
        ),
        (
            "optimizer = \"sgd\"\nmomentum = 1.5",
            "teacher.momentum",
            "[0, 1)",
        ),
        ("weight_decay = -1e-4", "teacher.weight_decay", "≥ 0"),
        ("schedule = \"step\"", "teacher.schedule", "\"cosine\""),
        (
            "schedule = \"multistep\"",
            "teacher.schedule",
            "needs milestones",
        ),
        (
            "schedule = \"multistep\"\nmilestones = [150, 300]",
            "teacher.milestones",
            "milestone 300 is outside epochs 1 … 239",
        ),
        (
            "schedule = \"multistep\"\nmilestones = [180, 150]",
            "teacher.milestones",
            "must increase",
        ),
        (
            "milestones = [10]",
            "teacher.milestones",
            "\"multistep\" only",
        ),
        (
            "schedule = \"multistep\"\nmilestones = [10]\ngamma = -0.1",
            "teacher.gamma",
            "> 0",
        ),
        ("gamma = 0.5", "teacher.gamma", "\"multistep\" only"),
        ("warmup_epochs = 240", "teacher.warmup_epochs", "0 … 239"),
        (
            "schedule = \"multistep\"\nmilestones = [3]\nwarmup_epochs = 5",
            "teacher.warmup_epochs",
            "first milestone (3)",
        ),
    ];
    for (keys, key, want) in cases {
        let e = err(&teacher(keys));
        assert_eq!(e.key.as_deref(), Some(key), "{keys}: {e}");
        assert!(e.to_string().contains(want), "{keys}: {e}");
        assert!(e.at.is_some(), "{keys}: a line and column");
    }
}

#[test]
fn augmentation_is_read_per_role_and_checked() {
    let s = parse(
        &with(
            "[student]\nepochs = 2",
            "[student]\naugment = \"crop-flip\"\nepochs = 2",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(s.student.augment, crate::train::augment::Augment::CropFlip);
    assert!(s.teacher.augment.is_none());
    let e = err(&with(
        "[student]\nepochs = 2",
        "[student]\naugment = \"mixup\"\nepochs = 2",
    ));
    assert_eq!(e.key.as_deref(), Some("student.augment"));
    assert!(e.to_string().contains("\"crop-flip\""), "{e}");
}

#[test]
fn good_file_parses_with_defaults() {
    let s = parse(GOOD, Path::new("dir/s.toml")).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.seeds, vec![0, 1]);
    assert_eq!(s.data.dataset, DatasetKind::FashionMnist);
    assert_eq!(
        s.data.path,
        PathBuf::from("/usr/share/datasets/fashion-mnist")
    );
    assert_eq!(s.data.train_subset, Some(500));
    assert_eq!(s.data.test_subset, None);
    assert_eq!(s.student.epochs, 2);
    assert!(s.baseline && s.cache_teacher_logits);
    assert_eq!(s.schedule.devices, Devices::Auto);
    // PyTorch's initialisation; teachers on every core, students on one
    assert_eq!(s.teacher.init, crate::model::Init::Pytorch);
    assert_eq!(s.student.init, crate::model::Init::Pytorch);
    assert_eq!(s.teacher.threads, machine_cores());
    assert_eq!(s.student.threads, 1);
    assert!(!s.source.has("teacher.threads"));
}

#[test]
fn init_and_threads_are_read_and_checked() {
    let s = parse(
        &with(
            "[teacher]\nepochs = 1",
            "[teacher]\ninit = \"kaiming\"\nthreads = 3\nepochs = 1",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(s.teacher.init, crate::model::Init::Kaiming);
    assert_eq!(s.teacher.threads, 3);
    assert!(s.source.has("teacher.threads"));
    let e = err(&with(
        "[teacher]\nepochs = 1",
        "[teacher]\ninit = \"he\"\nepochs = 1",
    ));
    assert!(e.to_string().contains("teacher.init"), "{e}");
    assert!(
        e.to_string()
            .contains("\"pytorch\", \"kaiming\" or \"as-saved\""),
        "{e}"
    );
    let e = err(&with(
        "[student]\nepochs = 2",
        "[student]\nthreads = 0\nepochs = 2",
    ));
    assert!(e.to_string().contains("student.threads"), "{e}");
    // --teacher-threads wins over the file, and is checked
    let mut s = parse(GOOD, Path::new("s.toml")).unwrap();
    let o = Overrides {
        teacher_threads: Some(5),
        ..Default::default()
    };
    o.apply(&mut s).unwrap();
    assert_eq!(s.teacher.threads, 5);
    let bad = Overrides {
        teacher_threads: Some(0),
        ..Default::default()
    };
    assert!(bad
        .apply(&mut s)
        .unwrap_err()
        .to_string()
        .contains("--teacher-threads"));
    // the flags keep the limits of the keys they replace, in the same words
    let over = |o: Overrides| o.apply(&mut s.clone()).unwrap_err().to_string();
    let e = over(Overrides {
        teacher_threads: Some(1025),
        ..Default::default()
    });
    assert!(
        e.contains("--teacher-threads") && e.contains("at most 1024"),
        "{e}"
    );
    let e = over(Overrides {
        workers_per_device: Some(257),
        ..Default::default()
    });
    assert!(
        e.contains("--workers-per-device") && e.contains("at most 256"),
        "{e}"
    );
    let file = err(&format!("{GOOD}\n[schedule]\nworkers_per_device = 257\n"));
    assert!(file.to_string().contains("at most 256"), "{file}");
    let most = Overrides {
        teacher_threads: Some(1024),
        workers_per_device: Some(256),
        ..Default::default()
    };
    most.apply(&mut s).unwrap();
    assert_eq!(
        (s.teacher.threads, s.schedule.workers_per_device),
        (1024, Some(256))
    );
}

#[test]
fn grid_values_keep_their_written_text() {
    let s = parse(GOOD, Path::new("s.toml")).unwrap();
    let t: Vec<_> = s.temperatures.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(t, ["1", "2.5", "0.1", "1e1"]);
    assert_eq!(s.temperatures[3].value, 10.0);
    let a: Vec<_> = s.alphas.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(a, ["0", "0.5", "1"]);
}

#[test]
fn relative_data_path_is_relative_to_the_sweep_file() {
    let s = parse(
        &with("validation = 100", "path = \"d/x\"\nvalidation = 100"),
        Path::new("exp/s.toml"),
    )
    .unwrap();
    assert_eq!(s.data.path, PathBuf::from("exp/d/x"));
}

#[test]
fn unknown_key_names_line_column_and_key() {
    let e = err(&with("[grid]\n", "[grid]\ntemprature = [1]\n"));
    assert_eq!(e.at, Some((21, 1)), "{e}");
    assert!(e.message.contains("temprature"), "{e}");
    assert!(
        e.message.contains("temperature"),
        "should list the allowed keys: {e}"
    );
}

#[test]
fn unknown_top_level_key() {
    let e = err(&format!("nmae = \"x\"\n{GOOD}"));
    assert_eq!(e.at.map(|a| a.0), Some(1));
    assert!(e.message.contains("nmae"), "{e}");
}

#[test]
fn wrong_type() {
    let e = err(&with("epochs = 1", "epochs = \"one\""));
    assert!(e.at.is_some());
    assert!(e.to_string().contains("s.toml:"), "{e}");
}

#[test]
fn temperature_must_be_positive() {
    let e = err(&with("temperature = [1, 2.5", "temperature = [0, 2.5"));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"));
    assert_eq!(e.at, Some((21, 16)));
    assert!(e.message.contains("> 0"), "{e}");
    let e = err(&with("temperature = [1, 2.5", "temperature = [-1, 2.5"));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"));
}

#[test]
fn temperature_must_be_finite() {
    let e = err(&with("temperature = [1, 2.5", "temperature = [inf, 2.5"));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"));
    let e = err(&with("temperature = [1, 2.5", "temperature = [nan, 2.5"));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"));
}

#[test]
fn alpha_must_be_in_unit_interval() {
    let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [0, 1.5]"));
    assert_eq!(e.key.as_deref(), Some("grid.alpha"));
    assert!(e.message.contains("[0, 1]"), "{e}");
    let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [-0.1]"));
    assert_eq!(e.key.as_deref(), Some("grid.alpha"));
}

#[test]
fn empty_grid_axis() {
    let e = err(&with("alpha = [0, 0.5, 1]", "alpha = []"));
    assert_eq!(e.key.as_deref(), Some("grid.alpha"));
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn duplicated_grid_value_even_when_written_differently() {
    let e = err(&with("temperature = [1, 2.5", "temperature = [1, 1.0"));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"));
    assert!(e.message.contains("twice"), "{e}");
}

#[test]
fn epochs_and_batch_size_at_least_one() {
    let e = err(&with("epochs = 1", "epochs = 0"));
    assert_eq!(e.key.as_deref(), Some("teacher.epochs"));
    let e = err(&with(
        "batch_size = 64\nlr = 0.001\n\n[student]",
        "batch_size = -3\nlr = 0.001\n\n[student]",
    ));
    assert_eq!(e.key.as_deref(), Some("teacher.batch_size"));
    let e = err(&with("epochs = 2", "epochs = 0"));
    assert_eq!(e.key.as_deref(), Some("student.epochs"));
}

#[test]
fn lr_must_be_positive() {
    let e = err(&with("lr = 0.001\n\n[student]", "lr = 0\n\n[student]"));
    assert_eq!(e.key.as_deref(), Some("teacher.lr"));
    let e = err(&with("lr = 0.001\n\n[grid]", "lr = -1e-3\n\n[grid]"));
    assert_eq!(e.key.as_deref(), Some("student.lr"));
}

#[test]
fn unknown_dataset() {
    let e = err(&with("\"fashion-mnist\"", "\"imagenet\""));
    assert_eq!(e.key.as_deref(), Some("data.dataset"));
    assert!(e.message.contains("cifar10"), "lists what is allowed: {e}");
}

#[test]
fn seeds_required_and_unique() {
    let e = err(&with("seeds = [0, 1]", "seeds = []"));
    assert_eq!(e.key.as_deref(), Some("seeds"));
    let e = err(&with("seeds = [0, 1]", "seeds = [3, 3]"));
    assert_eq!(e.key.as_deref(), Some("seeds"));
    let e = err(&with("seeds = [0, 1]\n", ""));
    assert!(e.message.contains("seeds"), "{e}");
}

#[test]
fn unsafe_names_are_rejected() {
    for bad in ["../x", "/abs", "", ".hidden", "a b"] {
        let e = err(&with("name = \"t\"", &format!("name = \"{bad}\"")));
        assert_eq!(e.key.as_deref(), Some("name"), "{bad}: {e}");
    }
}

#[test]
fn subsets_must_be_positive() {
    let e = err(&with("train_subset = 500", "train_subset = 0"));
    assert_eq!(e.key.as_deref(), Some("data.train_subset"));
}

#[test]
fn empty_file() {
    let e = err("  \n");
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn syntax_error_has_a_position() {
    let e = err(&with(
        "lr = 0.001\n\n[student]",
        "lr = = 0.001\n\n[student]",
    ));
    assert_eq!(e.at.map(|a| a.0), Some(13), "{e}");
}

#[test]
fn devices_forms() {
    assert_eq!(Devices::parse("auto").unwrap(), Devices::Auto);
    assert_eq!(Devices::parse("cpu").unwrap(), Devices::Cpu);
    assert_eq!(
        Devices::parse("cuda:0,cuda:2").unwrap(),
        Devices::List(vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)])
    );
    assert!(Devices::parse("gpu0").is_err());
    let s = parse(
        &format!("{GOOD}\n[schedule]\ndevices = [\"cuda:1\", \"cpu\"]\nworkers_per_device = 2\n"),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(
        s.schedule.devices,
        Devices::List(vec![DeviceSpec::Cuda(1), DeviceSpec::Cpu])
    );
    assert_eq!(s.schedule.workers_per_device, Some(2));
    let s = parse(
        &format!("{GOOD}\n[schedule]\nfuse = true\nfuse_max = 16\n"),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!((s.schedule.fuse, s.schedule.fuse_max), (Fuse::On, 16));
    assert!(
        Fuse::Auto.on(DeviceSpec::Cuda(1))
            && !Fuse::Auto.on(DeviceSpec::Cpu)
            && Fuse::On.on(DeviceSpec::Cpu)
            && !Fuse::Off.on(DeviceSpec::Cuda(0))
    );
    let e = err(&format!("{GOOD}\n[schedule]\nfuse = \"sometimes\"\n"));
    assert_eq!(e.key.as_deref(), Some("schedule.fuse"));
    let e = err(&format!("{GOOD}\n[schedule]\nfuse_max = 0\n"));
    assert_eq!(e.key.as_deref(), Some("schedule.fuse_max"));
    // the group size written as a dotted key names the key it meant
    for (written, key, said) in [
        (
            "[schedule]\nfuse.max = 3",
            "schedule.fuse.max",
            "`fuse.max` makes `fuse` a table; did you mean `fuse_max` in [schedule]?",
        ),
        (
            "[schedule.fuse]\nmax = 3",
            "schedule.fuse",
            "a table here makes `fuse` one; did you mean `fuse_max` in [schedule]?",
        ),
        (
            "[schedule]\nfuse = { max = 3 }",
            "schedule.fuse",
            "a table here makes `fuse` one; did you mean `fuse_max` in [schedule]?",
        ),
    ] {
        let e = err(&format!("{GOOD}\n{written}\n"));
        assert_eq!(e.key.as_deref(), Some(key), "{written}");
        assert_eq!(
            e.message,
            format!("expected \"auto\", true or false; {said}"),
            "{written}"
        );
    }
    // a value of the wrong kind is not taken for a table
    let e = err(&format!("{GOOD}\n[schedule]\nfuse = 3\n"));
    assert!(
        e.message.contains("expected \"auto\", true or false"),
        "{e}"
    );
    assert!(!e.message.contains("fuse_max"), "{e}");
    let e = err(&format!("{GOOD}\n[schedule]\ndevices = \"tpu\"\n"));
    assert_eq!(e.key.as_deref(), Some("schedule.devices"));
    // one GPU, two spellings: refused, so it can never get two slots
    let e = err(&format!(
        "{GOOD}\n[schedule]\ndevices = [\"cuda:1\", \"cuda:01\"]\n"
    ));
    assert!(
        e.message.contains("cuda:1 is listed twice"),
        "{}",
        e.message
    );
}

#[test]
fn methods_default_to_logit_and_are_checked() {
    assert_eq!(
        parse(GOOD, Path::new("s.toml")).unwrap().methods,
        vec![Method::Logit]
    );
    let s = parse(
        &with(
            "alpha = [0, 0.5, 1]",
            "alpha = [0.5]\nmethod = [\"imitation\", \"logit\", \"feature\"]",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    assert_eq!(
        s.methods,
        vec![Method::Imitation, Method::Logit, Method::Feature]
    );
    let e = err(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"logit\", \"hint\"]",
    ));
    assert_eq!(e.key.as_deref(), Some("grid.method"));
    assert!(e.message.contains("imitation"), "{e}");
    let e = err(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"logit\", \"logit\"]",
    ));
    assert!(e.message.contains("twice"), "{e}");
    let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [0.5]\nmethod = []"));
    assert_eq!(e.key.as_deref(), Some("grid.method"));
}

#[test]
fn missing_file_says_so() {
    let e = load(Path::new("/nonexistent/sweep.toml")).unwrap_err();
    assert!(e.first().message.contains("no such file"), "{e}");
}

#[test]
fn method_tables_give_each_method_its_axes() {
    let text = with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5, 0.9]\nmethod = [\"logit\", \"dkd\", \"dist\", \"multi-t\", \"ctkd\"]\n\
         logit_norm = [\"none\", \"zscore\"]\nzscore_temperature = [2]\n\
         [grid.dkd]\nbeta = [2, 8]\nwarmup = 5\nlogit_norm = [\"zscore\"]\n\
         [grid.multi_t]\ntemperatures = [[2, 4], [1, 2, 4, 8]]\n\
         [grid.ctkd]\nramp_epochs = 3",
    );
    let s = parse(&text, Path::new("s.toml")).unwrap();
    let cells = s.cells();
    let count = |m: Method| cells.iter().filter(|c| c.method == m).count();
    // logit: 4 T × 2 α plain, 1 T × 2 α z-scored
    assert_eq!(count(Method::Logit), 8 + 2);
    assert!(cells
        .iter()
        .any(|c| c.zscore && c.temperature.as_ref().unwrap().text == "2"));
    // DKD: defaults α = [1], T = [4]; β from the table; z-scored only
    assert_eq!(count(Method::Dkd), 2);
    assert!(cells
        .iter()
        .filter(|c| c.method == Method::Dkd)
        .all(|c| c.zscore));
    assert_eq!(s.methods_fixed.dkd_warmup, 5);
    // DIST: its defaults (β = γ = 2, τ = 4): one cell
    assert_eq!(count(Method::Dist), 1);
    // multi-T: two sets × the grid's two α
    assert_eq!(count(Method::MultiT), 4);
    // CTKD: the grid's α; its ramp from the table
    assert_eq!(count(Method::Ctkd), 2);
    assert_eq!(s.methods_fixed.ctkd_ramp, 3);
    // every cell has its own id
    let mut ids: Vec<String> = cells.iter().map(|c| c.id_part("")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), cells.len());
}

#[test]
fn ttm_s_table_gives_its_cells_from_its_declaration() {
    let text = with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"ttm\"]\n[grid.ttm]\ntemperature = [2, 4.0]",
    );
    let cells = parse(&text, Path::new("s.toml")).unwrap().cells();
    let ids: Vec<String> = cells.iter().map(|c| c.id_part("")).collect();
    // β from its default, T as written
    assert_eq!(ids, ["ttm-T2-b45", "ttm-T4.0-b45"]);
    let e = err(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"ttm\"]\n[grid.ttm]\ngamma = [1]",
    ));
    assert_eq!(e.key.as_deref(), Some("grid.ttm.gamma"), "{e}");
    assert!(e.message.contains("ttm takes `beta`, `temperature`"), "{e}");
}

#[test]
fn bad_method_tables_point_at_their_key() {
    let grid = |extra: &str| {
        with(
            "alpha = [0, 0.5, 1]",
            &format!("alpha = [0.5]\nmethod = [\"logit\", \"dkd\", \"multi-t\"]\n{extra}"),
        )
    };
    for (extra, key, says) in [
        // β on a method without β
        ("[grid.multi_t]\nbeta = [1]", None, "unknown field `beta`"),
        // the tables are read from the methods' declarations: a slip, a wrong type, an unknown table
        (
            "[grid.dkd]\nbetta = [1]",
            Some("grid.dkd.betta"),
            "did you mean `beta`?",
        ),
        (
            "[grid.dkd]\nbeta = [\"x\"]",
            Some("grid.dkd.beta"),
            "expected a number, found a string",
        ),
        (
            "[grid.dkd]\nwarmup = 1.5",
            Some("grid.dkd.warmup"),
            "expected a whole number, found a float",
        ),
        (
            "[grid.dkd]\nwarmup = 0",
            Some("grid.dkd.warmup"),
            "whole number ≥ 1",
        ),
        (
            "[grid.multi_t]\ntemperatures = [2, 3]",
            Some("grid.multi_t.temperatures"),
            "expected sets of temperatures",
        ),
        (
            "[grid.dkdd]\nbeta = [1]",
            Some("grid.dkdd"),
            "did you mean [grid.dkd]?",
        ),
        ("dkd = 3", Some("grid.dkd"), "must be a table of dkd's keys"),
        ("[grid.dkd]\nbeta = []", Some("grid.dkd.beta"), "is empty"),
        (
            "[grid.dkd]\ntemperature = [0]",
            Some("grid.dkd.temperature"),
            "finite numbers > 0",
        ),
        (
            "[grid.dkd]\ntemperature = [-1]",
            Some("grid.dkd.temperature"),
            "finite numbers > 0",
        ),
        (
            "[grid.multi_t]\ntemperatures = [[4]]",
            Some("grid.multi_t.temperatures"),
            "at least two temperatures",
        ),
        (
            "[grid.multi_t]\ntemperatures = [[2, 4], [4, 2]]",
            Some("grid.multi_t.temperatures"),
            "[4, 2] is the set [2, 4] again",
        ),
        (
            "[grid.dist]\nbeta = [1]",
            Some("grid.dist"),
            "\"dist\" is not in [grid] method",
        ),
        (
            "[grid.dkd]\nzscore_temperature = [2]",
            Some("grid.dkd.zscore_temperature"),
            "add \"zscore\" to logit_norm",
        ),
        (
            "[grid.dkd]\nlogit_norm = [\"zscore\", \"zscore\"]",
            Some("grid.dkd.logit_norm"),
            "\"zscore\" appears twice",
        ),
        (
            "[grid.dkd]\nlogit_norm = [\"l2\"]",
            Some("grid.dkd.logit_norm"),
            "\"none\"",
        ),
    ] {
        let e = err(&grid(extra));
        assert!(e.at.is_some(), "{extra}: {e}");
        assert_eq!(
            e.key.as_deref().filter(|_| key.is_some()),
            key,
            "{extra}: {e}"
        );
        assert!(e.message.contains(says), "{extra}: {e}");
    }
}

#[test]
fn every_problem_of_every_method_table_is_reported_at_once() {
    let text = with("alpha = [0, 0.5, 1]", "alpha = [0, 0.5, 1]\nmethod = [\"dkd\", \"ctkd\"]")
        + "[grid.dkd]\nalpha = [-2]\nbeta = [-1]\nwarmup = 0\n[grid.ctkd]\nt_min = 0\nt_range = -1\ntau = 1\n";
    let all = errs(&text);
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "grid.dkd.alpha",
            "grid.dkd.beta",
            "grid.dkd.warmup",
            "grid.ctkd.t_min",
            "grid.ctkd.t_range",
            "grid.ctkd.tau",
        ],
        "{all}"
    );
}

#[test]
fn unknown_keys_say_which_key_was_meant() {
    let e = err(&with("temperature =", "temprature ="));
    assert!(e.message.starts_with("unknown field `temprature`"), "{e}");
    assert!(e.message.ends_with("; did you mean `temperature`?"), "{e}");
    assert_eq!(e.key.as_deref(), Some("grid.temprature"));
    // a misspelt table: its key's error, and no "missing field `teacher`" echoing it
    let all = errs(&with("[teacher]", "[teachr]"));
    assert_eq!(all.len(), 1, "{all}");
    assert!(
        all.first().message.ends_with("did you mean `teacher`?"),
        "{all}"
    );
    // a slip stands for the key it was meant to be: its value is checked as that key's
    let all = errs(&with(
        "temperature = [1, 2.5, 0.1, 1e1]",
        "temprature = [1, 0]",
    ));
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["grid.temprature", "grid.temperature"], "{all}");
    assert!(
        all.iter()
            .nth(1)
            .unwrap()
            .message
            .contains("0 is not allowed"),
        "{all}"
    );
    // a slip with a value of the wrong type: the type error names the key it was read as
    let all = errs(&with(
        "[student]\nepochs = 2",
        "[student]\nchannel_last = 1\nepochs = 2",
    ));
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(
        keys,
        ["student.channel_last", "student.channels_last"],
        "{all}"
    );
    assert!(
        all.iter()
            .nth(1)
            .unwrap()
            .message
            .contains("expected true or false"),
        "{all}"
    );
    // nothing near: no guess
    let e = err(&with(
        "lr = 0.001\n\n[student]",
        "lr = 0.001\nfoo = 1\n\n[student]",
    ));
    assert!(!e.message.contains("did you mean"), "{e}");
}

/// A sweep file with problems on lines 3 (a value), 9 (an unknown key: serde's), 13 (a value of
/// the wrong type: serde's) and 17 (a value).
const FOUR_MISTAKES: &str = "# four mistakes
name = \"t\"
seeds = [0, -1]
[data]
dataset = \"fashion-mnist\"
[teacher]
epochs = 1
batch_size = 64
betas = [0.9, 0.99]
lr = 0.001
[student]
epochs = 2
batch_size = \"64\"
lr = 0.001
[grid]
temperature = [1, 2]
alpha = [0.5, 2]
";

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let all = errs(FOUR_MISTAKES);
    let lines: Vec<usize> = all.iter().map(|e| e.at.unwrap().0).collect();
    assert_eq!(lines, [3, 9, 13, 17], "{all}");
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(
        keys,
        ["seeds", "teacher.betas", "student.batch_size", "grid.alpha"]
    );
    // each keeps the message it has alone
    for e in all.iter() {
        let alone = match e.key.as_deref().unwrap() {
            "seeds" => err(&with("seeds = [0, 1]", "seeds = [0, -1]")),
            "teacher.betas" => err(&with(
                "lr = 0.001\n\n[student]",
                "lr = 0.001\nbetas = [0.9, 0.99]\n\n[student]",
            )),
            "student.batch_size" => err(&with(
                "epochs = 2\nbatch_size = 64",
                "epochs = 2\nbatch_size = \"64\"",
            )),
            _ => err(&with("alpha = [0, 0.5, 1]", "alpha = [0.5, 2]")),
        };
        assert_eq!(e.message, alone.message);
    }
    // the printed form: one problem per line, in that order
    let text = all.to_string();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("s.toml:3:13: `seeds`: "),
        "{text}"
    );
}

#[test]
fn a_check_that_needs_a_wrong_value_is_skipped_not_repeated() {
    // an unknown dataset leaves the models unchecked (their image shape is unknown), and reports
    // the other tables' problems all the same
    let text = with("dataset = \"fashion-mnist\"", "dataset = \"fashion\"")
        .replace("epochs = 2", "epochs = 0");
    let all = errs(&text);
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["data.dataset", "student.epochs"], "{all}");
    // a syntax error stops there: nothing after it can be read
    let all = errs(&with("lr = 0.001", "lr = = 0.001"));
    assert_eq!(all.len(), 1, "{all}");
}

#[test]
fn mean_and_std_both_or_neither_finite_positive_one_per_channel() {
    let s = parse(
        &with(
            "train_subset = 500",
            "train_subset = 500\nmean = [0.5]\nstd = [0.25]",
        ),
        Path::new("s.toml"),
    )
    .unwrap();
    let n = s.data.normalize.expect("given");
    assert_eq!((n.mean, n.std), (vec![0.5], vec![0.25]));
    assert_eq!(
        parse(GOOD, Path::new("s.toml")).unwrap().data.normalize,
        None
    );
    for (add, key, says) in [
        ("mean = [0.5]", "data.mean", "without data.std"),
        ("std = [0.5]", "data.std", "without data.mean"),
        ("mean = [0.5]\nstd = [0]", "data.std", "> 0"),
        ("mean = [0.5]\nstd = [-1]", "data.std", "> 0"),
        ("mean = [nan]\nstd = [1]", "data.mean", "finite"),
        ("mean = [0.5]\nstd = [inf]", "data.std", "finite"),
        ("mean = []\nstd = []", "data.mean", "empty"),
        // fashion-mnist has one channel
        (
            "mean = [0.5, 0.5, 0.5]\nstd = [1, 1, 1]",
            "data.mean",
            "1 channel",
        ),
        ("mean = [0.5]\nstd = [1, 1]", "data.std", "1 channel"),
    ] {
        let e = err(&with(
            "train_subset = 500",
            &format!("train_subset = 500\n{add}"),
        ));
        assert_eq!(e.key.as_deref(), Some(key), "{add}: {e}");
        assert!(e.message.contains(says) && e.at.is_some(), "{add}: {e}");
    }
}

#[test]
fn image_size_is_a_folder_datasets_and_folder_needs_a_path() {
    let e = err(&with(
        "train_subset = 500",
        "train_subset = 500\nimage_size = 32",
    ));
    assert_eq!(e.key.as_deref(), Some("data.image_size"));
    assert!(e.message.contains("folder"), "{e}");
    let e = err(&with("\"fashion-mnist\"", "\"folder\""));
    assert_eq!(e.key.as_deref(), Some("data.path"));
    assert!(e.message.contains("required"), "{e}");
    let e = err(&with(
        "\"fashion-mnist\"",
        "\"folder\"\npath = \"/nonexistent/imgs\"\nimage_size = [32, 0]",
    ));
    assert_eq!(e.key.as_deref(), Some("data.image_size"), "{e}");
    // the folder's problem points at data.path, with the folder and what to do
    let e = err(&with(
        "\"fashion-mnist\"",
        "\"folder\"\npath = \"/nonexistent/imgs\"",
    ));
    assert_eq!(e.key.as_deref(), Some("data.path"));
    assert!(
        e.message.contains("/nonexistent/imgs") && e.message.contains("ImageFolder"),
        "{e}"
    );
}

#[test]
fn a_folder_is_peeked_for_its_shape_and_validation_split() {
    let d = tempfile::tempdir().unwrap();
    let sizes = (3, 8, 8);
    crate::data::write::synthetic_folder(&d.path().join("imgs"), &["b", "a"], &[1, 1, 1], sizes, 0)
        .unwrap();
    let folder = |extra: &str| {
        let text = GOOD.replacen(
            "dataset = \"fashion-mnist\"\nvalidation = 100",
            &format!("dataset = \"folder\"\npath = \"imgs\"\n{extra}"),
            1,
        );
        parse(&text, &d.path().join("s.toml"))
    };
    let s = folder("").unwrap();
    let l = s.data.layout.clone().expect("peeked");
    assert_eq!((l.shape, l.classes, l.own_validation), ([3, 8, 8], 2, true));
    assert_eq!(l.class_names, ["a", "b"]);
    assert_eq!(
        (s.data.image_shape(), s.data.classes()),
        (Some([3, 8, 8]), Some(2))
    );
    assert_eq!(s.data.validation, 0, "validation/ is the hold-out");
    let e = folder("validation = 10").unwrap_err().first().clone();
    assert_eq!(e.key.as_deref(), Some("data.validation"));
    assert!(e.message.contains("validation/"), "{e}");
    let e = folder("mean = [0.5]\nstd = [0.5]")
        .unwrap_err()
        .first()
        .clone();
    assert!(
        e.key.as_deref() == Some("data.mean") && e.message.contains("3 channel"),
        "{e}"
    );
    assert_eq!(
        folder("image_size = 4").unwrap().data.image_shape(),
        Some([3, 4, 4])
    );
}

#[test]
fn settings_are_listed_under_the_file_s_names_with_defaults_filled_in() {
    let list = |text: &str| settings(&parse(text, Path::new("s.toml")).unwrap());
    let good = list(GOOD);
    let get = |l: &[(String, String)], k: &str| {
        let v = l.iter().find(|(n, _)| n == k);
        v.map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} not listed: {l:?}"))
    };
    // unset: the defaults, by the names the file would use
    for (k, v) in [
        ("teacher.optimizer", "adam"),
        ("teacher.precision", "fp32"),
        ("student.model", "tutorial-student"),
        ("student.cache_teacher_logits", "true"),
        ("data.train_subset", "500"),
        ("data.mean", "—"),
        ("grid.baseline", "true"),
        ("search.strategy", "grid"),
        ("schedule.numerics", "portable"),
    ] {
        assert_eq!(get(&good, k), v, "{k}");
    }
    assert_eq!(good[0], ("seeds".to_string(), "[0, 1]".to_string()));
    // a method's settings where the sweep has the method, and only there
    assert!(
        !good.iter().any(|(n, _)| n.starts_with("grid.dkd.")),
        "{good:?}"
    );
    let dkd = list(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"dkd\"]",
    ));
    assert_eq!(get(&dkd, "grid.dkd.warmup"), "20");
    assert_eq!(
        differing(&[good.clone(), dkd.clone()]),
        [],
        "a method's setting one sweep lacks is not a difference"
    );
    // … but two sweeps with the method that differ in it are, beside a third without it
    let warm = list(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0.5]\nmethod = [\"dkd\"]\n[grid.dkd]\nwarmup = 1",
    ));
    assert_eq!(
        differing(&[dkd.clone(), warm, good.clone()]),
        [(
            "grid.dkd.warmup".to_string(),
            vec!["20".to_string(), "1".to_string(), "—".to_string()]
        )]
    );
    // a setting written only when given (an image size) is a difference where one sweep lacks it
    let mut sized = good.clone();
    sized.push(("data.image_size".into(), "[32, 32]".into()));
    assert_eq!(
        differing(&[good.clone(), sized]),
        [(
            "data.image_size".to_string(),
            vec!["—".to_string(), "[32, 32]".to_string()]
        )]
    );
    // the grid axes and the name are compared elsewhere
    assert!(
        !good
            .iter()
            .any(|(n, _)| ["name", "temperatures", "alphas", "methods"]
                .iter()
                .any(|x| n.rsplit('.').next() == Some(*x))),
        "{good:?}"
    );
    // set: the values written
    let sgd = list(&with(
        "[teacher]\nepochs = 1",
        "[teacher]\noptimizer = \"sgd\"\nmomentum = 0.9\nweight_decay = 5e-4\nepochs = 1",
    ));
    assert_eq!(get(&sgd, "teacher.optimizer"), "sgd");
    assert_eq!(get(&sgd, "teacher.momentum"), "0.9");
    assert_eq!(get(&sgd, "teacher.weight_decay"), "0.0005");
    assert_eq!(get(&sgd, "student.optimizer"), "adam");
    // every name is a key the sweep file takes, in the table it names
    let tables = raw::keys_by_table();
    let method_keys = |m: &str| {
        let method = Method::parse(m).unwrap_or_else(|| panic!("{m}: no such method"));
        let table = method.table().expect("a method with a table");
        table
            .keys
            .iter()
            .map(|k| k.name.to_string())
            .collect::<Vec<_>>()
    };
    for (name, _) in good[1..].iter().chain(&dkd[1..]) {
        let (table, key) = name.rsplit_once('.').expect("a table and a key");
        let keys = match table {
            "teacher" | "student" => tables[2].1.clone(),
            "data" => tables[1].1.clone(),
            "grid" => tables[3].1.clone(),
            "schedule" => tables[4].1.clone(),
            "search" => tables[5].1.clone(),
            t => method_keys(t.strip_prefix("grid.").expect("a method's table")),
        };
        assert!(
            keys.iter().any(|k| k == key),
            "{name}: not a key of its table {keys:?}"
        );
    }
}

#[test]
fn grid_temperature_and_alpha_are_required_only_by_the_methods_that_take_them() {
    let grid = "[grid]\ntemperature = [1, 2.5, 0.1, 1e1]\nalpha = [0, 0.5, 1]\n";
    let line = GOOD.lines().position(|l| l == "[grid]").unwrap() + 1;
    let ok = |g: &str| parse(&GOOD.replacen(grid, g, 1), Path::new("s.toml"));
    // DKD and TTM keep their own tables' T and α: neither key is needed
    let s = ok("[grid]\nmethod = [\"dkd\", \"ttm\"]\n").unwrap();
    assert!(s.temperatures.is_empty() && s.alphas.is_empty());
    let ids: Vec<String> = s.cells().iter().map(|c| c.id_part("")).collect();
    assert_eq!(ids, ["dkd-T4-a1-b8", "ttm-T10-b45"]);
    // multi-t takes [grid] alpha unless its table gives one
    assert!(ok("[grid]\nmethod = [\"multi-t\"]\n[grid.multi_t]\nalpha = [0.9]\n").is_ok());
    for (g, key, says) in [
        // logit KD is the default method
        (
            "[grid]\nalpha = [0.5]\n",
            "grid.temperature",
            "Logit KD takes it",
        ),
        (
            "[grid]\nmethod = [\"feature\"]\ntemperature = [2]\n",
            "grid.alpha",
            "Feature KD takes it",
        ),
        (
            "[grid]\nmethod = [\"dkd\", \"multi-t\", \"ctkd\"]\n[grid.ctkd]\nalpha = [0.5]\n",
            "grid.alpha",
            "Multi-temperature KD (its [grid.multi_t] alpha is not written) takes it",
        ),
    ] {
        let e = ok(g).expect_err(g).first().clone();
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert_eq!(e.at, Some((line, 1)), "at [grid]'s header: {e}");
        assert!(e.message.starts_with("missing field"), "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn a_table_or_key_written_twice_is_named_with_where_it_first_is() {
    let dkd = "alpha = [0.5]\nmethod = [\"dkd\"]\n[grid.dkd]\nbeta = [2]\n[grid.dkd]\nbeta = [8]";
    let text = with("alpha = [0, 0.5, 1]", dkd);
    let first = text.lines().position(|l| l == "[grid.dkd]").unwrap() + 1;
    let e = err(&text);
    assert_eq!(e.at.map(|a| a.0), Some(first + 2), "{e}");
    assert_eq!(
        e.message,
        format!(
            "[grid.dkd] is written twice (first on line {first}); write each table once, with all \
             its keys"
        )
    );
    let text = with("alpha = [0, 0.5, 1]", "alpha = [0.5]\nalpha = [0.9]");
    let first = text.lines().position(|l| l == "alpha = [0.5]").unwrap() + 1;
    let e = err(&text);
    assert_eq!(
        e.message,
        format!("`alpha` is written twice in its table (first on line {first}); keep one"),
        "{e}"
    );
}

#[test]
fn every_missing_key_of_every_table_is_reported_at_once() {
    // [teacher] without epochs and lr, [student] without batch_size and lr: four errors, each at
    // its table's header, and nothing about the stand-ins put in their place (lr = 0 would be
    // "must be > 0")
    let text = GOOD
        .replacen("epochs = 1\n", "", 1)
        .replacen("lr = 0.001\n", "", 1)
        .replacen("batch_size = 64\nlr = 0.001\n", "", 1);
    let header = |t: &str| text.lines().position(|l| l == t).unwrap() + 1;
    let got: Vec<(Option<(usize, usize)>, String)> = errs(&text)
        .iter()
        .map(|e| (e.at, e.message.clone()))
        .collect();
    let missing = |line, key: &str| {
        (
            Some((line, 1)),
            format!("missing field `{key}` (see experiments/quick.toml for a complete sweep file)"),
        )
    };
    let (teacher, student) = (header("[teacher]"), header("[student]"));
    assert_eq!(
        got,
        [
            missing(teacher, "epochs"),
            missing(teacher, "lr"),
            missing(student, "batch_size"),
            missing(student, "lr"),
        ]
    );
    // each named by its full path, as a key that is there is
    let keys: Vec<Option<String>> = errs(&text).iter().map(|e| e.key.clone()).collect();
    let named = [
        "teacher.epochs",
        "teacher.lr",
        "student.batch_size",
        "student.lr",
    ];
    assert_eq!(keys, named.map(|k| Some(k.to_string())));
    // a stand-in is retyped, not reported, where its key is not a number ([data] dataset, a
    // string); and what later checks would say of a stand-in is not said: without epochs, the
    // teacher given weights would read as "used as loaded" and its optimizer as training nothing
    let text = with("dataset = \"fashion-mnist\"\n", "").replacen(
        "epochs = 1\n",
        "weights = \"w.pt\"\noptimizer = \"sgd\"\n",
        1,
    );
    let e = errs(&text);
    let fields: Vec<&str> = e
        .iter()
        .map(|e| e.message.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(fields, ["dataset", "epochs"], "{e}");
    // and at the top level: name and seeds both, with no key named (line 1 is not what is missing)
    let e = errs(
        &GOOD
            .replacen("name = \"t\"\n", "", 1)
            .replacen("seeds = [0, 1]\n", "", 1),
    );
    let fields: Vec<&str> = e
        .iter()
        .map(|e| e.message.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(fields, ["name", "seeds"], "{e}");
    assert!(e.iter().all(|e| e.key.is_none()), "{e}");
    // missing tables too, each named once, none of their keys (they are not missing, the table is),
    // beside a missing key of a table that is there
    let no_phases = GOOD
        .replacen(
            "[teacher]\nepochs = 1\nbatch_size = 64\nlr = 0.001\n",
            "",
            1,
        )
        .replacen(
            "[student]\nepochs = 2\nbatch_size = 64\nlr = 0.001\n",
            "",
            1,
        );
    assert!(!no_phases.contains("[teacher]") && !no_phases.contains("[student]"));
    let e = errs(&no_phases.replacen("dataset = \"fashion-mnist\"\n", "", 1));
    let said: Vec<&str> = e
        .iter()
        .map(|e| e.message.split(':').next().unwrap())
        .collect();
    assert_eq!(
        said,
        [
            "missing table [teacher]",
            "missing table [student]",
            "missing field `dataset` (see experiments/quick.toml for a complete sweep file)"
        ],
        "{e}"
    );
    assert!(
        e.first().message.contains("epochs, batch_size and lr"),
        "{e}"
    );
    // a table written as another type is reported as that, and the reading goes on past it
    let e = errs(&no_phases.replacen("seeds = [0, 1]\n", "seeds = [0, 1]\nteacher = 5\n", 1));
    let said: Vec<&str> = e
        .iter()
        .map(|e| e.message.split(':').next().unwrap())
        .collect();
    assert_eq!(said, ["missing table [student]", "invalid type"], "{e}");
}

#[test]
fn a_missing_table_names_no_key_and_numbers_past_their_type_say_so() {
    // TOML puts a missing field at its table's first line; `name` there is not what is missing
    let e = err(&with(
        "\n[grid]\ntemperature = [1, 2.5, 0.1, 1e1]\nalpha = [0, 0.5, 1]\n",
        "\n",
    ));
    assert_eq!(e.key, None, "{e}");
    assert!(
        e.message
            .starts_with("missing table [grid]: a `[grid]` line"),
        "{e}"
    );
    // a dotted or quoted key is named by its full path
    let e = err(&with("epochs = 1", "\"epochs\" = \"one\""));
    assert_eq!(e.key.as_deref(), Some("teacher.epochs"), "{e}");
    // past i64, past u32, past f64: said in words, not in serde's types
    let e = err(&with("epochs = 1", "epochs = 99999999999999999999"));
    assert!(
        e.message.contains("is too large") && !e.message.contains("i128"),
        "{e}"
    );
    let e = err(&with("epochs = 1", "epochs = 5000000000"));
    assert!(
        e.message
            .contains("5000000000 is too large: at most 4294967295"),
        "{e}"
    );
    let e = err(&with("lr = 0.001", "lr = 1e400"));
    assert!(e.message.contains("at most about 1.8e308"), "{e}");
    let e = err(&with("lr = 0.001", "lr = [0.001]"));
    assert!(e.message.contains("invalid type: array"), "{e}");
    // a byte-order mark is not a column of line 1
    let e = err(&format!(
        "\u{feff}name = 5\n{}",
        GOOD.replacen("name = \"t\"\n", "", 1)
    ));
    assert_eq!(e.at, Some((1, 8)), "{e}");
}

#[test]
fn a_grid_key_written_as_a_table_is_named_as_that_key() {
    // the list the document reader keeps is serde's own: an unknown key's message lists them all
    let e = err(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [0, 0.5, 1]\nno_such_key = 1",
    ));
    let listed = e
        .message
        .split("expected one of ")
        .nth(1)
        .expect("serde's list");
    let mut serde: Vec<&str> = listed
        .split(", ")
        .map(|k| {
            k.trim_matches(|c| c == '`' || c == ';')
                .split('`')
                .next()
                .unwrap()
        })
        .collect();
    let mut ours = raw::GRID_KEYS.to_vec();
    serde.sort();
    ours.sort();
    assert_eq!(serde, ours, "{e}");
    // `alpha = { … }` is alpha given a table, not a method's table called alpha
    let e = err(&with("alpha = [0, 0.5, 1]", "alpha = { values = [0.5] }"));
    assert_eq!(e.key.as_deref(), Some("grid.alpha"), "{e}");
    assert!(
        e.message.contains("invalid type: table, expected an array"),
        "{e}"
    );
}

#[test]
fn a_value_inside_a_multi_line_array_is_named_by_its_key() {
    let e = err(&with(
        "temperature = [1, 2.5, 0.1, 1e1]",
        "temperature = [\n  1,\n  \"4\",\n]",
    ));
    assert_eq!(e.key.as_deref(), Some("grid.temperature"), "{e}");
    // past the closing bracket, the next line's key is its own
    let e = err(&with(
        "alpha = [0, 0.5, 1]",
        "alpha = [\n 0.5,\n]\nbaseline = 3",
    ));
    assert_eq!(e.key.as_deref(), Some("grid.baseline"), "{e}");
}

#[test]
fn a_value_echoed_in_a_message_stays_on_one_short_line() {
    let e = err(&with(
        "dataset = \"fashion-mnist\"",
        "dataset = \"\"\"\nmnist\n\"\"\"",
    ));
    assert!(e.message.contains("unknown dataset \"mnist\\n\""), "{e}");
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
    let long = "x".repeat(5000);
    let e = err(&with(
        "dataset = \"fashion-mnist\"",
        &format!("dataset = \"{long}\""),
    ));
    assert!(e.message.len() < 400, "{} characters", e.message.len());
    assert!(e.message.contains("xxxx…xxxx"), "{e}");
}

/// The rules between keys are checked while other keys are wrong: a file with one mistake of each
/// kind gets every one in one report (a newcomer's copy of a reference that sets every key).
#[test]
fn the_rules_between_keys_are_all_reported_at_once() {
    let text = GOOD
        .replacen(
            "train_subset = 500\n",
            "train_subset = 500\nimage_size = 32\n",
            1,
        )
        .replacen("lr = 0.001\n", "lr = 0.001\nweights = \"w.pt\"\n", 1)
        .replacen(
            "[student]\nepochs = 2\n",
            "[student]\nepochs = 2\nmodel = \"resnet8\"\n",
            1,
        )
        .replacen(
            "alpha = [0, 0.5, 1]\n",
            "alpha = [0, 0.5, 1]\nstudent_model = [\"resnet8\"]\nteacher_epoch = [5]\n\
             [grid.dkd]\nbeta = [2]\n[grid.dist]\nbeta = [2]\n",
            1,
        );
    let keys: Vec<String> = errs(&text)
        .iter()
        .map(|e| e.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "data.image_size",
            "teacher.weights",
            "student.model",
            "grid.teacher_epoch",
            "grid.dkd",
            "grid.dist"
        ],
        "{}",
        errs(&text)
    );
}

/// What the rules between keys read is what was written: a stand-in for a value of the wrong type
/// (`epochs = "10"`) is not checked against `teacher_epoch`, and a missing top-level key is not
/// named after the table on line 1.
#[test]
fn the_rules_between_keys_read_no_stand_in_and_the_root_names_no_table() {
    let text = with("epochs = 1", "epochs = \"10\"").replacen(
        "alpha = [0, 0.5, 1]\n",
        "alpha = [0, 0.5, 1]\nteacher_epoch = [5]\n",
        1,
    );
    let keys: Vec<Option<String>> = errs(&text).iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        [Some("teacher.epochs".to_string())],
        "{}",
        errs(&text)
    );
    let headless = GOOD.replacen("\nname = \"t\"\nseeds = [0, 1]\n\n", "", 1);
    assert!(headless.starts_with("[data]"), "{headless}");
    let e = errs(&headless);
    let fields: Vec<&str> = e
        .iter()
        .map(|e| e.message.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(fields, ["name", "seeds"], "{e}");
    assert!(e.iter().all(|e| e.key.is_none()), "{e}");
}
