//! `[grid] teacher_epoch`: which of the teacher's epochs teaches best — against the epoch the
//! snapshot was taken after, the teachers' own test accuracy there and the best student distilled
//! from it (chosen on validation), beside the baseline student.

use super::{derr, series_colour, y_range, Area, BASELINE, TEACHER};
use crate::report::Summary;
use plotters::prelude::*;

/// Test accuracy (%) against the teacher's epoch: the teacher snapshot's, the best student's with
/// ± one standard deviation over seeds, the baseline's as a dashed line; the best student's setting is
/// written beside its point.
pub fn teacher_epoch<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let teacher: Vec<(f64, f64)> = (s.snapshots.iter())
        .filter_map(|r| Some((r.epoch as f64, r.teacher_test?.mean)))
        .collect();
    let student: Vec<(f64, &crate::report::Cell)> = (s.snapshots.iter())
        .filter_map(|r| Some((r.epoch as f64, &s.cells[r.best?])))
        .collect();
    if teacher.is_empty() && student.is_empty() {
        return Ok(());
    }
    let (y0, y1) = y_range(
        (teacher.iter().map(|p| p.1))
            .chain(
                student
                    .iter()
                    .flat_map(|(_, c)| [c.test.mean - c.test.std, c.test.mean + c.test.std]),
            )
            .chain(s.baseline.map(|b| b.mean)),
    );
    let last = s.snapshots.iter().map(|r| r.epoch).max().unwrap_or(1) as f64;
    let x = (0.0..last * 1.08 + 1.0, y0..y1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22).into_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0, x.1)
        .map_err(derr)?;
    chart
        .configure_mesh()
        .x_desc("the teacher's epoch the students distil from")
        .y_desc("test accuracy (%)")
        .draw()
        .map_err(derr)?;
    if let Some(b) = s.baseline {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, b.mean), (last * 1.08 + 1.0, b.mean)],
                8,
                6,
                BASELINE.stroke_width(2),
            ))
            .map_err(derr)?
            .label(format!("baseline student {:.2}", b.mean))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BASELINE.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(teacher.clone(), TEACHER.stroke_width(2)))
        .map_err(derr)?
        .label("teacher at that epoch")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], TEACHER.stroke_width(2)));
    chart
        .draw_series(teacher.iter().map(|&p| Circle::new(p, 4, TEACHER.filled())))
        .map_err(derr)?;
    let colour = series_colour(0);
    let line: Vec<(f64, f64)> = student.iter().map(|(e, c)| (*e, c.test.mean)).collect();
    chart
        .draw_series(LineSeries::new(line, colour.stroke_width(2)))
        .map_err(derr)?
        .label("best student distilled from it (chosen on validation)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    for (e, c) in &student {
        if c.test.n > 1 {
            let (a, b) = (c.test.mean - c.test.std, c.test.mean + c.test.std);
            chart
                .draw_series(LineSeries::new([(*e, a), (*e, b)], colour.stroke_width(1)))
                .map_err(derr)?;
        }
        chart
            .draw_series([Circle::new((*e, c.test.mean), 5, colour.filled())])
            .map_err(derr)?;
        chart
            .draw_series([Text::new(
                format!("  {}", c.setting()),
                (*e, c.test.mean),
                ("sans-serif", 14).into_font(),
            )])
            .map_err(derr)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15).into_font())
        .draw()
        .map_err(derr)?;
    Ok(())
}
