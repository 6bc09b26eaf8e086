//! `[data]`, and the check of the sweep's sizes against the data once it is read.

use super::Validator;
use crate::config::raw::RawData;
use crate::config::{ConfigError, DataConfig, DatasetKind, Sweep};
use crate::data::{Normalize, RawDataset};
use std::path::{Path, PathBuf};
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn dataset(&self, raw: &Spanned<String>) -> Result<DatasetKind, ConfigError> {
        DatasetKind::parse(raw.get_ref()).ok_or_else(|| {
            self.at(
                raw,
                "data.dataset",
                &format!(
                    "unknown dataset \"{}\"; allowed: {}",
                    raw.get_ref(),
                    DatasetKind::NAMES
                ),
            )
        })
    }
    /// `[data]`, every key checked (each problem kept); `None` when one is wrong or the dataset
    /// (checked apart, [`Validator::dataset`]) is. A folder or tensors dataset is looked at
    /// ([`crate::data::peek`]: its classes, image shape, own validation split) so that the checks
    /// below and the models' can use them; what it finds wrong points at `data.path`.
    pub(super) fn data(&self, d: &RawData, dataset: Option<DatasetKind>) -> Option<DataConfig> {
        let path = match &d.path {
            Some(p) if p.get_ref().trim().is_empty() => self.keep(Err(self.at(p, "data.path", "is empty; give the folder holding the dataset files, or leave it out for the default"))),
            Some(p) => {
                self.remember("data.path", p.span());
                let p = PathBuf::from(p.get_ref());
                Some(Some(if p.is_relative() {
                    // Relative paths are relative to the sweep file, so a sweep runs the same from any folder.
                    self.file.parent().unwrap_or(Path::new("")).join(p)
                } else {
                    p
                }))
            }
            None => Some(None),
        };
        let validation = match &d.validation {
            Some(s) => {
                self.remember("data.validation", s.span());
                self.keep(self.count(s, "data.validation", 1))
            }
            None => Some(5000),
        };
        let subset = |s: &Option<Spanned<i64>>, key: &str| -> Option<Option<usize>> {
            match s {
                None => Some(None),
                Some(s) => {
                    self.remember(key, s.span());
                    self.keep(self.count(s, key, 1)).map(Some)
                }
            }
        };
        let train_subset = subset(&d.train_subset, "data.train_subset");
        let test_subset = subset(&d.test_subset, "data.test_subset");
        let split_seed = match &d.split_seed {
            Some(s) => self
                .keep(self.count(s, "data.split_seed", 0))
                .map(|v| v as u64),
            None => Some(0),
        };
        let image_size = self.keep(self.image_size(d, dataset));
        let normalize = self.keep(self.normalize(d));
        let dataset = dataset?;
        let Some(path) = path?.or_else(|| dataset.default_path()) else {
            let why = format!(
                "is required for dataset = \"{}\" (it has no default place); give the dataset's {}",
                dataset.name(),
                if dataset == DatasetKind::Folder {
                    "folder"
                } else {
                    ".safetensors or .npz file"
                }
            );
            return self.keep(Err(self.at(&d.dataset, "data.path", &why)));
        };
        let (image_size, normalize) = (image_size?, normalize?);
        let layout = match crate::data::peek(dataset, &path, image_size) {
            Ok(l) => l,
            Err(e) => {
                let span = d.path.as_ref().map(|p| p.span());
                return self.keep(Err(self.err(span, Some("data.path"), &e.to_string())));
            }
        };
        let validation = match &layout {
            Some(l) if l.own_validation => match &d.validation {
                Some(v) => {
                    return self.keep(Err(self.at(v, "data.validation", &own_validation(dataset))))
                }
                None => 0,
            },
            _ => validation?,
        };
        let cfg = DataConfig {
            dataset,
            path,
            validation,
            train_subset: train_subset?,
            test_subset: test_subset?,
            split_seed: split_seed?,
            normalize,
            image_size,
            layout,
        };
        self.keep(self.normalize_fits(d, &cfg))?;
        Some(cfg)
    }

    /// `image_size`: N or [H, W], whole numbers ≥ 1; a folder dataset's only.
    fn image_size(
        &self,
        d: &RawData,
        dataset: Option<DatasetKind>,
    ) -> Result<Option<[u32; 2]>, ConfigError> {
        let Some(v) = &d.image_size else {
            return Ok(None);
        };
        self.remember("data.image_size", v.span());
        let key = "data.image_size";
        if dataset.is_some_and(|k| k != DatasetKind::Folder) {
            return Err(self.at(v, key, "resizes a folder dataset's images (dataset = \"folder\"); the other datasets are read at their own size: remove it"));
        }
        let side = |x: &toml::Value| match x.as_integer() {
            Some(n) if (1..=65_536).contains(&n) => Some(n as u32),
            _ => None,
        };
        let size = match v.get_ref() {
            toml::Value::Array(a) if a.len() == 2 => {
                side(&a[0]).zip(side(&a[1])).map(|(h, w)| [h, w])
            }
            x => side(x).map(|n| [n, n]),
        };
        size.map(Some).ok_or_else(|| self.at(v, key, &format!("must be a whole number of pixels (e.g. 32: the shorter side resized to 32, then a centre crop of 32×32) or [height, width], got {}", v.get_ref())))
    }

    /// `mean` and `std`: both or neither, finite, std > 0.
    fn normalize(&self, d: &RawData) -> Result<Option<Normalize>, ConfigError> {
        let (mean, std) = match (&d.mean, &d.std) {
            (None, None) => return Ok(None),
            (Some(m), None) => return Err(self.at(m, "data.mean", "is given without data.std; give both (torchvision's Normalize(mean, std)) or neither (each channel's mean and std over the training images in use)")),
            (None, Some(s)) => return Err(self.at(s, "data.std", "is given without data.mean; give both (torchvision's Normalize(mean, std)) or neither (each channel's mean and std over the training images in use)")),
            (Some(m), Some(s)) => (m, s),
        };
        self.remember("data.mean", mean.span());
        self.remember("data.std", std.span());
        for (list, key) in [(mean, "data.mean"), (std, "data.std")] {
            if list.get_ref().is_empty() {
                return Err(self.at(
                    list,
                    key,
                    "is empty; give one value per channel, e.g. [0.5] or [0.4914, 0.4822, 0.4465]",
                ));
            }
            for v in list.get_ref() {
                let x = *v.get_ref();
                if !x.is_finite() {
                    return Err(self.at(v, key, &format!("must be a finite number, got {x}")));
                }
                if key == "data.std" && x <= 0.0 {
                    return Err(self.at(
                        v,
                        key,
                        &format!("must be > 0 (pixels are divided by it), got {x}"),
                    ));
                }
            }
        }
        let values =
            |l: &Spanned<Vec<Spanned<f64>>>| l.get_ref().iter().map(|v| *v.get_ref()).collect();
        Ok(Some(Normalize {
            mean: values(mean),
            std: values(std),
        }))
    }

    /// Given `mean` and `std` against the data: one value per channel, and none for float images.
    fn normalize_fits(&self, d: &RawData, cfg: &DataConfig) -> Result<(), ConfigError> {
        let (Some(_), Some(m), Some(s)) = (&cfg.normalize, &d.mean, &d.std) else {
            return Ok(());
        };
        if cfg.layout.as_ref().is_some_and(|l| l.float) {
            return Err(self.at(m, "data.mean", FLOAT_NORMALIZED));
        }
        let Some([channels, ..]) = cfg.image_shape() else {
            return Ok(());
        };
        for (list, key) in [(m, "data.mean"), (s, "data.std")] {
            let n = list.get_ref().len();
            if n as i64 != channels {
                return Err(self.at(list, key, &wrong_channels(n, channels, cfg.dataset)));
            }
        }
        Ok(())
    }
}

