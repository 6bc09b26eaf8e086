//! The charts, as PNG and SVG. Text is drawn with an embedded font (DejaVu Sans through `ab_glyph`), so
//! charts render on machines with no fonts; legends sit beside the plot, never over the data; each α
//! has the same colour in every chart.
//!
//! One file per kind of chart: `accuracy` (accuracy and agreement against T), `heatmap` (the gain
//! over each method's own axes), `curves` (per-epoch: learning curves, CTKD's learned T),
//! `capacity` (gain against student size). This module holds what they share and [`write_all`].

mod accuracy;
mod capacity;
mod curves;
mod heatmap;
mod snapshots;
#[cfg(test)]
mod tests;

pub use accuracy::{accuracy_vs_temperature, agreement_vs_temperature};
pub use capacity::{capacity_gap, capacity_points, CapacityPoint};
pub use curves::{ctkd_temperature, learning_curves};
pub use heatmap::{diverging, gain_heatmap, GainGrid};
pub use snapshots::teacher_epoch;

use super::{Cell, Summary};
use crate::distill::Method;
use crate::plan::Role;
use crate::store::{RunRecord, Status};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The charts' colours, one per series: an α by its rank among the sweep's α values, a sweep of a
/// comparison by its place. The first 8 are colour-blind-safe; past them the same 8 come darker,
/// then lighter, so that 24 series stay apart (a chart with that many is read by its legend).
pub fn series_colour(rank: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(120, 120, 120),
        RGBColor(160, 60, 60),
    ];
    let RGBColor(r, g, b) = PALETTE[rank % PALETTE.len()];
    // 0: as it is; 1: halfway to black; 2: halfway to white
    let shade = |c: u8| match (rank / PALETTE.len()) % 3 {
        0 => c,
        1 => c / 2,
        _ => c + (255 - c) / 2,
    };
    RGBColor(shade(r), shade(g), shade(b))
}

const TEACHER: RGBColor = RGBColor(40, 40, 40);
const BASELINE: RGBColor = RGBColor(150, 150, 150);

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The embedded DejaVu Sans is a valid font; registration only fails on invalid font bytes.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

pub const CHART_SIZE: (u32, u32) = (1000, 620);
const LEGEND_WIDTH: u32 = 250;

type Area<'a, DB> = DrawingArea<DB, Shift>;

pub fn derr<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// Draws one chart as `<dir>/<stem>.png` and `.svg`: `$body` runs once per backend with `$a` bound to
/// the drawing area; each file is written under a temporary name and renamed into place.
macro_rules! both {
    ($dir:expr, $stem:expr, $size:expr, |$a:ident| $body:expr) => {{
        let dir: &std::path::Path = $dir;
        $crate::report::charts::start(dir)?;
        let png = dir.join(format!(".{}.tmp.png", $stem));
        {
            let $a = plotters::prelude::BitMapBackend::new(&png, $size).into_drawing_area();
            $body?;
            $a.present().map_err($crate::report::charts::derr)?;
        }
        std::fs::rename(&png, dir.join(format!("{}.png", $stem)))?;
        let svg = dir.join(format!(".{}.tmp.svg", $stem));
        {
            let $a = plotters::prelude::SVGBackend::new(&svg, $size).into_drawing_area();
            $body?;
            $a.present().map_err($crate::report::charts::derr)?;
        }
        std::fs::rename(&svg, dir.join(format!("{}.svg", $stem)))?;
    }};
}
pub(crate) use both;

/// Registers the embedded font and makes the folder charts go to.
pub fn start(dir: &Path) -> std::io::Result<()> {
    register_font();
    std::fs::create_dir_all(dir)
}

