//! Datasets: readers for the real on-disk formats (IDX raw or gzipped; CIFAR-10 binary and python
//! releases; an ImageFolder tree of PNG and JPEG files; one safetensors or npz file of arrays), the
//! seeded validation hold-out and subsets, and per-channel normalization into tensors that are loaded
//! once and indexed per batch.

mod cache;
mod cifar;
mod digests;
mod folder;
mod idx;
mod tensors;
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

/// Pixels as stored: bytes (0..=255, divided by 255 and normalised when loaded), or float32 values
/// already normalised by whoever wrote them (a tensors file), used as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

impl Pixels {
    /// The bytes of 8-bit images; `None` for float ones.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match self {
            Pixels::U8(b) => Some(b),
            Pixels::F32(_) => None,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(b) => b.len(),
            Pixels::F32(f) => f.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A class label, 0..K-1. Sixteen bits: a folder of ImageNet-21k's classes fits.
pub type Label = u16;

/// The most classes a dataset may have (every [`Label`]).
pub const MAX_CLASSES: usize = Label::MAX as usize + 1;

/// Images as stored: `n` images of `c×h×w` values (channel-major), and one label each.
#[derive(Debug, Clone, PartialEq)]
pub struct RawImages {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub pixels: Pixels,
    pub labels: Vec<Label>,
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
    /// The dataset's own validation split (a folder's `validation/`, a tensors file's `x_val`), the
    /// hold-out in place of the random draw; `None` for the others.
    pub val: Option<RawImages>,
    pub test: RawImages,
    pub classes: usize,
    /// The classes' names in label order (a folder's class folders); empty where the files have none.
    pub class_names: Vec<String>,
    /// SHA-256 over the files' names and bytes: identifies the data in cache keys.
    pub fingerprint: String,
}

/// How a dataset is read beyond its kind and folder: the folder dataset's resize and centre crop
/// (height, width), and where decoded images are cached (a folder dataset's, by content).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub image_size: Option<[u32; 2]>,
    pub cache: Option<PathBuf>,
    /// Say on stderr when a folder's images are decoded (once; the cache keeps them) and how long a
    /// slow read took: the coordinator does, unless quiet; workers and tests do not.
    pub progress: bool,
}

impl ReadOptions {
    /// The options of `cfg`, with decoded images cached under `cache`.
    pub fn of(cfg: &DataConfig, cache: Option<PathBuf>) -> Self {
        ReadOptions {
            image_size: cfg.image_size,
            cache,
            progress: false,
        }
    }
}

/// Reads a dataset from `dir` in its real on-disk format (no resize, no cache).
pub fn read(kind: DatasetKind, dir: &Path) -> Result<RawDataset, DataError> {
    read_with(kind, dir, &ReadOptions::default())
}

fn not_found_hint(kind: DatasetKind) -> String {
    match kind {
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
        DatasetKind::Folder => folder::LAYOUT.to_string(),
        DatasetKind::Tensors => tensors::LAYOUT.to_string(),
    }
}

/// Reads a dataset from `dir` (a tensors dataset's file) in its real on-disk format.
pub fn read_with(
    kind: DatasetKind,
    dir: &Path,
    opts: &ReadOptions,
) -> Result<RawDataset, DataError> {
    let exists = match kind {
        DatasetKind::Tensors => dir.is_file(),
        _ => dir.is_dir(),
    };
    if !exists {
        let what = match (kind == DatasetKind::Tensors, dir.exists()) {
            (true, false) => "no such file",
            (true, true) => "a folder, not a file",
            (false, false) => "no such folder",
            (false, true) => "a file, not a folder",
        };
        return Err(DataError::new(
            dir,
            format!(
                "{} dataset not found ({what}); {}",
                kind.name(),
                not_found_hint(kind)
            ),
        ));
    }
    if opts.image_size.is_some() && kind != DatasetKind::Folder {
        return Err(DataError::new(dir, "image_size resizes a folder dataset's images; the other datasets are read at their own size"));
    }
    match kind {
        DatasetKind::Folder => return folder::read(dir, opts),
        DatasetKind::Tensors => return tensors::read(dir),
        _ => {}
    }
    let mut hasher = Sha256::new();
    let (train, test) = match kind {
        DatasetKind::Cifar10 => cifar::read_dir(dir, &cifar::CIFAR10, &mut hasher)?,
        DatasetKind::Cifar100 => cifar::read_dir(dir, &cifar::CIFAR100, &mut hasher)?,
        _ => idx::read_dir(dir, &mut hasher)?,
    };
    let classes = kind.fixed_classes().unwrap_or(10);
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
        val: None,
        test,
        classes,
        class_names: Vec::new(),
        fingerprint: crate::util::hex(&hasher.finalize()),
    })
}

