//! `[data]`, and the check of the sweep's sizes against the data once it is read.

use super::Validator;
use crate::config::raw::RawData;
use crate::config::{ConfigError, DataConfig, DatasetKind, Sweep};
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
    /// (checked apart, [`Validator::dataset`]) is.
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
        let dataset = dataset?;
        Some(DataConfig {
            dataset,
            path: path?.unwrap_or_else(|| dataset.default_path()),
            validation: validation?,
            train_subset: train_subset?,
            test_subset: test_subset?,
            split_seed: split_seed?,
        })
    }
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