/// A legend entry: label, colour, how the line is drawn.
#[derive(Clone)]
pub struct Entry {
    pub label: String,
    pub colour: RGBColor,
    pub line: Line,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Line {
    Solid,
    Dashed,
    Dotted,
    /// Long dashes with short gaps.
    LongDash,
    Marker,
    /// A small hollow circle (a pruned cell).
    Hollow,
    Band,
}

/// The legend, drawn in its own panel beside the plot.
pub fn legend<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    entries: &[Entry],
    note: &str,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut y = 70;
    area.draw(&Text::new(
        title.to_string(),
        (10, y - 28),
        ("sans-serif", 17).into_font().style(FontStyle::Bold),
    ))
    .map_err(derr)?;
    for e in entries {
        let style = e.colour.stroke_width(2);
        match e.line {
            Line::Solid => area
                .draw(&PathElement::new(vec![(10, y), (40, y)], style))
                .map_err(derr)?,
            Line::Dashed => {
                for x in [10, 21, 32] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 7, y)], style))
                        .map_err(derr)?;
                }
            }
            Line::LongDash => {
                for x in [10, 27] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 13, y)], style))
                        .map_err(derr)?;
                }
            }
            Line::Dotted => {
                for x in (10..=40).step_by(6) {
                    area.draw(&Circle::new((x, y), 1, e.colour.filled()))
                        .map_err(derr)?;
                }
            }
            Line::Marker => area
                .draw(&Circle::new((25, y), 7, e.colour.stroke_width(3)))
                .map_err(derr)?,
            Line::Hollow => area
                .draw(&Circle::new((25, y), 5, e.colour.stroke_width(2)))
                .map_err(derr)?,
            Line::Band => area
                .draw(&Rectangle::new(
                    [(10, y - 6), (40, y + 6)],
                    e.colour.mix(0.25).filled(),
                ))
                .map_err(derr)?,
        }
        if e.line == Line::Solid {
            area.draw(&Circle::new((25, y), 4, e.colour.filled()))
                .map_err(derr)?;
        }
        area.draw(&Text::new(
            e.label.clone(),
            (52, y - 9),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(derr)?;
        y += 28;
    }
    for (i, line) in note.lines().enumerate() {
        area.draw(&Text::new(
            line.to_string(),
            (10, y + 10 + 18 * i as i32),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(derr)?;
    }
    Ok(())
}

/// The sweep's distinct α values of logit KD's kind (sorted; DKD's α is another quantity); a value's
/// rank is its colour.
pub fn alphas(cells: &[Cell]) -> Vec<(f64, String)> {
    distinct(
        (cells.iter())
            .filter(|c| c.method.alpha_is_mix())
            .map(|c| (c.a_value, c.alpha.as_str()))
            .filter(|(_, a)| !a.is_empty()),
    )
}

/// Distinct (value, as written) pairs, sorted by value.
fn distinct<'a>(items: impl Iterator<Item = (f64, &'a str)>) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for (v, text) in items {
        if !out.iter().any(|x| x.1 == text) {
            out.push((v, text.to_string()));
        }
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

/// A log-scale T axis with ticks exactly at the grid's values, labelled as written.
pub struct TAxis {
    pub ticks: Vec<(f64, String)>,
    pub range: (f64, f64),
}

impl TAxis {
    pub fn new(ticks: Vec<(f64, String)>) -> TAxis {
        let lo = ticks.first().map_or(1.0, |t| t.0);
        let hi = ticks.last().map_or(1.0, |t| t.0);
        TAxis {
            range: (lo / 1.25, hi * 1.25),
            ticks,
        }
    }

    pub fn label(&self, v: f64) -> String {
        self.ticks
            .iter()
            .find(|t| (t.0 - v).abs() < 1e-9 * v.abs().max(1.0))
            .map_or(format!("{v}"), |t| t.1.clone())
    }
}

/// The chart both accuracy-vs-T plots use: T on a log scale with ticks at the grid's values labelled
/// as written, student test accuracy on y, the mesh drawn.
pub type TemperatureChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<
        plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>,
        plotters::coord::types::RangedCoordf64,
    >,
>;

pub fn temperature_chart<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    title: &str,
    axis: &TAxis,
    (y0, y1): (f64, f64),
    y_desc: &str,
) -> anyhow::Result<TemperatureChart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = axis.range;
    let keys: Vec<f64> = axis.ticks.iter().map(|t| t.0).collect();
    // an empty title: the caller titled the area itself
    let mut builder = ChartBuilder::on(area);
    if !title.is_empty() {
        builder.caption(title, ("sans-serif", 22).into_font());
    }
    let mut chart = builder
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d((x0..x1).log_scale().with_key_points(keys), y0..y1)
        .map_err(derr)?;
    chart
        .configure_mesh()
        .x_desc("distillation temperature T (log scale)")
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v: &f64| axis.label(*v))
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(derr)?;
    Ok(chart)
}

