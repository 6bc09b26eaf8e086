//! `[schedule]` (devices, workers, fusing, checkpoints, numerics, determinism) and `[search]`.

use super::Validator;
use crate::config::raw::{RawDevices, RawFuse, RawSchedule, RawSearch};
use crate::config::{
    default_checkpoint_minutes, ConfigError, Devices, Fuse, ScheduleConfig, Search, Strategy,
};

impl Validator<'_> {
    /// A `true`/`false` key.
    fn switch(
        &self,
        v: &toml::Spanned<toml::Value>,
        key: &str,
    ) -> Result<bool, crate::config::ConfigError> {
        match v.get_ref() {
            toml::Value::Boolean(b) => Ok(*b),
            other => Err(self.at(v, key, &format!("expected true or false, got {other}"))),
        }
    }

    /// `[schedule]`, every key checked (each problem kept); `None` when one is wrong.
    pub(super) fn schedule(&self, raw: &Option<RawSchedule>) -> Option<ScheduleConfig> {
        let mut schedule = ScheduleConfig {
            devices: Devices::Auto,
            workers_per_device: None,
            fuse: Fuse::Auto,
            fuse_max: 64,
            checkpoint_minutes: default_checkpoint_minutes(),
            numerics: crate::platform::numerics::Numerics::default(),
            deterministic: false,
            cuda_graphs: false,
        };
        let Some(sch) = raw else {
            return Some(schedule);
        };
        let mut ok = true;
        let mut set = |checked: Option<()>| ok &= checked.is_some();
        if let Some(n) = &sch.numerics {
            let names = crate::platform::numerics::Numerics::NAMES;
            let numerics = match n.get_ref() {
                toml::Value::String(s) => {
                    crate::platform::numerics::Numerics::parse(s).ok_or_else(|| {
                        self.at(
                            n,
                            "schedule.numerics",
                            &format!("\"{s}\" is not a numerics mode: use {names}"),
                        )
                    })
                }
                other => Err(self.at(
                    n,
                    "schedule.numerics",
                    &format!("expected {names}, got {other}"),
                )),
            };
            set(self.keep(numerics).map(|v| schedule.numerics = v));
        }
        if let Some(d) = &sch.deterministic {
            let deterministic = self.switch(d, "schedule.deterministic");
            set(self.keep(deterministic).map(|v| schedule.deterministic = v));
        }
        if let Some(g) = &sch.cuda_graphs {
            let graphs = self.switch(g, "schedule.cuda_graphs");
            set(self.keep(graphs).map(|v| schedule.cuda_graphs = v));
        }
        if let Some(m) = &sch.checkpoint_minutes {
            let minutes = self.count(m, "schedule.checkpoint_minutes", 0);
            set(self
                .keep(minutes)
                .map(|v| schedule.checkpoint_minutes = v.min(u32::MAX as usize) as u32));
        }
        if let Some(dev) = &sch.devices {
            let devices = match dev.get_ref() {
                RawDevices::One(s) => Devices::parse(s),
                RawDevices::List(list) => Devices::list(list.iter().map(String::as_str)),
            }
            .map_err(|why| self.at(dev, "schedule.devices", &why));
            set(self.keep(devices).map(|v| schedule.devices = v));
        }
        if let Some(w) = &sch.workers_per_device {
            let workers = self.positive_at_most(
                w,
                "schedule.workers_per_device",
                "runs at once on each device",
                super::MOST_WORKERS_PER_DEVICE,
            );
            set(self
                .keep(workers)
                .map(|v| schedule.workers_per_device = Some(v)));
        }
        if let Some(f) = &sch.fuse {
            let fuse = match f.get_ref() {
                RawFuse::Flag(true) => Ok(Fuse::On),
                RawFuse::Flag(false) => Ok(Fuse::Off),
                RawFuse::Word(w) if w == "auto" => Ok(Fuse::Auto),
                RawFuse::Word(w) => Err(self.at(
                    f,
                    "schedule.fuse",
                    &format!("\"{w}\" is not allowed: use \"auto\", true or false"),
                )),
            };
            set(self.keep(fuse).map(|v| schedule.fuse = v));
        }
        if let Some(m) = &sch.fuse_max {
            let most = self.positive(m, "schedule.fuse_max", "students in one fused group");
            set(self.keep(most).map(|v| schedule.fuse_max = v));
        }
        ok.then_some(schedule)
    }
    pub(super) fn search(
        &self,
        raw: &Option<RawSearch>,
        seeds: &[u64],
        epochs: u32,
    ) -> Result<Search, ConfigError> {
        let mut search = Search::default();
        let Some(r) = raw else {
            return Ok(search);
        };
        if let Some(s) = &r.strategy {
            search.strategy = match s.get_ref().as_str() {
                "grid" => Strategy::Grid,
                "halving" => Strategy::Halving,
                other => {
                    return Err(self.at(
                        s,
                        "search.strategy",
                        &format!("unknown strategy \"{other}\"; use \"grid\" (every cell trains in full) or \"halving\" (successive halving)"),
                    ))
                }
            };
        }
        if let Some(m) = &r.min_epochs {
            search.min_epochs =
                self.positive(m, "search.min_epochs", "epochs of the first rung")?;
            if search.min_epochs > epochs {
                return Err(self.at(
                    m,
                    "search.min_epochs",
                    &format!(
                        "is {} but [student] epochs is {epochs}; the first rung cannot train longer than the whole schedule",
                        search.min_epochs
                    ),
                ));
            }
        }
        if let Some(e) = &r.eta {
            search.eta = self.positive(e, "search.eta", "the factor between rungs")?;
            if search.eta < 2 {
                return Err(self.at(
                    e,
                    "search.eta",
                    "must be ≥ 2 (each rung keeps 1/eta of the cells); e.g. eta = 3",
                ));
            }
        }
        if search.strategy == Strategy::Grid {
            for (set, key) in [
                (r.min_epochs.as_ref().map(|s| s.span()), "search.min_epochs"),
                (r.eta.as_ref().map(|s| s.span()), "search.eta"),
            ] {
                if let Some(span) = set {
                    return Err(self.err(
                        Some(span),
                        Some(key),
                        "applies to strategy = \"halving\" only; set strategy = \"halving\" or remove it",
                    ));
                }
            }
        }
        if let Some(list) = &r.confirm_seeds {
            search.confirm_seeds = self.confirm_seeds(list, seeds)?;
        }
        if let Some(t) = &r.confirm_top {
            search.confirm_top = self.positive(t, "search.confirm_top", "cells to confirm")?;
            if search.confirm_seeds.is_empty() {
                return Err(self.at(
                    t,
                    "search.confirm_top",
                    "has no effect without confirm_seeds; add e.g. confirm_seeds = [2, 3, 4]",
                ));
            }
        }
        Ok(search)
    }

    /// `[search] confirm_seeds`: new seeds (none of `seeds`, none twice), at least one.
    fn confirm_seeds(
        &self,
        list: &toml::Spanned<Vec<toml::Spanned<i64>>>,
        seeds: &[u64],
    ) -> Result<Vec<u64>, ConfigError> {
        let mut out: Vec<u64> = Vec::new();
        if list.get_ref().is_empty() {
            return Err(self.at(
                list,
                "search.confirm_seeds",
                "is empty; list the extra seeds (e.g. confirm_seeds = [2, 3, 4]) or remove the key",
            ));
        }
        for s in list.get_ref() {
            let v = *s.get_ref();
            if v < 0 {
                return Err(self.at(
                    s,
                    "search.confirm_seeds",
                    &format!("seeds must be whole numbers ≥ 0, got {v}"),
                ));
            }
            if seeds.contains(&(v as u64)) || out.contains(&(v as u64)) {
                return Err(self.at(
                    s,
                    "search.confirm_seeds",
                    &format!(
                        "seed {v} is already {}; confirmation seeds must be new ones",
                        if seeds.contains(&(v as u64)) {
                            "in `seeds`"
                        } else {
                            "listed"
                        }
                    ),
                ));
            }
            out.push(v as u64);
        }
        Ok(out)
    }
}
