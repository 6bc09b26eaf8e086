//! Datasets: readers for the real on-disk formats (IDX raw or gzipped; CIFAR-10 binary and python
//! releases), the seeded validation hold-out and subsets, and per-channel normalization into tensors
//! that are loaded once and indexed per batch.

mod cifar;
mod idx;
pub mod write;

use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// A problem with dataset files: names the file and says what to do. Exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DataError {
    pub path: PathBuf,
    pub message: String,
}

impl DataError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Images as stored: `n` images of `c×h×w` bytes (channel-major), and one label byte each.
#[derive(Debug, Clone, PartialEq)]
pub struct RawImages {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl RawImages {
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// A whole dataset as read from disk, with a hash of the files it came from.
#[derive(Debug, Clone)]
pub struct RawDataset {
    pub kind: DatasetKind,
    pub train: RawImages,
    pub test: RawImages,
    pub classes: usize,
    /// SHA-256 over the files' names and bytes: identifies the data in cache keys.
    pub fingerprint: String,
}

/// Reads a dataset from `dir` in its real on-disk format.
pub fn read(kind: DatasetKind, dir: &Path) -> Result<RawDataset, DataError> {
    if !dir.is_dir() {
        let hint = match kind {
            DatasetKind::FashionMnist => format!(
                "install it with `sudo apt-get install dataset-fashion-mnist` (or `make setup`), \
                 or set `data.path` to a folder holding the four IDX files ({})",
                idx::FILES.join(", ")
            ),
            DatasetKind::Mnist => format!("set `data.path` to a folder holding the four MNIST IDX files ({}), gzipped or not", idx::FILES.join(", ")),
            DatasetKind::Cifar10 => "set `data.path` to the CIFAR-10 binary release (cifar-10-batches-bin: data_batch_1.bin … test_batch.bin) \
                 or the python release (cifar-10-batches-py)"
                .to_string(),
            DatasetKind::Cifar100 => "set `data.path` to the CIFAR-100 binary release (cifar-100-binary: train.bin, test.bin) \
                 or the python release (cifar-100-python: train, test)"
                .to_string(),
        };
        return Err(DataError::new(
            dir,
            format!("{} dataset not found (no such folder); {hint}", kind.name()),
        ));
    }
    let mut hasher = Sha256::new();
    let (train, test) = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => idx::read_dir(dir, &mut hasher)?,
        DatasetKind::Cifar10 => cifar::read_dir(dir, &cifar::CIFAR10, &mut hasher)?,
        DatasetKind::Cifar100 => cifar::read_dir(dir, &cifar::CIFAR100, &mut hasher)?,
    };
    let classes = kind.classes();
    for (split, file) in [(&train, "training"), (&test, "test")] {
        if let Some(bad) = split.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(DataError::new(
                dir,
                format!(
                    "a {file} label is {bad}, outside 0..{classes}; the files are not {}",
                    kind.name()
                ),
            ));
        }
    }
    Ok(RawDataset {
        kind,
        train,
        test,
        classes,
        fingerprint: crate::util::hex(&hasher.finalize()),
    })
}

