//! CIFAR-10, both releases: binary (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`; each
//! record a label byte then 3×32×32 channel-major pixels) and python (`data_batch_1` … `test_batch`,
//! pickled dicts with `data`, a uint8 array of N×3072, and `labels`).

use super::{pickle, read_maybe_gz, DataError, RawImages};
use sha2::Sha256;
use std::path::{Path, PathBuf};

const IMAGE: usize = 3 * 32 * 32;
const RECORD: usize = 1 + IMAGE;
const TRAIN: [&str; 5] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
];

enum Release {
    Binary(PathBuf),
    Python(PathBuf),
}

/// Accepts the release folder itself or a folder holding `cifar-10-batches-bin` / `-py`.
fn locate(dir: &Path) -> Option<Release> {
    for d in [
        dir.to_path_buf(),
        dir.join("cifar-10-batches-bin"),
        dir.join("cifar-10-batches-py"),
    ] {
        if d.join("test_batch.bin").is_file() {
            return Some(Release::Binary(d));
        }
        if d.join("test_batch").is_file() {
            return Some(Release::Python(d));
        }
    }
    None
}

pub fn read_dir(dir: &Path, hasher: &mut Sha256) -> Result<(RawImages, RawImages), DataError> {
    let (train, test) = match locate(dir) {
        Some(Release::Binary(d)) => (
            read_files(&TRAIN.map(|f| d.join(format!("{f}.bin"))), hasher, read_binary)?,
            read_files(&[d.join("test_batch.bin")], hasher, read_binary)?,
        ),
        Some(Release::Python(d)) => (
            read_files(&TRAIN.map(|f| d.join(f)), hasher, read_python)?,
            read_files(&[d.join("test_batch")], hasher, read_python)?,
        ),
        None => {
            return Err(DataError::new(dir, "no CIFAR-10 here: expected test_batch.bin and data_batch_1.bin … (binary release) \
                 or test_batch and data_batch_1 … (python release), in this folder or in cifar-10-batches-bin/ or cifar-10-batches-py/"))
        }
    };
    Ok((train, test))
}

/// Pixels and labels of one batch file.
type Batch = (Vec<u8>, Vec<u8>);

fn read_files(
    paths: &[PathBuf],
    hasher: &mut Sha256,
    one: fn(&Path, &[u8]) -> Result<Batch, DataError>,
) -> Result<RawImages, DataError> {
    let mut out = RawImages {
        n: 0,
        c: 3,
        h: 32,
        w: 32,
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for p in paths {
        if !p.is_file() {
            return Err(DataError::new(
                p,
                "missing; CIFAR-10 has five training batches and one test batch",
            ));
        }
        let (px, lb) = one(p, &read_maybe_gz(p, hasher)?)?;
        out.n += lb.len();
        out.pixels.extend_from_slice(&px);
        out.labels.extend_from_slice(&lb);
    }
    Ok(out)
}

fn read_binary(path: &Path, bytes: &[u8]) -> Result<Batch, DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::new(path, format!("{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records; the file is truncated or not CIFAR-10", bytes.len())));
    }
    let mut px = Vec::with_capacity(bytes.len() / RECORD * IMAGE);
    let mut lb = Vec::with_capacity(bytes.len() / RECORD);
    for rec in bytes.chunks_exact(RECORD) {
        lb.push(rec[0]);
        px.extend_from_slice(&rec[1..]);
    }
    Ok((px, lb))
}

fn read_python(path: &Path, bytes: &[u8]) -> Result<Batch, DataError> {
    let bad = |m: String| {
        DataError::new(
            path,
            format!(
                "{m}; expected a CIFAR-10 python batch (a pickled dict with `data` and `labels`)"
            ),
        )
    };
    let v = pickle::load(bytes).map_err(|e| bad(format!("cannot unpickle: {e}")))?;
    let data = v
        .dict_get("data")
        .ok_or_else(|| bad("no `data` key".into()))?;
    let labels = v
        .dict_get("labels")
        .ok_or_else(|| bad("no `labels` key".into()))?;
    let (shape, raw) = data
        .ndarray_u8()
        .ok_or_else(|| bad("`data` is not a uint8 array".into()))?;
    let labels: Vec<u8> = labels
        .int_list()
        .ok_or_else(|| bad("`labels` is not a list of integers".into()))?
        .into_iter()
        .map(|l| u8::try_from(l).unwrap_or(u8::MAX))
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
