//! Accuracy against T (logit KD's cells, one line per α; every other method in a side panel) and
//! the student's agreement with its teacher against T (Stanton et al. 2021).

use super::{
    derr, distinct, legend, series_colour, temperature_chart, y_range, Area, Cell, Entry, Line,
    Summary, TAxis, Variant, BASELINE, LEGEND_WIDTH, TEACHER,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// The colour of a method without α in the side panel.
const NO_ALPHA: RGBColor = RGBColor(90, 90, 90);

/// What the accuracy chart shows, prepared apart from the drawing: plain logit KD's cells on the T
/// axis, the other methods' cells in the side panel (a method whose only axis is α: every cell; one
/// with more axes: its best cell by validation, its whole grid being in its heatmap), the shared
/// vertical range, the α list and the chosen cell.
struct AccuracyView<'s> {
    s: &'s Summary,
    logit: Vec<&'s Cell>,
    others: Vec<&'s Cell>,
    /// The panel's columns: the variants other than plain logit KD that have cells, in report order.
    methods: Vec<Variant>,
    y: (f64, f64),
    alphas: Vec<(f64, String)>,
    chosen: Option<&'s Cell>,
}

impl<'s> AccuracyView<'s> {
    fn of(s: &'s Summary) -> AccuracyView<'s> {
        let logit: Vec<&Cell> = (s.cells.iter())
            .filter(|c| Variant::of(c).is_plain_logit())
            .collect();
        let methods: Vec<Variant> = Variant::all_in(&s.cells)
            .into_iter()
            .filter(|v| !v.is_plain_logit())
            .collect();
        let mut others: Vec<&Cell> = Vec::new();
        for v in &methods {
            let mine = |c: &Cell| Variant::of(c) == *v;
            if v.alpha_only() {
                others.extend(s.cells.iter().filter(|c| mine(c)));
            } else if let Some(i) = super::super::best_by_validation(&s.cells, mine) {
                others.push(&s.cells[i]);
            }
        }
        let ys = (logit.iter().chain(&others))
            .flat_map(|c| [c.test.mean - c.test.std, c.test.mean + c.test.std]);
        let y = y_range(
            ys.chain(s.teacher.map(|t| t.mean))
                .chain(s.baseline.map(|b| b.mean))
                .chain(s.pruned.iter().map(|p| p.val.mean)),
        );
        AccuracyView {
            s,
            logit,
            others,
            methods,
            y,
            // pruned cells keep their α's colour, and their T its place on the axis
            // (logit KD's α only: DKD's weighs a term of its own)
            alphas: distinct(
                (s.cells.iter())
                    .filter(|c| c.method.alpha_is_mix())
                    .map(|c| (c.a_value, c.alpha.as_str()))
                    .chain(
                        (s.pruned.iter())
                            .filter(|p| p.method.alpha_is_mix())
                            .map(|p| (p.a_value, p.alpha.as_str())),
                    )
                    .filter(|(_, a)| !a.is_empty()),
            ),
            chosen: s.chosen.map(|i| &s.cells[i]),
        }
    }

    /// The colour rank of an α value.
    fn rank(&self, a: &str) -> usize {
        self.alphas.iter().position(|x| x.1 == a).unwrap_or(0)
    }

    /// A cell's place among logit KD's α values: none for a method without such an α (DKD, DIST).
    fn place(&self, method: crate::distill::Method, a: &str) -> Option<usize> {
        (method.alpha_is_mix() && !a.is_empty()).then(|| self.rank(a))
    }

    /// The colour of a cell's α; grey for a method without logit KD's α.
    fn colour(&self, method: crate::distill::Method, a: &str) -> RGBColor {
        self.place(method, a).map_or(NO_ALPHA, series_colour)
    }

    /// Where in its method's column a cell is drawn: at its α's place, in the middle without one.
    fn x(&self, column: usize, method: crate::distill::Method, a: &str) -> f64 {
        let n_alpha = self.alphas.len().max(1) as f64;
        match self.place(method, a) {
            Some(r) => column as f64 + 0.2 + 0.6 * (r as f64 + 0.5) / n_alpha,
            None => column as f64 + 0.5,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        for (name, stat, colour) in [
            ("teacher", self.s.teacher, TEACHER),
            ("baseline student", self.s.baseline, BASELINE),
        ] {
            if let Some(st) = stat {
                entries.push(Entry {
                    label: format!("{name} {:.2}%", st.mean),
                    colour,
                    line: Line::Dashed,
                });
            }
        }
        for (r, (_, a)) in self.alphas.iter().enumerate() {
            entries.push(Entry {
                label: format!("α = {a}"),
                colour: series_colour(r),
                line: Line::Solid,
            });
        }
        let mut own: Vec<&str> = (self.methods.iter())
            .filter(|v| !v.method.alpha_is_mix())
            .map(|v| v.method.name())
            .collect();
        own.dedup();
        if !own.is_empty() {
            entries.push(Entry {
                label: format!("{}: own axes", own.join(", ")),
                colour: NO_ALPHA,
                line: Line::Solid,
            });
        }
        if let Some(c) = self.chosen {
            entries.push(Entry {
                label: format!("chosen: {}", c.label()),
                colour: BLACK,
                line: Line::Marker,
            });
        }
        if !self.s.pruned.is_empty() {
            entries.push(Entry {
                label: "pruned by the search".into(),
                colour: BLACK,
                line: Line::Hollow,
            });
        }
        entries
    }

    fn note(&self) -> String {
        let n = self.s.cells.iter().map(|c| c.test.n).max().unwrap_or(1);
        let mut note = if n > 1 {
            format!("mean of {n} seeds; bars ± 1 std")
        } else {
            "one seed".to_string()
        };
        note.push_str("\nchosen by validation accuracy");
        if !self.s.pruned.is_empty() {
            note.push_str(
                "\nhollow: a pruned cell's\nvalidation accuracy at the\nepoch it reached",
            );
        }
        if !self.methods.is_empty() {
            note.push_str(
                "\nright panel: the other\nmethods (with more axes\nthan α: their best cell)",
            );
        }
        note
    }
}

/// `accuracy_vs_temperature`: logit students' test accuracy against T, one line per α (mean over
/// seeds, ± std bars), dashed teacher and baseline, a ring on the setting chosen by validation, and —
/// when the sweep has them — the methods without a temperature in a panel of their own beside it.
pub fn accuracy_vs_temperature<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let v = AccuracyView::of(s);
    let (plots, side) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
    if v.methods.is_empty() || v.logit.is_empty() {
        if v.logit.is_empty() {
            accuracy_panel(&plots, title, &v)?;
        } else {
            accuracy_t_axis(&plots, title, &v)?;
        }
    } else {
        // one title over both panels, so it is centred on the whole plot and never clipped
        let plots = plots
            .titled(title, ("sans-serif", 22).into_font())
            .map_err(derr)?;
        let w = plots.dim_in_pixel().0;
        let (plot, panel) = plots.split_horizontally(w - 90 - 80 * v.methods.len() as u32);
        accuracy_t_axis(&plot, "", &v)?;
        accuracy_panel(&panel, "", &v)?;
    }
    legend(&side, "legend", &v.entries(), &v.note())
}

/// The logit cells against T.
fn accuracy_t_axis<DB: DrawingBackend>(
    plot: &Area<DB>,
    title: &str,
    v: &AccuracyView,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let axis = TAxis::new(distinct(
        v.logit
            .iter()
            .map(|c| (c.t_value, c.temperature.as_str()))
            .chain(
                v.s.pruned
                    .iter()
                    .filter(|p| p.method.is_logit() && !p.coord.zscore)
                    .map(|p| (p.t_value, p.temperature.as_str())),
            ),
    ));
    let (x0, x1) = axis.range;
    let desc = if v.s.pruned.is_empty() {
        "student test accuracy (%)"
    } else {
        // a pruned cell has no test accuracy: its hollow point is its validation accuracy
        "student accuracy (%): test; hollow: validation when pruned"
    };
    let mut chart = temperature_chart(plot, title, &axis, v.y, desc)?;
    for (stat, colour) in [(v.s.teacher, TEACHER), (v.s.baseline, BASELINE)] {
        if let Some(st) = stat {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, st.mean), (x1, st.mean)],
                    8,
                    6,
                    colour.stroke_width(2),
                ))
                .map_err(derr)?;
        }
    }
    for (r, (_, a)) in v.alphas.iter().enumerate() {
        let colour = series_colour(r);
        let pts: Vec<&&Cell> = v.logit.iter().filter(|c| &c.alpha == a).collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|c| (c.t_value, c.test.mean)),
                colour.stroke_width(2),
            ))
            .map_err(derr)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|c| Circle::new((c.t_value, c.test.mean), 4, colour.filled())),
            )
            .map_err(derr)?;
        chart
            .draw_series(
                v.s.pruned
                    .iter()
                    .filter(|p| p.method.is_logit() && !p.coord.zscore && &p.alpha == a)
                    .map(|p| Circle::new((p.t_value, p.val.mean), 5, colour.stroke_width(2))),
            )
            .map_err(derr)?;
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
                .map_err(derr)?;
        }
    }
    if let Some(c) = v.chosen.filter(|c| Variant::of(c).is_plain_logit()) {
        chart
            .draw_series([Circle::new(
                (c.t_value, c.test.mean),
                10,
                BLACK.stroke_width(3),
            )])
            .map_err(derr)?;
    }
    Ok(())
}

