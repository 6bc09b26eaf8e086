//! Every output of a sweep's folder, one exporter each ([`Exporter`]), written in one call
//! ([`write_all`]) that `kd-sweep run`, `kd-sweep report` and the SLURM report job share. All are
//! derived from the records (and the manifest), so they can always be written again.

use super::{charts, html, markdown, summarize, Meta, Summary};
use crate::files::write_atomic;
use crate::record::RunRecord;
use crate::store::Manifest;
use anyhow::Context;
use std::path::Path;

/// What every exporter reads.
pub struct Outputs<'a> {
    pub dir: &'a Path,
    pub meta: &'a Meta,
    pub records: &'a [&'a RunRecord],
    /// The manifest to write (a run writes it; `report` keeps the one the run wrote).
    pub manifest: Option<&'a Manifest>,
    pub summary: &'a Summary,
}

/// One output of a sweep.
pub trait Exporter {
    /// What it writes, for messages (`runs.csv`, `charts/`).
    fn file(&self) -> &'static str;
    fn write(&self, o: &Outputs) -> anyhow::Result<()>;
}

struct RunsCsv;
struct EpochsCsv;
struct ManifestJson;
struct SummaryMd;
struct Charts;
struct IndexHtml;

impl Exporter for RunsCsv {
    fn file(&self) -> &'static str {
        "runs.csv"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        Ok(write_atomic(
            &o.dir.join(self.file()),
            &super::csv::runs_csv(o.records)?,
        )?)
    }
}

impl Exporter for EpochsCsv {
    fn file(&self) -> &'static str {
        "epochs.csv"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        Ok(write_atomic(
            &o.dir.join(self.file()),
            &super::csv::epochs_csv(o.records)?,
        )?)
    }
}

impl Exporter for ManifestJson {
    fn file(&self) -> &'static str {
        "manifest.json"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        match o.manifest {
            Some(m) => Ok(m.write(o.dir)?),
            None => Ok(()),
        }
    }
}

impl Exporter for SummaryMd {
    fn file(&self) -> &'static str {
        "summary.md"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        let text = markdown::markdown(o.meta, o.summary);
        Ok(write_atomic(&o.dir.join(self.file()), text.as_bytes())?)
    }
}

impl Exporter for Charts {
    fn file(&self) -> &'static str {
        "charts/"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        charts::write_all(
            o.dir,
            &o.meta.name,
            (&o.meta.dataset, o.meta.input),
            o.summary,
            o.records,
        )
    }
}

impl Exporter for IndexHtml {
    fn file(&self) -> &'static str {
        "index.html"
    }
    fn write(&self, o: &Outputs) -> anyhow::Result<()> {
        Ok(html::write_sweep_page(o.dir, o.meta, o.summary, o.records)?)
    }
}

/// Every exporter, in the order they are written: the page last, after the manifest and the charts
/// it shows.
pub const EXPORTERS: [&dyn Exporter; 6] = [
    &RunsCsv,
    &EpochsCsv,
    &ManifestJson,
    &SummaryMd,
    &Charts,
    &IndexHtml,
];

/// Writes every output of the sweep in `dir` from its records (and `manifest`, when given) and
/// returns the summary.
pub fn write_all(
    dir: &Path,
    meta: &Meta,
    records: &[&RunRecord],
    manifest: Option<&Manifest>,
) -> anyhow::Result<Summary> {
    let mut summary = summarize(records, meta.test_images);
    summary.unfinished = meta.unfinished(records.len());
    let o = Outputs {
        dir,
        meta,
        records,
        manifest,
        summary: &summary,
    };
    for e in EXPORTERS {
        e.write(&o)
            .with_context(|| format!("writing {}", e.file()))?;
    }
    Ok(summary)
}

/// The outputs a sweep folder holds, as one line: `<dir>/{runs.csv, …, index.html, charts/}` — only
/// what exists (after Ctrl-C before the first finished run there are no charts).
pub fn line(dir: &Path) -> String {
    let names = [
        "index.html",
        "summary.md",
        "runs.csv",
        "epochs.csv",
        "manifest.json",
        "charts/",
    ];
    let present: Vec<&str> = (names.iter().copied())
        .filter(|n| dir.join(n.trim_end_matches('/')).exists())
        .collect();
    format!("{}/{{{}}}", dir.display(), present.join(", "))
}