const FLOAT_NORMALIZED: &str =
    "is given, but the tensors file holds float32 images, which are used \
     as they are (already normalised); remove mean and std, or store the images as uint8 (0..255)";

fn wrong_channels(n: usize, channels: i64, dataset: DatasetKind) -> String {
    format!(
        "has {n} value(s) but the {} images have {channels} channel(s); give one value per channel",
        dataset.name()
    )
}

fn own_validation(dataset: DatasetKind) -> String {
    let (what, remove) = match dataset {
        DatasetKind::Folder => ("a validation/ folder", "remove validation/"),
        _ => ("x_val and y_val", "remove x_val and y_val"),
    };
    format!("is set, but the dataset has its own validation split ({what}), which is the hold-out; remove data.validation to use it, or {remove} to hold out a random draw of training images instead")
}

/// Checks the configured sizes against the data; errors point at the sweep-file key.
pub fn check_sizes(sweep: &Sweep, n_train: usize, n_test: usize) -> Result<(), ConfigError> {
    let d = &sweep.data;
    let src = &sweep.source;
    if d.validation >= n_train {
        return Err(src.error("data.validation", format!("{} held-out images leave none of the {n_train} training images to train on; use fewer", d.validation)));
    }
    let left = n_train - d.validation;
    if let Some(k) = d.train_subset {
        if k > left {
            return Err(src.error("data.train_subset", format!("{k} is more than the {left} training images left after holding out {}; use at most {left} or leave it out", d.validation)));
        }
    }
    if let Some(k) = d.test_subset {
        if k > n_test {
            return Err(src.error("data.test_subset", format!("{k} is more than the {n_test} test images; use at most {n_test} or leave it out")));
        }
    }
    let train = d.train_subset.unwrap_or(left);
    for (key, bs) in [
        ("teacher.batch_size", sweep.teacher.batch_size),
        ("student.batch_size", sweep.student.batch_size),
    ] {
        // a teacher used as it is (epochs = 0) takes no steps
        let steps = key == "student.batch_size" || sweep.teacher.epochs > 0;
        if steps && bs as usize > train {
            return Err(src.error(
                key,
                format!("{bs} is larger than the {train} training images; use at most {train}"),
            ));
        }
    }
    Ok(())
}

