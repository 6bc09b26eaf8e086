//! Per-epoch charts: the learning curves (validation accuracy per epoch) and CTKD's learned
//! temperature per epoch, both drawn by [`epoch_chart`].

use super::{
    alphas, derr, legend, series_colour, y_range, Area, Entry, Line, Summary, Variant, BASELINE,
    LEGEND_WIDTH, TEACHER,
};
use crate::distill::Method;
use crate::plan::Role;
use crate::report::{best_by_validation, Stat};
use crate::store::{RunRecord, Status};
use plotters::prelude::*;

/// Per-epoch values of a set of runs (`value` picks one from an epoch's stats): (epoch, mean ± std
/// over the runs).
fn curve(
    records: &[&RunRecord],
    value: impl Fn(&crate::train::EpochStats) -> Option<f64>,
) -> Vec<(u32, Stat)> {
    let epochs = records.iter().map(|r| r.history.len()).max().unwrap_or(0);
    (0..epochs)
        .filter_map(|e| {
            let vals: Vec<f64> = records
                .iter()
                .filter_map(|r| r.history.get(e).and_then(&value))
                .collect();
            Stat::of(&vals).map(|s| (e as u32 + 1, s))
        })
        .collect()
}

/// The validation-accuracy curve of a set of runs.
fn val_curve(records: &[&RunRecord]) -> Vec<(u32, Stat)> {
    curve(records, |h| Some(h.val_acc))
}

type Series = Vec<(Entry, Vec<(u32, Stat)>)>;

/// The learning curves' series: the teacher and the baseline (dashed), plain logit KD's each α at
/// its best T (solid), every other method at its best cell (dotted).
pub(super) fn learning_series(s: &Summary, done: &[&RunRecord]) -> Series {
    let mut series: Series = Vec::new();
    for (role, name, colour) in [
        (Role::Teacher, "teacher", TEACHER),
        (Role::Baseline, "baseline student", BASELINE),
    ] {
        let rs: Vec<&RunRecord> = done.iter().copied().filter(|r| r.role == role).collect();
        if !rs.is_empty() {
            let entry = Entry {
                label: name.into(),
                colour,
                line: Line::Dashed,
            };
            let curve = match val_curve(&rs) {
                c if c.is_empty() => as_loaded_level(&rs, done),
                c => c,
            };
            series.push((entry, curve));
        }
    }
    let all_alphas = alphas(&s.cells);
    let rank = |a: &str| all_alphas.iter().position(|x| x.1 == a).unwrap_or(0);
    let runs_of = |c: &crate::report::Cell| -> Vec<&RunRecord> {
        (done.iter().copied())
            .filter(|r| r.role == Role::Student && r.coord() == c.coord)
            .filter(|r| r.models().1.map(|a| a.name()).unwrap_or_default() == c.student_model)
            .collect()
    };
    for (_, a) in &all_alphas {
        let plain = |c: &crate::report::Cell| Variant::of(c).is_plain_logit() && &c.alpha == a;
        if let Some(b) = best_by_validation(&s.cells, plain).map(|i| &s.cells[i]) {
            let entry = Entry {
                label: format!("α = {a}, T = {}", b.temperature),
                colour: series_colour(rank(a)),
                line: Line::Solid,
            };
            series.push((entry, val_curve(&runs_of(b))));
        }
    }
    // every other method in a colour of its own, after the α's (an α of DKD or CTKD is not logit
    // KD's, and DIST has none: a shared colour read as one method)
    let others = Variant::all_in(&s.cells)
        .into_iter()
        .filter(|v| !v.is_plain_logit());
    for (k, v) in others.enumerate() {
        let mine = |c: &crate::report::Cell| Variant::of(c) == v;
        if let Some(b) = best_by_validation(&s.cells, mine).map(|i| &s.cells[i]) {
            let entry = Entry {
                label: b.setting(),
                colour: series_colour(all_alphas.len() + k),
                line: Line::Dotted,
            };
            series.push((entry, val_curve(&runs_of(b))));
        }
    }
    series
}

/// A teacher used as it is (no epochs, `[teacher] epochs = 0`): its validation accuracy as loaded,
/// level across the other runs' epochs.
fn as_loaded_level(teachers: &[&RunRecord], done: &[&RunRecord]) -> Vec<(u32, Stat)> {
    let vals: Vec<f64> = teachers.iter().filter_map(|r| r.val_acc).collect();
    let epochs = done
        .iter()
        .map(|r| r.history.len())
        .max()
        .unwrap_or(0)
        .max(1);
    Stat::of(&vals).map_or(Vec::new(), |v| {
        (1..=epochs as u32).map(|e| (e, v)).collect()
    })
}