/// The methods without a temperature: one column per method, the α values side by side within it.
/// Beside the T axis it has no caption of its own and shares the T axis's vertical scale.
fn accuracy_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    v: &AccuracyView,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // one column per method; the α values side by side within it
    let k = v.methods.len() as f64;
    // beside the T axis the panel has no caption of its own, so both share one vertical scale
    let mut builder = ChartBuilder::on(area);
    if v.logit.is_empty() {
        builder.caption(title, ("sans-serif", 22).into_font());
    }
    let mut chart = builder
        .margin(16)
        .margin_left(if v.logit.is_empty() { 16 } else { 4 })
        .x_label_area_size(50)
        .y_label_area_size(if v.logit.is_empty() { 64 } else { 0 })
        .build_cartesian_2d(0.0..k, v.y.0..v.y.1)
        .map_err(derr)?;
    let names: Vec<String> = v.methods.iter().map(|m| m.short()).collect();
    chart
        .configure_mesh()
        .x_desc(if v.logit.is_empty() {
            ""
        } else {
            "other methods"
        })
        .axis_desc_style(("sans-serif", 18))
        .y_desc(match (v.logit.is_empty(), v.s.pruned.is_empty()) {
            (false, _) => "",
            (true, true) => "student test accuracy (%)",
            (true, false) => "student accuracy (%): test; hollow: validation when pruned",
        })
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .x_labels(v.methods.len() * 2 + 1)
        .x_label_formatter(&|v: &f64| {
            let i = (*v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map_or(String::new(), |n| n.to_string())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(derr)?;
    for (stat, colour) in [(v.s.teacher, TEACHER), (v.s.baseline, BASELINE)] {
        if let Some(st) = stat {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, st.mean), (k, st.mean)],
                    8,
                    6,
                    colour.stroke_width(2),
                ))
                .map_err(derr)?;
        }
    }
    panel_points(&mut chart, v)
}