/// A y range covering `values`, padded, within [0, 100].
pub fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 100.0);
    }
    let pad = ((hi - lo) * 0.12).max(0.5);
    ((lo - pad).max(0.0), (hi + pad).min(100.0))
}

/// A method as the charts tell them apart: a method with z-scored logits (logit standardisation) is
/// a variant of its own, never drawn on the same line as the plain method.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Variant {
    pub method: Method,
    pub zscore: bool,
}

impl Variant {
    pub fn of(c: &Cell) -> Variant {
        Variant {
            method: c.method,
            zscore: c.coord.zscore,
        }
    }

    /// Hinton's logit KD on raw logits: the cells drawn against T, one line per α.
    pub fn is_plain_logit(self) -> bool {
        self.method == Method::Logit && !self.zscore
    }

    /// "dkd", "logit + z-score".
    pub fn name(self) -> String {
        if self.zscore {
            format!("{} + z-score", self.method.name())
        } else {
            self.method.name().to_string()
        }
    }

    /// A column label: "dkd", "dkd+z".
    pub fn short(self) -> String {
        if self.zscore {
            format!("{}+z", self.method.name())
        } else {
            self.method.name().to_string()
        }
    }

    /// The part of a file name: "dkd", "logit_zscore", "multi_t".
    pub fn stem(self) -> String {
        let m = self.method.name().replace('-', "_");
        if self.zscore {
            format!("{m}_zscore")
        } else {
            m
        }
    }

    /// Whether the variant's only axis is α (its cells fit side by side in one column).
    pub fn alpha_only(self) -> bool {
        self.method.axes() == [crate::distill::Axis::Alpha]
    }

