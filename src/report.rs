//! Stage 6: what people read. Aggregates run records over seeds, draws the accuracy-vs-temperature
//! chart (PNG and SVG; text drawn with an embedded font, so it renders on a machine without fonts) and
//! prints the closing table. Everything here reads records only: no libtorch work.

use crate::plan::Role;
use crate::store::{RunRecord, Status};
use plotters::prelude::*;
use std::path::Path;

/// Mean, sample standard deviation and count of a set of accuracies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(xs: &[f64]) -> Option<Stat> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, std, n })
    }

    /// `85.12 ± 0.30` (or just the mean for one value).
    pub fn show(&self) -> String {
        if self.n > 1 {
            format!("{:.2} ± {:.2}", self.mean, self.std)
        } else {
            format!("{:.2}", self.mean)
        }
    }
}

/// One (T, α) cell over seeds.
#[derive(Debug, Clone)]
pub struct Cell {
    pub temperature: String,
    pub t_value: f64,
    pub alpha: String,
    pub a_value: f64,
    pub test: Stat,
    pub val: Stat,
}

/// The numbers of a sweep, aggregated over seeds (finished runs only).
#[derive(Debug, Clone)]
pub struct Summary {
    pub teacher: Option<Stat>,
    pub baseline: Option<Stat>,
    pub cells: Vec<Cell>,
    /// Index into `cells` of the cell with the best mean validation accuracy.
    pub best: Option<usize>,
    pub failed: usize,
}

fn num(s: &Option<String>) -> f64 {
    s.as_deref()
        .and_then(|t| t.replace('_', "").parse().ok())
        .unwrap_or(f64::NAN)
}

pub fn summarize(records: &[&RunRecord]) -> Summary {
    let done: Vec<&&RunRecord> = records
        .iter()
        .filter(|r| r.status == Status::Done)
        .collect();
    let role = |role: Role| {
        Stat::of(
            &done
                .iter()
                .filter(|r| r.role == role)
                .filter_map(|r| r.test_acc)
                .collect::<Vec<_>>(),
        )
    };
    let mut cells: Vec<Cell> = Vec::new();
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in done.iter().filter(|r| r.role == Role::Student) {
        let k = (
            r.temperature.clone().unwrap_or_default(),
            r.alpha.clone().unwrap_or_default(),
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (t, a) in keys {
        let rs: Vec<&&&RunRecord> = done
            .iter()
            .filter(|r| {
                r.role == Role::Student
                    && r.temperature.as_deref() == Some(&t)
                    && r.alpha.as_deref() == Some(&a)
            })
            .collect();
        let test = rs.iter().filter_map(|r| r.test_acc).collect::<Vec<_>>();
        let val = rs.iter().filter_map(|r| r.val_acc).collect::<Vec<_>>();
        if let (Some(test), Some(val)) = (Stat::of(&test), Stat::of(&val)) {
            cells.push(Cell {
                t_value: num(&Some(t.clone())),
                a_value: num(&Some(a.clone())),
                temperature: t,
                alpha: a,
                test,
                val,
            });
        }
    }
    let best = (0..cells.len()).max_by(|&i, &j| {
        cells[i]
            .val
            .mean
            .total_cmp(&cells[j].val.mean)
            .then(j.cmp(&i))
    });
    Summary {
        teacher: role(Role::Teacher),
        baseline: role(Role::Baseline),
        cells,
        best,
        failed: records
            .iter()
            .filter(|r| r.status == Status::Failed)
            .count(),
    }
}

/// The closing table printed after a sweep.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let line = |out: &mut String, what: &str, stat: Option<Stat>| {
        if let Some(st) = stat {
            out.push_str(&format!(
                "{what:<34} test {:>14} %  ({} seed{})\n",
                st.show(),
                st.n,
                if st.n == 1 { "" } else { "s" }
            ));
        }
    };
    line(&mut out, "teacher", s.teacher);
    line(&mut out, "baseline student (no distillation)", s.baseline);
    if let Some(b) = s.best.map(|i| &s.cells[i]) {
        line(
            &mut out,
            &format!("best by validation: T={}, α={}", b.temperature, b.alpha),
            Some(b.test),
        );
        if let Some(base) = s.baseline {
            out.push_str(&format!(
                "{:<34} {:+.2} points over the baseline (mean over seeds)\n",
                "",
                b.test.mean - base.mean
            ));
        }
    }
    if s.failed > 0 {
        out.push_str(&format!(
            "{} run(s) failed: see the status and error columns of runs.csv\n",
            s.failed
        ));
    }
    out
}

/// Colours per α, by the α's rank among the sweep's α values, so every chart agrees.
pub fn alpha_colour(rank: usize) -> RGBColor {
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
    PALETTE[rank % PALETTE.len()]
}

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