/// The panel's points: per column, its cells at their α's place, ± std bars, the chosen ring,
/// and (for a method whose only axis is α) its pruned cells hollow.
fn panel_points<DB: DrawingBackend>(
    chart: &mut ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    v: &AccuracyView,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    for (mi, m) in v.methods.iter().enumerate() {
        let mine = |method, zscore| Variant { method, zscore } == *m && m.alpha_only();
        for p in (v.s.pruned.iter()).filter(|p| mine(p.method, p.coord.zscore)) {
            let x = v.x(mi, p.method, &p.alpha);
            let colour = v.colour(p.method, &p.alpha);
            chart
                .draw_series([Circle::new((x, p.val.mean), 5, colour.stroke_width(2))])
                .map_err(derr)?;
        }
        for c in v.others.iter().filter(|c| Variant::of(c) == *m) {
            let x = v.x(mi, c.method, &c.alpha);
            let colour = v.colour(c.method, &c.alpha);
            chart
                .draw_series([Circle::new((x, c.test.mean), 5, colour.filled())])
                .map_err(derr)?;
            if c.test.n > 1 {
                chart
                    .draw_series([ErrorBar::new_vertical(
                        x,
                        c.test.mean - c.test.std,
                        c.test.mean,
                        c.test.mean + c.test.std,
                        colour.stroke_width(1),
                        8,
                    )])
                    .map_err(derr)?;
            }
            if v.chosen.is_some_and(|ch| std::ptr::eq(ch, *c)) {
                chart
                    .draw_series([Circle::new((x, c.test.mean), 10, BLACK.stroke_width(3))])
                    .map_err(derr)?;
            }
        }
    }
    Ok(())
}