    /// The variants that have cells, in report order (method, then plain before z-scored).
    pub fn all_in(cells: &[Cell]) -> Vec<Variant> {
        let mut out: Vec<Variant> = Vec::new();
        for m in Method::ALL {
            for zscore in [false, true] {
                let v = Variant { method: m, zscore };
                if cells.iter().any(|c| Variant::of(c) == v) {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// Draws a sweep's charts under `dir/charts/`: per student model (files `<chart>-<model>` when the
/// sweep has several), accuracy and agreement against T and each method's gain heatmap; then the
/// capacity gap, the learning curves and CTKD's learned temperature.
pub fn write_all(
    dir: &Path,
    name: &str,
    (dataset, input): (&str, Option<([i64; 3], i64)>),
    s: &Summary,
    records: &[&RunRecord],
) -> anyhow::Result<()> {
    let charts = dir.join("charts");
    let models = s.student_models();
    let several = models.len() > 1;
    // with several student models, each model's cells apart, in files named `<chart>-<model>`
    let parts: Vec<(Option<&String>, Summary)> = if several {
        models.iter().map(|m| (Some(m), s.for_model(m))).collect()
    } else {
        vec![(None, s.clone())]
    };
    for (model, part) in &parts {
        per_model(&charts, &format!("{name}: "), dataset, *model, part)?;
    }
    if several {
        let points = capacity_points(s, input);
        if !points.is_empty() {
            let title = format!("{name}: best KD gain against student size ({dataset})");
            both!(&charts, "capacity_gap", CHART_SIZE, |a| capacity_gap(
                &a, &title, &points
            ));
        }
    }
    if !s.snapshots.is_empty() {
        let title = format!("{name}: distilling from the teacher's epochs ({dataset})");
        both!(&charts, "teacher_epoch", CHART_SIZE, |a| teacher_epoch(
            &a, &title, s
        ));
    }
    if records
        .iter()
        .any(|r| r.history.iter().any(|e| e.learned_temperature.is_some()))
    {
        let title = format!("{name}: CTKD's learned temperature per epoch ({dataset})");
        both!(&charts, "ctkd_temperature", CHART_SIZE, |a| {
            ctkd_temperature(&a, &title, records)
        });
    }
    // learning curves: of the chosen cell's model when there are several
    let (part, mine, who) = match (several, s.chosen) {
        (false, _) => (s.clone(), records.to_vec(), String::new()),
        (true, Some(i)) => {
            let m = &s.cells[i].student_model;
            let mine: Vec<&RunRecord> = records
                .iter()
                .copied()
                .filter(|r| {
                    r.role == Role::Teacher || r.models().1.map(|a| a.name()).as_ref() == Some(m)
                })
                .collect();
            (s.for_model(m), mine, format!(", {m}"))
        }
        (true, None) => return Ok(()),
    };
    if mine.iter().any(|r| r.status == Status::Done) {
        let title = format!("{name}: learning curves{who} ({dataset})");
        both!(&charts, "learning_curves", CHART_SIZE, |a| learning_curves(
            &a, &title, &part, &mine
        ));
    }
    Ok(())
}

/// The charts of one student model's cells: accuracy and agreement against T, one gain heatmap per
/// method over its own axes (logit KD's keeps its name, `kd_gain_heatmap`).
fn per_model(
    charts: &Path,
    name: &str,
    dataset: &str,
    model: Option<&String>,
    part: &Summary,
) -> anyhow::Result<()> {
    let (suffix, mut who) = model.map_or((String::new(), String::new()), |m| {
        (format!("-{m}"), format!("{m} "))
    });
    // `[grid] teacher_epoch`: the charts over the methods' axes show the cells of the snapshot the
    // chosen cell learned from (the teacher_epoch chart compares the snapshots)
    let snapshot = part.chosen.and_then(|i| part.cells[i].coord.teacher_epoch);
    let at = snapshot.map(|e| part.at_teacher_epoch(e));
    let part = at.as_ref().unwrap_or(part);
    if let Some(e) = snapshot {
        who = format!("{who}(teacher after epoch {e}) ");
    }
    if !part.cells.is_empty() {
        let title = format!("{name}{who}student accuracy vs temperature ({dataset})");
        both!(
            charts,
            format!("accuracy_vs_temperature{suffix}"),
            CHART_SIZE,
            |a| accuracy_vs_temperature(&a, &title, part)
        );
    }
    let plain = |c: &Cell| Variant::of(c).is_plain_logit();
    if part.cells.iter().any(|c| plain(c) && c.agreement.is_some()) {
        let title = format!("{name}{who}student's agreement with the teacher vs T ({dataset})");
        both!(
            charts,
            format!("agreement_vs_temperature{suffix}"),
            CHART_SIZE,
            |a| agreement_vs_temperature(&a, &title, part)
        );
    }
    for v in Variant::all_in(&part.cells) {
        let Some(grid) = GainGrid::of(part, v) else {
            continue;
        };
        let (stem, what) = if v.is_plain_logit() {
            ("kd_gain_heatmap".to_string(), "logit KD".to_string())
        } else {
            (format!("gain_heatmap_{}", v.stem()), v.name())
        };
        let gain = match model {
            Some(m) => format!("{m}, {what} gain over its baseline"),
            None => format!("{what} gain over the baseline student"),
        };
        let title = format!("{name}{gain} (points, {dataset})");
        both!(charts, format!("{stem}{suffix}"), CHART_SIZE, |a| {
            gain_heatmap(&a, &title, &grid)
        });
    }
    Ok(())
}
