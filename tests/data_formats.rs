//! Each dataset reader on small files made here in the real formats, and bad files.

use kd_sweep::config::DatasetKind;
use kd_sweep::data::{self, write};
use std::path::Path;

mod common;

fn mnist_like(dir: &Path, gz: bool) -> (Vec<u8>, Vec<u8>) {
    let train_px: Vec<u8> = (0..5 * 8 * 8).map(|i| (i * 7 % 256) as u8).collect();
    let train_lb = vec![3, 1, 4, 1, 5];
    let test_px: Vec<u8> = (0..2 * 8 * 8).map(|i| (i % 256) as u8).collect();
    write::mnist_dir(dir, 8, 8, (&train_px, &train_lb), (&test_px, &[9, 2]), gz).unwrap();
    (train_px, train_lb)
}

#[test]
fn idx_raw_and_gzipped_read_the_same() {
    for gz in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let (px, lb) = mnist_like(d.path(), gz);
        let raw = data::read(DatasetKind::Mnist, d.path()).unwrap();
        assert_eq!(
            (raw.train.n, raw.train.c, raw.train.h, raw.train.w),
            (5, 1, 8, 8)
        );
        assert_eq!(raw.train.pixels.as_u8().unwrap(), px);
        assert!(raw
            .train
            .labels
            .iter()
            .copied()
            .eq(lb.iter().map(|&l| l as u16)));
        assert_eq!(raw.test.labels, vec![9, 2]);
    }
}

#[test]
fn fingerprint_follows_file_contents() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    mnist_like(a.path(), false);
    mnist_like(b.path(), false);
    let fa = data::read(DatasetKind::Mnist, a.path())
        .unwrap()
        .fingerprint;
    assert_eq!(
        fa,
        data::read(DatasetKind::Mnist, b.path())
            .unwrap()
            .fingerprint
    );
    write::idx(
        &b.path().join("t10k-labels-idx1-ubyte"),
        &[2],
        &[9, 3],
        false,
    )
    .unwrap();
    assert_ne!(
        fa,
        data::read(DatasetKind::Mnist, b.path())
            .unwrap()
            .fingerprint
    );
}

#[test]
fn cifar_binary_release() {
    let d = tempfile::tempdir().unwrap();
    write::cifar_dir(d.path(), 3, 2, false, 5).unwrap();
    let raw = data::read(DatasetKind::Cifar10, d.path()).unwrap();
    assert_eq!(
        (
            raw.train.n,
            raw.train.c,
            raw.train.h,
            raw.train.w,
            raw.test.n
        ),
        (15, 3, 32, 32, 2)
    );
    assert_eq!(&raw.train.labels[..4], &[0, 1, 2, 0]);
    // the second record of data_batch_1.bin starts at byte 3073 with its label, then its pixels
    let bytes = std::fs::read(d.path().join("data_batch_1.bin")).unwrap();
    assert_eq!(bytes[3073] as u16, raw.train.labels[1]);
    assert_eq!(
        &bytes[3074..3074 + 3072],
        &raw.train.pixels.as_u8().unwrap()[3072..6144]
    );
}

#[test]
fn cifar_python_release_as_our_writer_makes_it() {
    let root = tempfile::tempdir().unwrap();
    let py = root.path().join("cifar-10-batches-py");
    std::fs::create_dir(&py).unwrap();
    write::cifar_dir(&py, 3, 2, true, 5).unwrap();
    let bin = tempfile::tempdir().unwrap();
    write::cifar_dir(bin.path(), 3, 2, false, 5).unwrap();
    // the parent folder is accepted too, and both releases decode to the same images
    let a = data::read(DatasetKind::Cifar10, root.path()).unwrap();
    let b = data::read(DatasetKind::Cifar10, bin.path()).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
}

#[test]
fn cifar_python_release_made_by_real_numpy() {
    // tests/fixtures/make_cifar_py.py wrote these with numpy + pickle (protocols 2 and 5)
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar10-py-numpy");
    let raw = data::read(DatasetKind::Cifar10, &dir).unwrap();
    assert_eq!((raw.train.n, raw.test.n), (10, 2));
    for (name, split, offset) in [
        ("data_batch_1", &raw.train, 0),
        ("data_batch_3", &raw.train, 4),
        ("test_batch", &raw.test, 0),
    ] {
        matches_expect(&dir, name, split, offset, 2);
    }
}