/// `agreement_vs_temperature`: how often plain logit KD's students predict their teacher's class on
/// the test set, against T, one line per α (mean over seeds, ± std bars), beside the baseline
/// student's agreement (dashed): how much of the teacher the student took, apart from accuracy.
pub fn agreement_vs_temperature<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let cells: Vec<(&Cell, crate::report::Stat)> = (s.cells.iter())
        .filter(|c| Variant::of(c).is_plain_logit())
        .filter_map(|c| Some((c, c.agreement?)))
        .collect();
    let alphas = distinct(cells.iter().map(|(c, _)| (c.a_value, c.alpha.as_str())));
    let axis = TAxis::new(distinct(
        cells
            .iter()
            .map(|(c, _)| (c.t_value, c.temperature.as_str())),
    ));
    let y = y_range(
        (cells.iter())
            .flat_map(|(_, a)| [a.mean - a.std, a.mean + a.std])
            .chain(s.baseline_agreement.map(|b| b.mean)),
    );
    let (plot, side) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
    let desc = "top-1 agreement with the teacher (%)";
    let mut chart = temperature_chart(&plot, title, &axis, y, desc)?;
    let mut entries = Vec::new();
    if let Some(b) = s.baseline_agreement {
        let (x0, x1) = axis.range;
        let line = [(x0, b.mean), (x1, b.mean)];
        chart
            .draw_series(DashedLineSeries::new(line, 8, 6, BASELINE.stroke_width(2)))
            .map_err(derr)?;
        entries.push(Entry {
            label: format!("baseline student {:.2}%", b.mean),
            colour: BASELINE,
            line: Line::Dashed,
        });
    }
    for (r, (_, a)) in alphas.iter().enumerate() {
        let colour = series_colour(r);
        let pts: Vec<(f64, crate::report::Stat)> = (cells.iter())
            .filter(|(c, _)| &c.alpha == a)
            .map(|(c, st)| (c.t_value, *st))
            .collect();
        let line = pts.iter().map(|(t, st)| (*t, st.mean));
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(2)))
            .map_err(derr)?;
        // filled points, as the legend shows them (hollow means pruned elsewhere)
        chart
            .draw_series((pts.iter()).map(|(t, st)| Circle::new((*t, st.mean), 4, colour.filled())))
            .map_err(derr)?;
        chart
            .draw_series(pts.iter().map(|(t, st)| {
                ErrorBar::new_vertical(
                    *t,
                    st.mean - st.std,
                    st.mean,
                    st.mean + st.std,
                    colour.stroke_width(1),
                    8,
                )
            }))
            .map_err(derr)?;
        entries.push(Entry {
            label: format!("α = {a}"),
            colour,
            line: Line::Solid,
        });
    }
    let note = "share of test images on\nwhich the student predicts\nthe teacher's class; mean\nover seeds, bars ± 1 std";
    legend(&side, "legend", &entries, note)
}