/// What a folder or tensors dataset holds, found before it is read ([`peek`]): what the sweep file's
/// checks and the models need. The fixed datasets have none (their shape is their kind's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// An image's channels, height and width (after `image_size`).
    pub shape: [i64; 3],
    pub classes: usize,
    /// The classes' names in label order (a folder's class folders); empty for a tensors file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
    /// The dataset has its own validation split (`validation/`, `x_val`): the hold-out.
    pub own_validation: bool,
    /// Float32 images, already normalised.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub float: bool,
}

/// A folder or tensors dataset's [`Layout`] at little cost: a folder's class folders and its first
/// image's header; a tensors file's array headers and labels. `None` for the fixed datasets.
pub fn peek(
    kind: DatasetKind,
    path: &Path,
    image_size: Option<[u32; 2]>,
) -> Result<Option<Layout>, DataError> {
    match kind {
        DatasetKind::Folder | DatasetKind::Tensors => {
            let exists = match kind {
                DatasetKind::Tensors => path.is_file(),
                _ => path.is_dir(),
            };
            if !exists {
                return Err(DataError::new(
                    path,
                    format!("not found; {}", not_found_hint(kind)),
                ));
            }
            match kind {
                DatasetKind::Folder => folder::peek(path, image_size).map(Some),
                _ => tensors::peek(path).map(Some),
            }
        }
        _ => Ok(None),
    }
}

/// The models need heights and widths divisible by 4 (two 2×2 poolings).
pub(crate) fn check_side(path: &Path, h: usize, w: usize, fix: &str) -> Result<(), DataError> {
    if h == 0 || w == 0 || !h.is_multiple_of(4) || !w.is_multiple_of(4) {
        return Err(DataError::new(
            path,
            format!(
                "images are {h}×{w}; the models need heights and widths divisible by 4 ({fix})"
            ),
        ));
    }
    Ok(())
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
    /// torchvision's ImageFolder layout: `train/<class>/*`, `test/<class>/*`, optional `validation/`.
    Folder,
    /// One `.safetensors` or `.npz` file of arrays `x_train`, `y_train`, `x_test`, `y_test`.
    Tensors,
}

impl DatasetKind {
    pub const NAMES: &'static str =
        "\"fashion-mnist\", \"mnist\", \"cifar10\", \"cifar100\", \"folder\" or \"tensors\"";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fashion-mnist" => Some(Self::FashionMnist),
            "mnist" => Some(Self::Mnist),
            "cifar10" => Some(Self::Cifar10),
            "cifar100" => Some(Self::Cifar100),
            "folder" => Some(Self::Folder),
            "tensors" => Some(Self::Tensors),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::Folder => "folder",
            Self::Tensors => "tensors",
        }
    }

    /// An image's channels, height and width, where the kind fixes them (a folder's or a tensors
    /// file's come from the data: [`peek`], [`DataConfig::image_shape`]).
    pub fn fixed_shape(self) -> Option<[i64; 3]> {
        match self {
            Self::FashionMnist | Self::Mnist => Some([1, 28, 28]),
            Self::Cifar10 | Self::Cifar100 => Some([3, 32, 32]),
            Self::Folder | Self::Tensors => None,
        }
    }

    /// Classes of the dataset's labels, where the kind fixes them (every label is checked to be
    /// below it when the files are read).
    pub fn fixed_classes(self) -> Option<usize> {
        match self {
            Self::FashionMnist | Self::Mnist | Self::Cifar10 => Some(10),
            Self::Cifar100 => Some(100),
            Self::Folder | Self::Tensors => None,
        }
    }

    /// Where the dataset is looked for when `data.path` is not given (a folder or tensors dataset
    /// has no default: its `path` is required).
    pub fn default_path(self) -> Option<PathBuf> {
        Some(PathBuf::from(match self {
            Self::FashionMnist => "/usr/share/datasets/fashion-mnist",
            Self::Mnist => "/usr/share/datasets/mnist",
            Self::Cifar10 => "/usr/share/datasets/cifar10",
            Self::Cifar100 => "/usr/share/datasets/cifar100",
            Self::Folder | Self::Tensors => return None,
        }))
    }
}