/// `learning_curves`: validation accuracy per epoch for the teacher, the baseline, each α at its
/// best T and every other method at its best cell (mean over seeds, shaded ± std).
pub fn learning_curves<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
    records: &[&RunRecord],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let done: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.status == Status::Done)
        .collect();
    let series = learning_series(s, &done);
    let n = done
        .iter()
        .filter(|r| r.role == Role::Baseline || r.role == Role::Teacher)
        .map(|r| r.seed)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let chosen = match series.iter().any(|(e, _)| e.line == Line::Dotted) {
        // dotted: the other methods, each at its best cell
        true => {
            "logit KD: each α at its\nbest T; dotted: another\nmethod's best cell\n(by validation)"
        }
        false => "each α at its best T\n(by validation)",
    };
    let note = if n > 1 {
        format!("mean of {n} seeds;\nshaded ± 1 std;\n{chosen}")
    } else {
        format!("one seed;\n{chosen}")
    };
    let y = y_range(series.iter().flat_map(|s| {
        s.1.iter()
            .flat_map(|p| [p.1.mean - p.1.std, p.1.mean + p.1.std])
    }));
    epoch_chart(root, title, "validation accuracy (%)", y, &series, &note)
}

/// `ctkd_temperature`: the temperature CTKD learned, per epoch, one line per CTKD cell (mean over
/// its seeds, shaded ± std).
pub fn ctkd_temperature<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    records: &[&RunRecord],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let ctkd: Vec<&RunRecord> = (records.iter().copied())
        .filter(|r| r.role == Role::Student && r.method == Method::Ctkd)
        .filter(|r| r.status == Status::Done || r.status == Status::Pruned)
        .collect();
    let mut cells: Vec<(String, crate::distill::Coord)> = Vec::new();
    for r in &ctkd {
        let m = r.models().1.map(|a| a.name()).unwrap_or_default();
        if !cells.contains(&(m.clone(), r.coord())) {
            cells.push((m, r.coord()));
        }
    }
    let series: Series = (cells.iter().enumerate())
        .map(|(i, (m, c))| {
            let rs: Vec<&RunRecord> = (ctkd.iter().copied())
                .filter(|r| {
                    &r.coord() == c && &r.models().1.map(|a| a.name()).unwrap_or_default() == m
                })
                .collect();
            let who = if m.is_empty() || m == "tutorial-student" {
                String::new()
            } else {
                format!("{m}, ")
            };
            let entry = Entry {
                label: format!(
                    "{who}ctkd, α = {}",
                    c.alpha.as_ref().map_or("", |a| &a.text)
                ),
                colour: series_colour(i),
                line: Line::Solid,
            };
            (entry, curve(&rs, |h| h.learned_temperature))
        })
        .collect();
    let ts = series.iter().flat_map(|s| s.1.iter().map(|p| p.1.mean));
    let (lo, hi) = ts.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.12).max(0.25);
    let y = if lo <= hi {
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let note = "T = T_min + T_range·sigmoid(θ)\nafter each epoch; θ trained\nagainst the student through\ngradient reversal";
    epoch_chart(root, title, "learned temperature T", y, &series, note)
}

/// A chart of per-epoch series: epoch on x, each series a line (solid, dashed or dotted as its
/// entry says) with a shaded ± std band when its runs differ, the legend beside.
fn epoch_chart<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    y_desc: &str,
    (y0, y1): (f64, f64),
    series: &Series,
    note: &str,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let (plot, side) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
    let max_epoch = (series.iter())
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .max()
        .unwrap_or(1);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 22).into_font())
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(0.8f64..max_epoch as f64 + 0.2, y0..y1)
        .map_err(derr)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .x_labels(max_epoch as usize + 2)
        .x_label_formatter(&|v: &f64| {
            if (v.fract()).abs() < 1e-9 && *v >= 1.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(derr)?;
    for (entry, pts) in series {
        let band: Vec<(f64, f64)> = pts
            .iter()
            .map(|(e, s)| (*e as f64, s.mean + s.std))
            .chain(pts.iter().rev().map(|(e, s)| (*e as f64, s.mean - s.std)))
            .collect();
        if pts.iter().any(|p| p.1.std > 0.0) {
            chart
                .draw_series([Polygon::new(band, entry.colour.mix(0.18).filled())])
                .map_err(derr)?;
        }
        let line: Vec<(f64, f64)> = pts.iter().map(|(e, s)| (*e as f64, s.mean)).collect();
        let style = entry.colour.stroke_width(2);
        match entry.line {
            Line::Dotted => chart.draw_series(DashedLineSeries::new(line.clone(), 3, 5, style)),
            Line::Dashed => chart.draw_series(DashedLineSeries::new(line.clone(), 8, 6, style)),
            _ => chart.draw_series(LineSeries::new(line.clone(), style)),
        }
        .map_err(derr)?;
        chart
            .draw_series(
                line.iter()
                    .map(|p| Circle::new(*p, 3, entry.colour.filled())),
            )
            .map_err(derr)?;
    }
    let entries: Vec<Entry> = series.iter().map(|s| s.0.clone()).collect();
    legend(&side, "legend", &entries, note)
}