/// Checks `count` images of `split` from `offset` against `<name>.expect`, which the fixture's numpy
/// script wrote: their labels, the first 4 pixel bytes of each, and the sum of their pixels.
fn matches_expect(dir: &Path, name: &str, split: &data::RawImages, offset: usize, count: usize) {
    let expect = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
    let mut lines = expect.lines();
    let nums = |l: &str| -> Vec<u64> { l.split(' ').map(|v| v.parse().unwrap()).collect() };
    let wide = |b: &[u8]| -> Vec<u64> { b.iter().map(|&v| v as u64).collect() };
    let labels: Vec<u64> = (split.labels[offset..offset + count].iter())
        .map(|&l| l as u64)
        .collect();
    assert_eq!(labels, nums(lines.next().unwrap()), "{name}: labels");
    let first = nums(lines.next().unwrap());
    for img in 0..count {
        let at = (offset + img) * 3072;
        assert_eq!(
            wide(&split.pixels.as_u8().unwrap()[at..at + 4]),
            first[img * 4..img * 4 + 4],
            "{name} image {img}"
        );
    }
    let sum: u64 = lines.next().unwrap().parse().unwrap();
    let pixels = &split.pixels.as_u8().unwrap()[offset * 3072..(offset + count) * 3072];
    assert_eq!(wide(pixels).iter().sum::<u64>(), sum, "{name}: pixel sum");
}

fn read_err(kind: DatasetKind, dir: &Path) -> String {
    data::read(kind, dir)
        .expect_err("should be rejected")
        .to_string()
}

#[test]
fn missing_folder_says_how_to_install() {
    let e = read_err(DatasetKind::FashionMnist, Path::new("/nonexistent/fm"));
    assert!(
        e.contains("/nonexistent/fm")
            && e.contains("apt-get install dataset-fashion-mnist")
            && e.contains("data.path"),
        "{e}"
    );
}

#[test]
fn bad_idx_files_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    mnist_like(d.path(), false);
    let labels = d.path().join("train-labels-idx1-ubyte");
    let images = d.path().join("train-images-idx3-ubyte");
    // wrong magic
    let good = std::fs::read(&labels).unwrap();
    let mut bad = good.clone();
    bad[3] = 3;
    std::fs::write(&labels, &bad).unwrap();
    let e = read_err(DatasetKind::Mnist, d.path());
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("magic"),
        "{e}"
    );
    // counts that disagree
    write::idx(&labels, &[4], &[1, 2, 3, 4], false).unwrap();
    let e = read_err(DatasetKind::Mnist, d.path());
    assert!(e.contains("4 labels") && e.contains("5 images"), "{e}");
    std::fs::write(&labels, &good).unwrap();
    // truncated
    let img = std::fs::read(&images).unwrap();
    std::fs::write(&images, &img[..img.len() - 10]).unwrap();
    let e = read_err(DatasetKind::Mnist, d.path());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );
    std::fs::write(&images, &img[..6]).unwrap();
    assert!(read_err(DatasetKind::Mnist, d.path()).contains("truncated"));
    // a missing file
    std::fs::remove_file(&images).unwrap();
    let e = read_err(DatasetKind::Mnist, d.path());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn corrupt_gzip_and_out_of_range_labels() {
    let d = tempfile::tempdir().unwrap();
    mnist_like(d.path(), true);
    let p = d.path().join("t10k-images-idx3-ubyte.gz");
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len();
    b[n / 2] ^= 0xff;
    b.truncate(n - 4);
    std::fs::write(&p, &b).unwrap();
    let e = read_err(DatasetKind::Mnist, d.path());
    assert!(
        e.contains("t10k-images-idx3-ubyte.gz") && e.contains("gzip"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    mnist_like(d.path(), false);
    write::idx(
        &d.path().join("t10k-labels-idx1-ubyte"),
        &[2],
        &[9, 12],
        false,
    )
    .unwrap();
    assert!(read_err(DatasetKind::Mnist, d.path()).contains("12"));
}

#[test]
fn cifar_file_of_partial_records() {
    let d = tempfile::tempdir().unwrap();
    write::cifar_dir(d.path(), 2, 2, false, 1).unwrap();
    let p = d.path().join("data_batch_4.bin");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 100]).unwrap();
    let e = read_err(DatasetKind::Cifar10, d.path());
    assert!(
        e.contains("data_batch_4.bin") && e.contains("whole number"),
        "{e}"
    );
    let e = read_err(DatasetKind::Cifar10, Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(e.contains("no CIFAR-10 here"), "{e}");
}

#[test]
fn cifar100_binary_release_reads_the_fine_labels() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("cifar-100-binary");
    std::fs::create_dir(&d).unwrap();
    write::cifar100_dir(&d, 205, 3, false, 5).unwrap();
    // the folder above the release is accepted too
    let raw = data::read(DatasetKind::Cifar100, root.path()).unwrap();
    assert_eq!(raw.classes, 100);
    assert_eq!(
        (
            raw.train.n,
            raw.train.c,
            raw.train.h,
            raw.train.w,
            raw.test.n
        ),
        (205, 3, 32, 32, 3)
    );
    // fine labels 0..100 (the coarse byte before each is not read)
    assert_eq!(&raw.train.labels[98..102], &[98, 99, 0, 1]);
    // the second record of train.bin: coarse, fine, then its pixels
    let bytes = std::fs::read(d.join("train.bin")).unwrap();
    assert_eq!((bytes[3074], bytes[3075] as u16), (0, raw.train.labels[1]));
    assert_eq!(
        &bytes[3076..3076 + 3072],
        &raw.train.pixels.as_u8().unwrap()[3072..6144]
    );
}

