//! The capacity-gap chart: each student model's best KD gain against its size.

use super::{derr, series_colour, Area};
use crate::report::{Gain, Summary};
use plotters::prelude::*;

/// One point of the capacity-gap chart: a student model, its parameters, its best cell's KD gain.
pub struct CapacityPoint {
    pub model: String,
    pub parameters: f64,
    pub gain: Gain,
    pub setting: String,
}

/// The points of the capacity-gap chart: each student model's best cell by validation accuracy, and
/// its gain over that model's baseline (models whose size is unknown for `dataset`, or without a
/// baseline, are left out). `input` is the dataset's image shape and classes (none known: no points).
pub fn capacity_points(s: &Summary, input: Option<([i64; 3], i64)>) -> Vec<CapacityPoint> {
    let Some((shape, classes)) = input else {
        return Vec::new();
    };
    s.student_models()
        .into_iter()
        .filter_map(|m| {
            let arch = crate::model::Arch::parse(&m).ok()?;
            let part = s.for_model(&m);
            let c = &part.cells[part.chosen?];
            Some(CapacityPoint {
                parameters: arch.parameters(shape, classes) as f64,
                gain: c.gain?,
                setting: c.setting(),
                model: m,
            })
        })
        .collect()
}

/// KD gain of each student model's best cell against the student's parameters (log axis), with the
/// 95 % confidence interval of the paired gain: the capacity-gap picture.
pub fn capacity_gap<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    points: &[CapacityPoint],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let lo = points
        .iter()
        .map(|p| p.parameters)
        .fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.parameters).fold(0.0, f64::max);
    // gains are signed: the range spans every interval and zero, padded
    let ends = points.iter().flat_map(|p| {
        let (a, b) = p.gain.ci95.unwrap_or((p.gain.mean, p.gain.mean));
        [a, b]
    });
    let (lo_y, hi_y) = ends
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi_y - lo_y) * 0.12).max(0.5);
    let (y0, y1) = (lo_y - pad, hi_y + pad);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22).into_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), y0..y1)
        .map_err(derr)?;
    chart
        .configure_mesh()
        .x_desc("student parameters (log scale)")
        .y_desc("KD gain over the same student's baseline (points)")
        .x_label_formatter(&|v| format!("{:.2} M", v / 1e6))
        .draw()
        .map_err(derr)?;
    chart
        .draw_series(LineSeries::new(
            [(lo / 2.0, 0.0), (hi * 2.0, 0.0)],
            BLACK.mix(0.4),
        ))
        .map_err(derr)?;
    let colour = series_colour(0);
    for (i, p) in points.iter().enumerate() {
        // neighbours' labels alternate below and above their points, so close sizes stay readable
        let nudge = if i % 2 == 1 { 0.07 * (y1 - y0) } else { 0.0 };
        if let Some((a, b)) = p.gain.ci95 {
            chart
                .draw_series(LineSeries::new(
                    [(p.parameters, a), (p.parameters, b)],
                    colour.stroke_width(2),
                ))
                .map_err(derr)?;
        }
        chart
            .draw_series([Circle::new((p.parameters, p.gain.mean), 6, colour.filled())])
            .map_err(derr)?;
        chart
            .draw_series([Text::new(
                format!("  {} ({})", p.model, p.setting),
                (p.parameters, p.gain.mean + nudge),
                ("sans-serif", 15).into_font(),
            )])
            .map_err(derr)?;
    }
    Ok(())
}