/// Reads a file, un-gzipping it when it starts with the gzip magic; feeds the stored bytes to `hasher`.
pub(crate) fn read_maybe_gz(path: &Path, hasher: &mut Sha256) -> Result<Vec<u8>, DataError> {
    let bytes =
        std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    hasher.update(
        path.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(&bytes);
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        use std::io::Read;
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::new(
                    path,
                    format!("corrupt gzip stream ({e}); re-download or re-install the file"),
                )
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Row positions of each split, drawn once per sweep from `split_seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// The hold-out is a seeded random draw (not stratified) of `validation` training images; the training
/// subset is the first `train_subset` of the rest, the test subset a seeded draw from the test set.
/// Sizes must already be checked ([`crate::config::check_sizes`]).
pub fn split_indices(cfg: &DataConfig, n_train: usize, n_test: usize) -> SplitIndices {
    // The split is part of every teacher's identity but not spelled out in its cache key: changing
    // this constant or the draws below changes every split, so it must come with a MODEL_VERSION bump
    // (the golden test `split_is_pinned` fails first). Once, a clippy tidy-up silently changed it.
    let mut rng = SplitMix64::new(cfg.split_seed ^ 0x0005_EED0_F51D);
    let perm = rng.permutation(n_train);
    let val = perm[..cfg.validation].to_vec();
    let mut train = perm[cfg.validation..].to_vec();
    if let Some(k) = cfg.train_subset {
        train.truncate(k);
    }
    let test = match cfg.test_subset {
        Some(k) if k < n_test => {
            let mut t = rng.permutation(n_test);
            t.truncate(k);
            t
        }
        _ => (0..n_test).collect(),
    };
    SplitIndices { train, val, test }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    FashionMnist,
    Mnist,
    Cifar10,
    Cifar100,
}

impl DatasetKind {
    pub const NAMES: &'static str = "\"fashion-mnist\", \"mnist\", \"cifar10\" or \"cifar100\"";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fashion-mnist" => Some(Self::FashionMnist),
            "mnist" => Some(Self::Mnist),
            "cifar10" => Some(Self::Cifar10),
            "cifar100" => Some(Self::Cifar100),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
        }
    }

    /// An image's channels, height and width.
    pub fn image_shape(self) -> [i64; 3] {
        match self {
            Self::FashionMnist | Self::Mnist => [1, 28, 28],
            Self::Cifar10 | Self::Cifar100 => [3, 32, 32],
        }
    }

    /// Classes of the dataset's labels (every label is checked to be below it when the files are read).
    pub fn classes(self) -> usize {
        match self {
            Self::FashionMnist | Self::Mnist | Self::Cifar10 => 10,
            Self::Cifar100 => 100,
        }
    }

    /// Where the dataset is looked for when `data.path` is not given.
    pub fn default_path(self) -> PathBuf {
        PathBuf::from(match self {
            Self::FashionMnist => "/usr/share/datasets/fashion-mnist",
            Self::Mnist => "/usr/share/datasets/mnist",
            Self::Cifar10 => "/usr/share/datasets/cifar10",
            Self::Cifar100 => "/usr/share/datasets/cifar100",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    pub path: PathBuf,
    /// Training images held out for validation (a seeded random draw, not stratified).
    pub validation: usize,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Seed of the hold-out and subset draws; the same for every run of the sweep.
    pub split_seed: u64,
}

/// Normalized tensors of the three splits, ready for training on one device.
pub struct Dataset {
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub val_x: Tensor,
    pub val_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
    /// Channels, height, width.
    pub shape: [i64; 3],
    pub classes: i64,
    /// A black pixel after normalisation (−mean/std per channel, 1×C×1×1, on the dataset's device):
    /// the padding of [`crate::train::augment`]'s crops, as torchvision pads before normalising.
    pub black: Tensor,
}

impl Dataset {
    pub fn from_raw(raw: &RawDataset, cfg: &DataConfig, device: Device) -> Dataset {
        let idx = split_indices(cfg, raw.train.n, raw.test.n);
        let (mean, std) = channel_stats(&raw.train, &idx.train);
        let tr = &raw.train;
        let shape = [tr.c as i64, tr.h as i64, tr.w as i64];
        let to_tensor = |imgs: &RawImages, rows: &[usize]| {
            let len = imgs.image_len();
            let mut px = Vec::with_capacity(rows.len() * len);
            let mut ys = Vec::with_capacity(rows.len());
            for &r in rows {
                px.extend_from_slice(&imgs.pixels[r * len..(r + 1) * len]);
                ys.push(imgs.labels[r] as i64);
            }
            let x = Tensor::from_slice(&px)
                .view([rows.len() as i64, shape[0], shape[1], shape[2]])
                .to_kind(Kind::Float)
                / 255.0;
            let m = Tensor::from_slice(&mean.iter().map(|&v| v as f32).collect::<Vec<_>>())
                .view([1, shape[0], 1, 1]);
            let s = Tensor::from_slice(&std.iter().map(|&v| v as f32).collect::<Vec<_>>())
                .view([1, shape[0], 1, 1]);
            (
                ((x - m) / s).to_device(device),
                Tensor::from_slice(&ys).to_device(device),
            )
        };
        let (train_x, train_y) = to_tensor(&raw.train, &idx.train);
        let (val_x, val_y) = to_tensor(&raw.train, &idx.val);
        let (test_x, test_y) = to_tensor(&raw.test, &idx.test);
        let black: Vec<f32> = mean
            .iter()
            .zip(&std)
            .map(|(m, s)| (-m / s) as f32)
            .collect();
        Dataset {
            black: Tensor::from_slice(&black)
                .view([1, shape[0], 1, 1])
                .to_device(device),
            train_x,
            train_y,
            val_x,
            val_y,
            test_x,
            test_y,
            shape,
            classes: raw.classes as i64,
        }
    }

    pub fn n_train(&self) -> i64 {
        self.train_y.size()[0]
    }
}

/// Per-channel mean and standard deviation (of pixel/255) over the given training rows.
pub fn channel_stats(imgs: &RawImages, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let plane = imgs.h * imgs.w;
    let mut sum = vec![0f64; imgs.c];
    let mut sq = vec![0f64; imgs.c];
    for &r in rows {
        let img = &imgs.pixels[r * imgs.image_len()..(r + 1) * imgs.image_len()];
        for c in 0..imgs.c {
            let (mut s, mut q) = (0u64, 0u64);
            for &p in &img[c * plane..(c + 1) * plane] {
                s += p as u64;
                q += (p as u64) * (p as u64);
            }
            sum[c] += s as f64;
            sq[c] += q as f64;
        }
    }
    let count = (rows.len() * plane).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count / 255.0).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| {
            let var = q / count / (255.0 * 255.0) - m * m;
            // a constant channel would divide by zero; leave it unscaled
            if var > 1e-12 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataConfig;

    fn cfg(
        validation: usize,
        train_subset: Option<usize>,
        test_subset: Option<usize>,
    ) -> DataConfig {
        DataConfig {
            dataset: DatasetKind::Mnist,
            path: "x".into(),
            validation,
            train_subset,
            test_subset,
            split_seed: 7,
        }
    }

    #[test]
    fn split_is_disjoint_seeded_and_sized() {
        let c = cfg(10, Some(30), Some(5));
        let a = split_indices(&c, 100, 20);
        assert_eq!((a.val.len(), a.train.len(), a.test.len()), (10, 30, 5));
        assert!(
            a.val.iter().all(|v| !a.train.contains(v)),
            "hold-out overlaps training"
        );
        assert_eq!(a, split_indices(&c, 100, 20), "same seed, same split");
        let mut other = c.clone();
        other.split_seed = 8;
        assert_ne!(
            a.val,
            split_indices(&other, 100, 20).val,
            "the seed matters"
        );
    }

    #[test]
    fn split_is_pinned() {
        // Cached teachers and their logits assume exactly this split; see the comment in split_indices.
        let a = split_indices(&cfg(4, Some(5), Some(3)), 20, 10);
        assert_eq!(
            a.val,
            [14, 17, 2, 10],
            "the hold-out changed: bump MODEL_VERSION"
        );
        assert_eq!(
            a.train,
            [16, 1, 4, 15, 11],
            "the training order changed: bump MODEL_VERSION"
        );
    }

    #[test]
    fn channel_stats_match_hand_values() {
        // one channel, two 1×2 images: pixels 0,255 and 255,255 → mean 0.75, var 0.75-0.5625
        let imgs = RawImages {
            n: 2,
            c: 1,
            h: 1,
            w: 2,
            pixels: vec![0, 255, 255, 255],
            labels: vec![0, 1],
        };
        let (m, s) = channel_stats(&imgs, &[0, 1]);
        assert!((m[0] - 0.75).abs() < 1e-12);
        assert!((s[0] - 0.1875f64.sqrt()).abs() < 1e-12);
        let (m, _) = channel_stats(&imgs, &[1]);
        assert!((m[0] - 1.0).abs() < 1e-12, "only the given rows count");
    }
}