#[test]
fn cifar100_python_release_as_our_writer_makes_it() {
    let py = tempfile::tempdir().unwrap();
    write::cifar100_dir(py.path(), 7, 3, true, 5).unwrap();
    let bin = tempfile::tempdir().unwrap();
    write::cifar100_dir(bin.path(), 7, 3, false, 5).unwrap();
    let (a, b) = (
        data::read(DatasetKind::Cifar100, py.path()).unwrap(),
        data::read(DatasetKind::Cifar100, bin.path()).unwrap(),
    );
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
}

#[test]
fn cifar100_python_release_made_by_real_numpy() {
    // tests/fixtures/make_cifar100_py.py wrote these with numpy 2.4 + pickle (protocols 2 and 5)
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar100-py-numpy");
    let raw = data::read(DatasetKind::Cifar100, &dir).unwrap();
    assert_eq!((raw.train.n, raw.test.n), (3, 2));
    for (name, split) in [("train", &raw.train), ("test", &raw.test)] {
        matches_expect(&dir, name, split, 0, split.n);
    }
}

#[test]
fn bad_cifar100_files_are_named_with_what_is_wrong() {
    // a CIFAR-10 folder is not CIFAR-100
    let ten = tempfile::tempdir().unwrap();
    write::cifar_dir(ten.path(), 2, 2, false, 1).unwrap();
    let e = read_err(DatasetKind::Cifar100, ten.path());
    assert!(
        e.contains("no CIFAR-100 here") && e.contains("test.bin"),
        "{e}"
    );
    // a truncated record
    let d = tempfile::tempdir().unwrap();
    write::cifar100_dir(d.path(), 3, 2, false, 1).unwrap();
    let p = d.path().join("train.bin");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    let e = read_err(DatasetKind::Cifar100, d.path());
    assert!(
        e.contains("train.bin") && e.contains("3074-byte CIFAR-100 records"),
        "{e}"
    );
    // the training file missing
    std::fs::remove_file(&p).unwrap();
    let e = read_err(DatasetKind::Cifar100, d.path());
    assert!(e.contains("train.bin") && e.contains("missing"), "{e}");
    // a fine label beyond 99
    write::cifar100_dir(d.path(), 3, 2, false, 1).unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[1] = 150;
    std::fs::write(&p, bytes).unwrap();
    let e = read_err(DatasetKind::Cifar100, d.path());
    assert!(e.contains("150") && e.contains("0..100"), "{e}");
}

/// The folder's sweep: one epoch each, one cell, on the CPU.
fn tiny_sweep(c: &common::Case, name: &str, data: &str) -> std::path::PathBuf {
    c.sweep(
        name,
        &format!(
            "seeds = [0]\n[data]\n{data}\n[teacher]\nepochs = 1\nbatch_size = 8\nlr = 0.001\n\
             [student]\nepochs = 1\nbatch_size = 8\nlr = 0.001\n[grid]\ntemperature = [4]\nalpha = [0.5]\n"
        ),
    )
}