/// Given per-channel normalisation (`[data] mean`, `std`): torchvision's `Normalize(mean, std)` after
/// `ToTensor()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    pub path: PathBuf,
    /// Training images held out for validation (a seeded random draw, not stratified); 0 when the
    /// dataset has its own validation split.
    pub validation: usize,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Seed of the hold-out and subset draws; the same for every run of the sweep.
    pub split_seed: u64,
    /// Given normalisation; `None`: each channel's mean and std over the training rows in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
    /// A folder dataset's resize and centre crop, height and width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[u32; 2]>,
    /// What a folder or tensors dataset held when the sweep file was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

impl DataConfig {
    /// The images a sweep uses of a dataset of `train` training and `test` test images: (training,
    /// held out for validation, test). The hold-out is 0 where the dataset has its own validation
    /// split.
    pub fn used(&self, train: usize, test: usize) -> (usize, usize, usize) {
        let train_used = (self.train_subset).unwrap_or(train.saturating_sub(self.validation));
        (
            train_used,
            self.validation,
            self.test_subset.unwrap_or(test),
        )
    }

    /// [`DataConfig::used`] in words: "800 training images, 100 held out for validation, 500 test
    /// images (drawn from the dataset's 60000 training and 10000 test images)".
    pub fn used_text(&self, train: usize, test: usize) -> String {
        let (t, v, te) = self.used(train, test);
        let held = match self.layout.as_ref().is_some_and(|l| l.own_validation) {
            true => "validation on the dataset's own split".to_string(),
            false => format!("{v} held out for validation"),
        };
        let drawn = if self.train_subset.is_some() || self.test_subset.is_some() {
            format!(" (drawn from the dataset's {train} training and {test} test images)")
        } else {
            String::new()
        };
        format!("{t} training images, {held}, {te} test images{drawn}")
    }

    /// A fixed dataset's configuration with the defaults of everything beyond the split.
    pub fn of(dataset: DatasetKind, path: PathBuf, validation: usize, split_seed: u64) -> Self {
        DataConfig {
            dataset,
            path,
            validation,
            train_subset: None,
            test_subset: None,
            split_seed,
            normalize: None,
            image_size: None,
            layout: None,
        }
    }

    /// An image's channels, height and width: the kind's, or what the data held when checked.
    pub fn image_shape(&self) -> Option<[i64; 3]> {
        (self.dataset.fixed_shape()).or(self.layout.as_ref().map(|l| l.shape))
    }

    /// The number of classes: the kind's, or what the data held when checked.
    pub fn classes(&self) -> Option<usize> {
        (self.dataset.fixed_classes()).or(self.layout.as_ref().map(|l| l.classes))
    }
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
        // float images are already normalised; 8-bit ones by the given values or the training rows'
        let norm = match (&raw.train.pixels, &cfg.normalize) {
            (Pixels::F32(_), _) => None,
            (_, Some(n)) => Some((n.mean.clone(), n.std.clone())),
            (_, None) => Some(channel_stats(&raw.train, &idx.train)),
        };
        let tr = &raw.train;
        let shape = [tr.c as i64, tr.h as i64, tr.w as i64];
        let as_f32 = |v: &[f64]| {
            Tensor::from_slice(&v.iter().map(|&v| v as f32).collect::<Vec<_>>())
                .view([1, shape[0], 1, 1])
        };
        let to_tensor = |imgs: &RawImages, rows: &[usize]| {
            let len = imgs.image_len();
            let ys: Vec<i64> = rows.iter().map(|&r| imgs.labels[r] as i64).collect();
            let size = [rows.len() as i64, shape[0], shape[1], shape[2]];
            let x = match (&imgs.pixels, &norm) {
                (Pixels::U8(b), Some((mean, std))) => {
                    let mut px = Vec::with_capacity(rows.len() * len);
                    for &r in rows {
                        px.extend_from_slice(&b[r * len..(r + 1) * len]);
                    }
                    // torchvision's ToTensor then Normalize, in float32: (x/255 - m)/s
                    let x = Tensor::from_slice(&px).view(size).to_kind(Kind::Float) / 255.0;
                    (x - as_f32(mean)) / as_f32(std)
                }
                (Pixels::F32(f), _) => {
                    let mut px = Vec::with_capacity(rows.len() * len);
                    for &r in rows {
                        px.extend_from_slice(&f[r * len..(r + 1) * len]);
                    }
                    Tensor::from_slice(&px).view(size)
                }
                (Pixels::U8(_), None) => unreachable!("8-bit images always have a normalisation"),
            };
            (
                x.to_device(device),
                Tensor::from_slice(&ys).to_device(device),
            )
        };
        let (train_x, train_y) = to_tensor(&raw.train, &idx.train);
        let (val_x, val_y) = match &raw.val {
            Some(v) => to_tensor(v, &(0..v.n).collect::<Vec<_>>()),
            None => to_tensor(&raw.train, &idx.val),
        };
        let (test_x, test_y) = to_tensor(&raw.test, &idx.test);
        // float images pad with 0 (their stored zero); 8-bit ones with black, −mean/std
        let black: Vec<f32> = match &norm {
            Some((mean, std)) => mean.iter().zip(std).map(|(m, s)| (-m / s) as f32).collect(),
            None => vec![0.0; tr.c],
        };
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
/// Float images have none (empty vectors).
pub fn channel_stats(imgs: &RawImages, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let Some(pixels) = imgs.pixels.as_u8() else {
        return (Vec::new(), Vec::new());
    };
    let plane = imgs.h * imgs.w;
    let mut sum = vec![0f64; imgs.c];
    let mut sq = vec![0f64; imgs.c];
    for &r in rows {
        let img = &pixels[r * imgs.image_len()..(r + 1) * imgs.image_len()];
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
            train_subset,
            test_subset,
            ..DataConfig::of(DatasetKind::Mnist, "x".into(), validation, 7)
        }
    }