/// Draws `charts/accuracy_vs_temperature.{png,svg}` under `dir`; does nothing without student cells.
pub fn accuracy_vs_temperature(dir: &Path, title: &str, s: &Summary) -> anyhow::Result<()> {
    if s.cells.is_empty() {
        return Ok(());
    }
    register_font();
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts)?;
    for ext in ["png", "svg"] {
        let path = charts.join(format!("accuracy_vs_temperature.{ext}"));
        let tmp = charts.join(format!(".accuracy_vs_temperature.tmp.{ext}"));
        if ext == "png" {
            draw_accuracy(
                BitMapBackend::new(&tmp, CHART_SIZE).into_drawing_area(),
                title,
                s,
            )?;
        } else {
            draw_accuracy(
                SVGBackend::new(&tmp, CHART_SIZE).into_drawing_area(),
                title,
                s,
            )?;
        }
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

fn draw_accuracy<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    s: &Summary,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the chart: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(CHART_SIZE.0 - 230);

    let mut temps: Vec<(f64, String)> = Vec::new();
    let mut alphas: Vec<(f64, String)> = Vec::new();
    for c in &s.cells {
        if !temps.iter().any(|t| t.1 == c.temperature) {
            temps.push((c.t_value, c.temperature.clone()));
        }
        if !alphas.iter().any(|a| a.1 == c.alpha) {
            alphas.push((c.a_value, c.alpha.clone()));
        }
    }
    temps.sort_by(|a, b| a.0.total_cmp(&b.0));
    alphas.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (tmin, tmax) = (temps[0].0, temps[temps.len() - 1].0);
    let (x0, x1) = (tmin / 1.25, tmax * 1.25);

    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for c in &s.cells {
        lo = lo.min(c.test.mean - c.test.std);
        hi = hi.max(c.test.mean + c.test.std);
    }
    for st in [s.teacher, s.baseline].into_iter().flatten() {
        lo = lo.min(st.mean);
        hi = hi.max(st.mean);
    }
    let pad = ((hi - lo) * 0.12).max(0.5);
    let (y0, y1) = ((lo - pad).max(0.0), (hi + pad).min(100.0));

    let keys: Vec<f64> = temps.iter().map(|t| t.0).collect();
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 24).into_font())
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d((x0..x1).log_scale().with_key_points(keys), y0..y1)
        .map_err(err)?;
    let labels = temps.clone();
    chart
        .configure_mesh()
        .x_desc("distillation temperature T (log scale)")
        .y_desc("student test accuracy (%)")
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v: &f64| {
            labels
                .iter()
                .find(|t| (t.0 - v).abs() < 1e-9 * v.abs().max(1.0))
                .map_or(format!("{v}"), |t| t.1.clone())
        })
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err)?;

    let mut legend_items: Vec<(String, RGBColor, bool)> = Vec::new();
    for (name, stat, colour) in [
        ("teacher", s.teacher, RGBColor(40, 40, 40)),
        ("baseline student", s.baseline, RGBColor(150, 150, 150)),
    ] {
        if let Some(st) = stat {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, st.mean), (x1, st.mean)],
                    8,
                    6,
                    colour.stroke_width(2),
                ))
                .map_err(err)?;
            legend_items.push((format!("{name} {:.2}%", st.mean), colour, true));
        }
    }
    for (rank, (_, a)) in alphas.iter().enumerate() {
        let colour = alpha_colour(rank);
        let mut pts: Vec<&Cell> = s.cells.iter().filter(|c| &c.alpha == a).collect();
        pts.sort_by(|p, q| p.t_value.total_cmp(&q.t_value));
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|c| (c.t_value, c.test.mean)),
                colour.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|c| Circle::new((c.t_value, c.test.mean), 4, colour.filled())),
            )
            .map_err(err)?;
        if pts.iter().any(|c| c.test.n > 1) {
            chart
                .draw_series(pts.iter().map(|c| {
                    ErrorBar::new_vertical(
                        c.t_value,
                        c.test.mean - c.test.std,
                        c.test.mean,
                        c.test.mean + c.test.std,
                        colour.stroke_width(1),
                        8,
                    )
                }))
                .map_err(err)?;
        }
        legend_items.push((format!("α = {a}"), colour, false));
    }

    // The legend sits beside the plot, never over the data.
    let n_seeds = s.cells.iter().map(|c| c.test.n).max().unwrap_or(1);
    let mut y = 70;
    let font = ("sans-serif", 16).into_font();
    legend
        .draw(&Text::new(
            "legend",
            (10, y - 28),
            ("sans-serif", 17).into_font().style(FontStyle::Bold),
        ))
        .map_err(err)?;
    for (label, colour, dashed) in &legend_items {
        let style = colour.stroke_width(2);
        if *dashed {
            legend
                .draw(&PathElement::new(vec![(10, y), (22, y)], style))
                .map_err(err)?;
            legend
                .draw(&PathElement::new(vec![(28, y), (40, y)], style))
                .map_err(err)?;
        } else {
            legend
                .draw(&PathElement::new(vec![(10, y), (40, y)], style))
                .map_err(err)?;
            legend
                .draw(&Circle::new((25, y), 4, colour.filled()))
                .map_err(err)?;
        }
        legend
            .draw(&Text::new(label.clone(), (48, y - 9), font.clone()))
            .map_err(err)?;
        y += 28;
    }
    let note = if n_seeds > 1 {
        format!("mean of {n_seeds} seeds; bars ± 1 std")
    } else {
        "one seed".to_string()
    };
    legend
        .draw(&Text::new(
            note,
            (10, y + 10),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_uses_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[7.0]).unwrap().std, 0.0);
        assert!(Stat::of(&[]).is_none());
    }
}