/// Checks the sweep against the data read: its sizes ([`check_sizes`]), and for a folder or tensors
/// dataset what the sweep file's checks took from it (its shape, classes, own validation split) and
/// the given `mean` and `std`. Errors point at the sweep-file key.
pub fn check_data(sweep: &Sweep, raw: &RawDataset) -> Result<(), ConfigError> {
    let d = &sweep.data;
    let src = &sweep.source;
    let shape = [raw.train.c as i64, raw.train.h as i64, raw.train.w as i64];
    if let Some(l) = &d.layout {
        let own = raw.val.is_some();
        if l.shape != shape || l.classes != raw.classes || l.own_validation != own {
            return Err(src.error("data.path", format!("the data changed while kd-sweep was reading it: checked as {:?} images of {} classes{}, read as {:?} of {}{}; run again", l.shape, l.classes, if l.own_validation { " with a validation split" } else { "" }, shape, raw.classes, if own { " with a validation split" } else { "" })));
        }
    }
    if let Some(v) = &raw.val {
        if v.n == 0 {
            return Err(src.error("data.path", "the dataset's own validation split has no images; give it some, or remove it to hold out a random draw of training images"));
        }
    }
    if let Some(n) = &d.normalize {
        if raw.train.pixels.as_u8().is_none() {
            return Err(src.error("data.mean", FLOAT_NORMALIZED));
        }
        for (len, key) in [(n.mean.len(), "data.mean"), (n.std.len(), "data.std")] {
            if len as i64 != shape[0] {
                return Err(src.error(key, wrong_channels(len, shape[0], d.dataset)));
            }
        }
    }
    check_sizes(sweep, raw.train.n, raw.test.n)
}
