//! CIFAR-10 and CIFAR-100, both releases of each. CIFAR-10: binary (`data_batch_1.bin` …
//! `data_batch_5.bin`, `test_batch.bin`; each record a label byte then 3×32×32 channel-major pixels) and
//! python (`data_batch_1` … `test_batch`, pickled dicts with `data`, a uint8 array of N×3072, and
//! `labels`). CIFAR-100: binary (`train.bin`, `test.bin`; each record a coarse and a fine label byte,
//! then the pixels) and python (`train`, `test`, with `data`, `fine_labels` and `coarse_labels`); the
//! fine labels (100 classes) are the ones read.

use super::{read_maybe_gz, DataError, Label, Pixels, RawImages};
use crate::pickle;
use sha2::Sha256;
use std::path::{Path, PathBuf};

const IMAGE: usize = 3 * 32 * 32;

/// What tells the two datasets' files apart.
pub struct Variant {
    name: &'static str,
    /// The folders the releases unpack to (binary, python).
    folders: [&'static str; 2],
    train: &'static [&'static str],
    test: &'static str,
    /// Label bytes before each binary record's pixels; the last one is the label read.
    label_bytes: usize,
    /// The python release's key of the labels read.
    label_key: &'static str,
}

pub const CIFAR10: Variant = Variant {
    name: "CIFAR-10",
    folders: ["cifar-10-batches-bin", "cifar-10-batches-py"],
    train: &[
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
    ],
    test: "test_batch",
    label_bytes: 1,
    label_key: "labels",
};

pub const CIFAR100: Variant = Variant {
    name: "CIFAR-100",
    folders: ["cifar-100-binary", "cifar-100-python"],
    train: &["train"],
    test: "test",
    label_bytes: 2,
    label_key: "fine_labels",
};

enum Release {
    Binary(PathBuf),
    Python(PathBuf),
}

/// Accepts the release folder itself or a folder holding the release folders.
fn locate(dir: &Path, v: &Variant) -> Option<Release> {
    for d in [
        dir.to_path_buf(),
        dir.join(v.folders[0]),
        dir.join(v.folders[1]),
    ] {
        if d.join(format!("{}.bin", v.test)).is_file() {
            return Some(Release::Binary(d));
        }
        if d.join(v.test).is_file() {
            return Some(Release::Python(d));
        }
    }
    None
}

pub fn read_dir(
    dir: &Path,
    v: &Variant,
    hasher: &mut Sha256,
) -> Result<(RawImages, RawImages), DataError> {
    let binary = |p: &Path, b: &[u8]| read_binary(p, b, v);
    let python = |p: &Path, b: &[u8]| read_python(p, b, v);
    let files = |d: &Path, names: &[&str], ext: &str| -> Vec<PathBuf> {
        names.iter().map(|f| d.join(format!("{f}{ext}"))).collect()
    };
    let (train, test) = match locate(dir, v) {
        Some(Release::Binary(d)) => (
            read_files(&files(&d, v.train, ".bin"), v, hasher, &binary)?,
            read_files(&files(&d, &[v.test], ".bin"), v, hasher, &binary)?,
        ),
        Some(Release::Python(d)) => (
            read_files(&files(&d, v.train, ""), v, hasher, &python)?,
            read_files(&files(&d, &[v.test], ""), v, hasher, &python)?,
        ),
        None => {
            return Err(DataError::new(
                dir,
                format!(
                    "no {} here: expected {}.bin and {}.bin … (binary release) or {} and {} … \
                     (python release), in this folder or in {}/ or {}/",
                    v.name, v.test, v.train[0], v.test, v.train[0], v.folders[0], v.folders[1]
                ),
            ))
        }
    };
    Ok((train, test))
}

/// Pixels and labels of one batch file.
type Batch = (Vec<u8>, Vec<Label>);

/// Decodes one batch file (its path, for errors, and its bytes).
type Decode<'a> = &'a dyn Fn(&Path, &[u8]) -> Result<Batch, DataError>;

fn read_files(
    paths: &[PathBuf],
    v: &Variant,
    hasher: &mut Sha256,
    one: Decode,
) -> Result<RawImages, DataError> {
    let (mut n, mut pixels, mut labels) = (0, Vec::new(), Vec::new());
    for p in paths {
        if !p.is_file() {
            return Err(DataError::new(
                p,
                format!(
                    "missing; {} has {} training file(s) ({}) and one test file ({})",
                    v.name,
                    v.train.len(),
                    v.train.join(", "),
                    v.test
                ),
            ));
        }
        let (px, lb) = one(p, &read_maybe_gz(p, hasher)?)?;
        n += lb.len();
        pixels.extend_from_slice(&px);
        labels.extend_from_slice(&lb);
    }
    Ok(RawImages {
        n,
        c: 3,
        h: 32,
        w: 32,
        pixels: Pixels::U8(pixels),
        labels,
    })
}

fn read_binary(path: &Path, bytes: &[u8], v: &Variant) -> Result<Batch, DataError> {
    let record = v.label_bytes + IMAGE;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::new(path, format!("{} bytes is not a whole number of {record}-byte {} records; the file is truncated or not {}", bytes.len(), v.name, v.name)));
    }
    let mut px = Vec::with_capacity(bytes.len() / record * IMAGE);
    let mut lb = Vec::with_capacity(bytes.len() / record);
    for rec in bytes.chunks_exact(record) {
        lb.push(Label::from(rec[v.label_bytes - 1]));
        px.extend_from_slice(&rec[v.label_bytes..]);
    }
    Ok((px, lb))
}

fn read_python(path: &Path, bytes: &[u8], v: &Variant) -> Result<Batch, DataError> {
    let bad = |m: String| {
        DataError::new(
            path,
            format!(
                "{m}; expected a {} python batch (a pickled dict with `data` and `{}`)",
                v.name, v.label_key
            ),
        )
    };
    let pickled = pickle::load(bytes).map_err(|e| bad(format!("cannot unpickle: {e}")))?;
    let data = pickled
        .dict_get("data")
        .ok_or_else(|| bad("no `data` key".into()))?;
    let labels = pickled
        .dict_get(v.label_key)
        .ok_or_else(|| bad(format!("no `{}` key", v.label_key)))?;
    let (shape, raw) = data
        .ndarray_u8()
        .ok_or_else(|| bad("`data` is not a uint8 array".into()))?;
    let labels: Vec<Label> = labels
        .int_list()
        .ok_or_else(|| bad(format!("`{}` is not a list of integers", v.label_key)))?
        .into_iter()
        .map(|l| Label::try_from(l).unwrap_or(Label::MAX))
        .collect();
    if shape.len() != 2
        || shape[1] != IMAGE
        || shape[0] != labels.len()
        || raw.len() != shape[0] * IMAGE
    {
        return Err(bad(format!(
            "`data` has shape {shape:?} ({} bytes) for {} labels, not N×{IMAGE}",
            raw.len(),
            labels.len()
        )));
    }
    Ok((raw.to_vec(), labels))
}