#[test]
fn a_folder_dataset_trains_end_to_end_and_reports_without_its_data() {
    let c = common::Case::new(20, 10);
    let imgs = c.path("imgs");
    write::synthetic_folder(&imgs, &["zebra", "Ant", "bee"], &[12, 4], (3, 8, 8), 1).unwrap();
    tiny_sweep(
        &c,
        "f",
        "dataset = \"folder\"\npath = \"imgs\"\nvalidation = 6\nimage_size = 8",
    );
    let o = c.run(&["plan", "f.toml", "--results", "out"]);
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        plan.contains("3 classes: Ant, bee, zebra") && plan.contains("3×8×8"),
        "{plan}"
    );
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        said.contains("imgs: decoding 48 images (once decoded, kept in "),
        "{said}"
    );
    let o = c.run(&["f.toml", "--results", "out"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !said.contains("decoding"),
        "plan's read decoded them: {said}"
    );
    let rows = common::csv_rows(&c.path("out/f/runs.csv"));
    assert_eq!(rows.len(), 3, "teacher, baseline, student");
    let cached: Vec<String> = (std::fs::read_dir(c.path("out/.cache/data")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert_eq!(cached.len(), 1, "decoded once, cached: {cached:?}");
    let manifest = std::fs::read_to_string(c.path("out/f/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"zebra\""),
        "the class names are in the manifest"
    );
    // the report needs the results only
    std::fs::remove_dir_all(&imgs).unwrap();
    let o = c.run(&["report", "out/f"]);
    assert!(o.status.success(), "{}", common::text(&o));
}

/// Also past a byte's labels: 300 classes, every one in y_train.
#[test]
fn a_tensors_dataset_with_its_own_hold_out_trains_end_to_end() {
    let c = common::Case::new(20, 10);
    let mut rng = kd_sweep::rng::SplitMix64::new(4);
    let (train, k) = (300usize, 300i64);
    let n = train + 16;
    let x: Vec<u8> = (0..n * 64).map(|_| rng.next_u64() as u8).collect();
    let y: Vec<i64> = (0..n as i64).map(|i| (i * 7) % k).collect();
    let (xs, ys) = (
        |a: usize, b: usize| &x[a * 64..b * 64],
        |a: usize, b: usize| &y[a..b],
    );
    let t = train;
    write::safetensors_file(
        &c.path("d.safetensors"),
        &[
            ("x_train", write::Array::U8(xs(0, t)), &[t, 8, 8]),
            ("y_train", write::Array::I64(ys(0, t)), &[t]),
            ("x_test", write::Array::U8(xs(t, t + 8)), &[8, 8, 8]),
            ("y_test", write::Array::I64(ys(t, t + 8)), &[8]),
            ("x_val", write::Array::U8(xs(t + 8, n)), &[8, 1, 8, 8]),
            ("y_val", write::Array::I64(ys(t + 8, n)), &[8]),
        ],
    )
    .unwrap();
    tiny_sweep(
        &c,
        "t",
        "dataset = \"tensors\"\npath = \"d.safetensors\"\nmean = [0.5]\nstd = [0.25]",
    );
    let o = c.run(&["plan", "t.toml", "--results", "out"]);
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        plan.contains("own validation split") && plan.contains("300 classes"),
        "{plan}"
    );
    let o = c.run(&["t.toml", "--results", "out"]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert_eq!(common::csv_rows(&c.path("out/t/runs.csv")).len(), 3);
    let o = c.run(&["models", "--dataset", "tensors", "--data", "d.safetensors"]);
    let models = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && models.contains("1×8×8 images, 300 classes"),
        "{models}"
    );
}

/// A broken tensors file exits as the README's "Bad input" says: what `kd-sweep plan` finds in its
/// array headers and labels while checking the sweep file (a truncated array, a missing one, labels
/// that disagree with the images or are out of range) at `data.path` with code 2; a NaN in float32
/// images, found when the images are read, with code 1. Nothing is written either way.
#[test]
fn a_broken_tensors_file_exits_with_the_readme_s_codes() {
    let c = common::Case::new(20, 10);
    let (n, t) = (40usize, 8usize);
    let x: Vec<u8> = (0..(n + t) * 64).map(|i| (i * 31 % 251) as u8).collect();
    let y: Vec<i64> = (0..(n + t) as i64).map(|i| i % 4).collect();
    let mut bad_label = y.clone();
    bad_label[3] = -1;
    let floats: Vec<f32> = x.iter().map(|&v| v as f32 / 255.0).collect();
    let mut nan = floats.clone();
    nan[70] = f32::NAN;
    let file = |name: &str, xs: write::Array, ys: &[i64]| {
        let (train, test) = match xs {
            write::Array::U8(v) => (
                write::Array::U8(&v[..n * 64]),
                write::Array::U8(&v[n * 64..]),
            ),
            write::Array::F32(v) => (
                write::Array::F32(&v[..n * 64]),
                write::Array::F32(&v[n * 64..]),
            ),
            _ => unreachable!(),
        };
        let path = c.path(name);
        write::safetensors_file(
            &path,
            &[
                ("x_train", train, &[n, 8, 8]),
                ("y_train", write::Array::I64(&ys[..n]), &[n]),
                ("x_test", test, &[t, 8, 8]),
                ("y_test", write::Array::I64(&ys[n..]), &[t]),
            ],
        )
        .unwrap();
        path
    };
    let truncated = file("truncated.safetensors", write::Array::U8(&x), &y);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    file("label.safetensors", write::Array::U8(&x), &bad_label);
    file("nan.safetensors", write::Array::F32(&nan), &y);
    for (name, code, says) in [
        ("truncated", 2, "ends past the file's end"),
        ("label", 2, "array y_train has label -1"),
        (
            "nan",
            1,
            "array x_train holds NaN (image 1, element 6 of its 64)",
        ),
    ] {
        let data = format!("dataset = \"tensors\"\npath = \"{name}.safetensors\"\nvalidation = 8");
        tiny_sweep(&c, name, &data);
        let o = c.run(&["plan", &format!("{name}.toml"), "--results", "out"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{name}: {}", common::text(&o));
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.contains("`data.path`: "), code == 2, "{name}: {err}");
    }
    assert!(!c.path("out").exists(), "nothing written");
}

/// Each run's key in `kd-sweep plan --json`.
fn keys(c: &common::Case, file: &str) -> Vec<(String, String)> {
    let o = c.run(&["plan", file, "--json", "--results", "out"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    let at = |n: &serde_json::Value, k: &str| n[k].as_str().unwrap().to_string();
    nodes.iter().map(|n| (at(n, "id"), at(n, "key"))).collect()
}

#[test]
fn given_mean_and_std_change_every_key_and_their_absence_none() {
    let c = common::Case::new(60, 20);
    tiny_sweep(
        &c,
        "a",
        "dataset = \"mnist\"\npath = \"data\"\nvalidation = 20",
    );
    tiny_sweep(
        &c,
        "b",
        "dataset = \"mnist\"\npath = \"data\"\nvalidation = 20\nmean = [0.1307]\nstd = [0.3081]",
    );
    let (a, b) = (keys(&c, "a.toml"), keys(&c, "b.toml"));
    assert_eq!(a.len(), 3);
    for ((ida, ka), (idb, kb)) in a.iter().zip(&b) {
        assert_eq!(ida, idb);
        assert_ne!(ka, kb, "{ida}: the given normalisation is part of the key");
    }
    // the same file again, and one that writes nothing new: the same keys (the golden test pins them)
    tiny_sweep(
        &c,
        "a2",
        "dataset = \"mnist\"\npath = \"data\"\nvalidation = 20\n",
    );
    assert_eq!(keys(&c, "a2.toml"), a);
}

#[test]
fn bad_data_is_found_by_plan_before_anything_is_written() {
    let c = common::Case::new(20, 10);
    let imgs = c.path("imgs");
    write::synthetic_folder(&imgs, &["a", "b"], &[4, 2], (3, 8, 8), 2).unwrap();
    tiny_sweep(
        &c,
        "f",
        "dataset = \"folder\"\npath = \"imgs\"\nvalidation = 2",
    );
    // a truncated image: a data error (exit 1) naming it
    let p = imgs.join("train/b/003.png");
    let good = std::fs::read(&p).unwrap();
    std::fs::write(&p, &good[..40]).unwrap();
    let o = c.run(&["plan", "f.toml", "--results", "out"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("train/b/003.png"), "{err}");
    std::fs::write(&p, &good).unwrap();
    // mean and std of the wrong length for 3 channels: a config error at data.mean
    tiny_sweep(
        &c,
        "g",
        "dataset = \"folder\"\npath = \"imgs\"\nvalidation = 2\nmean = [0.5]\nstd = [0.5]",
    );
    let o = c.run(&["plan", "g.toml", "--results", "out"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("g.toml:") && err.contains("`data.mean`") && err.contains("3 channel"),
        "{err}"
    );
    assert!(!c.path("out").exists(), "nothing written");
}