    #[test]
    fn the_images_a_sweep_uses_are_those_its_split_draws() {
        for c in [
            cfg(10, Some(30), Some(5)),
            cfg(10, None, None),
            cfg(0, None, Some(7)),
        ] {
            let a = split_indices(&c, 100, 20);
            assert_eq!(c.used(100, 20), (a.train.len(), a.val.len(), a.test.len()));
        }
        assert_eq!(
            cfg(10, Some(30), Some(5)).used_text(100, 20),
            "30 training images, 10 held out for validation, 5 test images (drawn from the \
             dataset's 100 training and 20 test images)"
        );
        assert_eq!(
            cfg(10, None, None).used_text(100, 20),
            "90 training images, 10 held out for validation, 20 test images"
        );
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
    fn given_mean_and_std_normalise_as_torchvision() {
        // (x/255 - mean)/std per channel, in float32; the padding's black is -mean/std
        let raw = RawDataset {
            kind: DatasetKind::Mnist,
            train: RawImages {
                n: 4,
                c: 1,
                h: 1,
                w: 2,
                pixels: Pixels::U8(vec![0, 51, 255, 102, 0, 0, 0, 0]),
                labels: vec![0, 1, 0, 1],
            },
            val: None,
            test: RawImages {
                n: 1,
                c: 1,
                h: 1,
                w: 2,
                pixels: Pixels::U8(vec![0, 255]),
                labels: vec![1],
            },
            classes: 2,
            class_names: Vec::new(),
            fingerprint: String::new(),
        };
        let mut c = cfg(1, None, None);
        c.normalize = Some(Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        });
        let d = Dataset::from_raw(&raw, &c, Device::Cpu);
        let test: Vec<f32> = Vec::try_from(d.test_x.flatten(0, -1)).unwrap();
        assert_eq!(test, [-2.0, 2.0]);
        let all: Vec<f32> = Vec::try_from(d.train_x.flatten(0, -1)).unwrap();
        let want = |p: u8| (p as f32 / 255.0 - 0.5) / 0.25;
        assert!(all.iter().all(|v| [0, 51, 255, 102]
            .map(want)
            .iter()
            .any(|w| (v - w).abs() < 1e-6)));
        assert_eq!(
            Vec::<f32>::try_from(d.black.flatten(0, -1)).unwrap(),
            [-2.0]
        );
        // the default: the training rows' own statistics, so the same pixels give other values
        let d = Dataset::from_raw(&raw, &cfg(1, None, None), Device::Cpu);
        let test: Vec<f32> = Vec::try_from(d.test_x.flatten(0, -1)).unwrap();
        assert_ne!(test, [-2.0, 2.0]);
    }

    #[test]
    fn channel_stats_match_hand_values() {
        // one channel, two 1×2 images: pixels 0,255 and 255,255 → mean 0.75, var 0.75-0.5625
        let imgs = RawImages {
            n: 2,
            c: 1,
            h: 1,
            w: 2,
            pixels: Pixels::U8(vec![0, 255, 255, 255]),
            labels: vec![0, 1],
        };
        let (m, s) = channel_stats(&imgs, &[0, 1]);
        assert!((m[0] - 0.75).abs() < 1e-12);
        assert!((s[0] - 0.1875f64.sqrt()).abs() < 1e-12);
        let (m, _) = channel_stats(&imgs, &[1]);
        assert!((m[0] - 1.0).abs() < 1e-12, "only the given rows count");
    }
}
