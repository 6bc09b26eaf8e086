//! The charts, as PNG and SVG. Text is drawn with an embedded font (DejaVu Sans through `ab_glyph`), so
//! charts render on machines with no fonts; legends sit beside the plot, never over the data; each α
//! has the same colour in every chart.

use super::{Cell, Gain, Stat, Summary};
use crate::config::Method;
use crate::plan::Role;
use crate::store::{RunRecord, Status};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Colours per α, by the α's rank among the sweep's α values (colour-blind-safe palette).
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

/// The sweep's distinct T values (sorted) with their written text.
fn temperatures(cells: &[Cell]) -> Vec<(f64, String)> {
    distinct(
        cells
            .iter()
            .filter(|c| c.method.uses_temperature())
            .map(|c| (c.t_value, c.temperature.as_str())),
    )
}

/// The sweep's distinct α values (sorted); a value's rank is its colour.
pub fn alphas(cells: &[Cell]) -> Vec<(f64, String)> {
    distinct(cells.iter().map(|c| (c.a_value, c.alpha.as_str())))
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
        .y_desc("student test accuracy (%)")
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

/// What the accuracy chart shows, prepared apart from the drawing: the logit cells on the T axis, the
/// cells of methods without a temperature, the shared vertical range, the α list and the chosen cell.
struct AccuracyView<'s> {
    s: &'s Summary,
    logit: Vec<&'s Cell>,
    others: Vec<&'s Cell>,
    /// Methods without a temperature that have cells, in report order.
    methods: Vec<Method>,
    y: (f64, f64),
    alphas: Vec<(f64, String)>,
    chosen: Option<&'s Cell>,
}

impl<'s> AccuracyView<'s> {
    fn of(s: &'s Summary) -> AccuracyView<'s> {
        let (logit, others): (Vec<&Cell>, Vec<&Cell>) =
            s.cells.iter().partition(|c| c.method.uses_temperature());
        let methods = Method::ALL
            .into_iter()
            .filter(|m| others.iter().any(|c| c.method == *m))
            .collect();
        let ys = s
            .cells
            .iter()
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
            alphas: distinct(
                s.cells
                    .iter()
                    .map(|c| (c.a_value, c.alpha.as_str()))
                    .chain(s.pruned.iter().map(|p| (p.a_value, p.alpha.as_str()))),
            ),
            chosen: s.chosen.map(|i| &s.cells[i]),
        }
    }

    /// The colour rank of an α value.
    fn rank(&self, a: &str) -> usize {
        self.alphas.iter().position(|x| x.1 == a).unwrap_or(0)
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
                colour: alpha_colour(r),
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
            note.push_str("\nright panel: methods that\nhave no temperature");
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
        let (plot, panel) = plots.split_horizontally(w - 90 - 70 * v.methods.len() as u32);
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
                    .filter(|p| p.method.uses_temperature())
                    .map(|p| (p.t_value, p.temperature.as_str())),
            ),
    ));
    let (x0, x1) = axis.range;
    let mut chart = temperature_chart(plot, title, &axis, v.y)?;
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
        let colour = alpha_colour(r);
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
                    .filter(|p| p.method.uses_temperature() && &p.alpha == a)
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
    if let Some(c) = v.chosen.filter(|c| c.method.uses_temperature()) {
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
    let names: Vec<&str> = v.methods.iter().map(|m| m.name()).collect();
    chart
        .configure_mesh()
        .x_desc(if v.logit.is_empty() {
            ""
        } else {
            "no temperature"
        })
        .axis_desc_style(("sans-serif", 18))
        .y_desc(if v.logit.is_empty() {
            "student test accuracy (%)"
        } else {
            ""
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
    let n_alpha = v.alphas.len().max(1) as f64;
    for (mi, m) in v.methods.iter().enumerate() {
        for p in v.s.pruned.iter().filter(|p| p.method == *m) {
            let x = mi as f64 + 0.2 + 0.6 * (v.rank(&p.alpha) as f64 + 0.5) / n_alpha;
            let colour = alpha_colour(v.rank(&p.alpha));
            chart
                .draw_series([Circle::new((x, p.val.mean), 5, colour.stroke_width(2))])
                .map_err(derr)?;
        }
        for c in v.others.iter().filter(|c| c.method == *m) {
            let x = mi as f64 + 0.2 + 0.6 * (v.rank(&c.alpha) as f64 + 0.5) / n_alpha;
            let colour = alpha_colour(v.rank(&c.alpha));
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

/// Blue (negative) – white (zero) – red (positive), `v` in [−1, 1].
pub fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v < 0.0 {
        (33.0, 102.0, 172.0)
    } else {
        (178.0, 24.0, 43.0)
    };
    let t = v.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// `kd_gain_heatmap`: α (rows) × T (columns), each cell the mean test-accuracy gain over the baseline in
/// points, written in the cell, on a diverging scale centred on zero, with a colour bar.
pub fn kd_gain_heatmap<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let logit: Vec<Cell> = s
        .cells
        .iter()
        .filter(|c| c.method.uses_temperature())
        .cloned()
        .collect();
    let temps = temperatures(&logit);
    let alphas = alphas(&logit);
    let (w, h) = root.dim_in_pixel();
    let (left, top, right, bottom) = (110i32, 70i32, w as i32 - 170, h as i32 - 80);
    root.draw(&Text::new(
        title.to_string(),
        (16, 18),
        ("sans-serif", 22).into_font(),
    ))
    .map_err(derr)?;
    let gains: Vec<f64> = logit
        .iter()
        .filter_map(|c| c.gain.map(|g| g.mean))
        .collect();
    let scale = gains.iter().fold(0.0f64, |m, g| m.max(g.abs())).max(0.5);
    let cw = (right - left) / temps.len().max(1) as i32;
    let ch = (bottom - top) / alphas.len().max(1) as i32;
    let centre = |x: i32, y: i32, text: String, size: i32| -> anyhow::Result<()> {
        let style = ("sans-serif", size).into_font().into_text_style(root).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        root.draw(&Text::new(text, (x, y), style)).map_err(derr)
    };
    for (row, (_, a)) in alphas.iter().enumerate() {
        let y = top + row as i32 * ch;
        centre(left - 40, y + ch / 2, format!("α = {a}"), 16)?;
        for (col, (_, t)) in temps.iter().enumerate() {
            let x = left + col as i32 * cw;
            let cell = logit.iter().find(|c| &c.alpha == a && &c.temperature == t);
            let gain = cell.and_then(|c| c.gain);
            let fill = gain.map_or(RGBColor(235, 235, 235), |g| diverging(g.mean / scale));
            root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], fill.filled()))
                .map_err(derr)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + cw, y + ch)],
                WHITE.stroke_width(2),
            ))
            .map_err(derr)?;
            let text = match gain {
                Some(g) => format!("{:+.2}", g.mean),
                None if cell.is_some() => "no baseline".into(),
                None => "—".into(),
            };
            centre(x + cw / 2, y + ch / 2, text, 17)?;
            let chosen = s.chosen.map(|i| &s.cells[i]);
            if chosen.is_some_and(|ch| {
                cell.is_some_and(|c| c.method == ch.method && c.label() == ch.label())
            }) {
                root.draw(&Rectangle::new(
                    [(x + 3, y + 3), (x + cw - 3, y + ch - 3)],
                    BLACK.stroke_width(3),
                ))
                .map_err(derr)?;
            }
        }
    }
    for (col, (_, t)) in temps.iter().enumerate() {
        centre(left + col as i32 * cw + cw / 2, bottom + 18, t.clone(), 16)?;
    }
    centre(
        (left + right) / 2,
        bottom + 48,
        "distillation temperature T".into(),
        18,
    )?;
    // colour bar
    let (bx, bw) = (right + 40, 24);
    let steps = 100;
    for i in 0..steps {
        let v = 1.0 - 2.0 * i as f64 / (steps - 1) as f64;
        let y0 = top + (bottom - top) * i / steps;
        let y1 = top + (bottom - top) * (i + 1) / steps;
        root.draw(&Rectangle::new(
            [(bx, y0), (bx + bw, y1 + 1)],
            diverging(v).filled(),
        ))
        .map_err(derr)?;
    }
    root.draw(&Rectangle::new(
        [(bx, top), (bx + bw, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(derr)?;
    for (v, label) in [
        (1.0, format!("{:+.2}", scale)),
        (0.0, "0".to_string()),
        (-1.0, format!("{:+.2}", -scale)),
    ] {
        let y = top + ((1.0 - v) / 2.0 * (bottom - top) as f64) as i32;
        root.draw(&PathElement::new(
            vec![(bx + bw, y), (bx + bw + 5, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(derr)?;
        root.draw(&Text::new(
            label,
            (bx + bw + 8, y - 8),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(derr)?;
    }
    root.draw(&Text::new(
        "gain (points)".to_string(),
        (bx - 20, top - 24),
        ("sans-serif", 15).into_font(),
    ))
    .map_err(derr)?;
    let note = "mean test-accuracy gain over the baseline student; boxed: chosen by validation";
    root.draw(&Text::new(
        note.to_string(),
        (left, h as i32 - 22),
        ("sans-serif", 14).into_font(),
    ))
    .map_err(derr)?;
    Ok(())
}

/// Per-epoch validation accuracy of a set of runs: (epoch, mean ± std over the runs).
fn curve(records: &[&RunRecord]) -> Vec<(u32, Stat)> {
    let epochs = records.iter().map(|r| r.history.len()).max().unwrap_or(0);
    (0..epochs)
        .filter_map(|e| {
            let vals: Vec<f64> = records
                .iter()
                .filter_map(|r| r.history.get(e).map(|h| h.val_acc))
                .collect();
            Stat::of(&vals).map(|s| (e as u32 + 1, s))
        })
        .collect()
}

/// `learning_curves`: validation accuracy per epoch for the teacher, the baseline and each α at its best
/// T (mean over seeds, shaded ± std).
pub fn learning_curves<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    s: &Summary,
    records: &[&RunRecord],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let (plot, side) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
    let done: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.status == Status::Done)
        .collect();
    let mut series: Vec<(Entry, Vec<(u32, Stat)>)> = Vec::new();
    for (role, name, colour) in [
        (Role::Teacher, "teacher", TEACHER),
        (Role::Baseline, "baseline student", BASELINE),
    ] {
        let rs: Vec<&RunRecord> = done.iter().copied().filter(|r| r.role == role).collect();
        if !rs.is_empty() {
            series.push((
                Entry {
                    label: name.into(),
                    colour,
                    line: Line::Dashed,
                },
                curve(&rs),
            ));
        }
    }
    let all_alphas = alphas(&s.cells);
    let rank = |a: &str| all_alphas.iter().position(|x| x.1 == a).unwrap_or(0);
    for (_, a) in &all_alphas {
        let best = s
            .cells
            .iter()
            .filter(|c| c.method.uses_temperature() && &c.alpha == a)
            .max_by(|x, y| x.val.mean.total_cmp(&y.val.mean));
        if let Some(b) = best {
            let rs: Vec<&RunRecord> = done
                .iter()
                .copied()
                .filter(|r| {
                    r.role == Role::Student
                        && r.method.uses_temperature()
                        && r.alpha.as_deref() == Some(a)
                        && r.temperature.as_deref() == Some(&b.temperature)
                })
                .collect();
            series.push((
                Entry {
                    label: format!("α = {a}, T = {}", b.temperature),
                    colour: alpha_colour(rank(a)),
                    line: Line::Solid,
                },
                curve(&rs),
            ));
        }
    }
    // the other families at their best α, dotted
    for m in Method::ALL.into_iter().filter(|m| !m.uses_temperature()) {
        if let Some(b) = super::best_by_validation(&s.cells, |c| c.method == m).map(|i| &s.cells[i])
        {
            let rs: Vec<&RunRecord> = done
                .iter()
                .copied()
                .filter(|r| {
                    r.role == Role::Student && r.method == m && r.alpha.as_deref() == Some(&b.alpha)
                })
                .collect();
            series.push((
                Entry {
                    label: format!("{}, α = {}", m.name(), b.alpha),
                    colour: alpha_colour(rank(&b.alpha)),
                    line: Line::Dotted,
                },
                curve(&rs),
            ));
        }
    }
    let max_epoch = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .max()
        .unwrap_or(1);
    let (y0, y1) = y_range(series.iter().flat_map(|s| {
        s.1.iter()
            .flat_map(|p| [p.1.mean - p.1.std, p.1.mean + p.1.std])
    }));
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
        .y_desc("validation accuracy (%)")
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
    let mut entries = Vec::new();
    for (entry, pts) in &series {
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
        if entry.line == Line::Dotted {
            chart
                .draw_series(DashedLineSeries::new(
                    line.clone(),
                    3,
                    5,
                    entry.colour.stroke_width(2),
                ))
                .map_err(derr)?;
        } else if entry.line == Line::Dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    line.clone(),
                    8,
                    6,
                    entry.colour.stroke_width(2),
                ))
                .map_err(derr)?;
        } else {
            chart
                .draw_series(LineSeries::new(line.clone(), entry.colour.stroke_width(2)))
                .map_err(derr)?;
        }
        chart
            .draw_series(
                line.iter()
                    .map(|p| Circle::new(*p, 3, entry.colour.filled())),
            )
            .map_err(derr)?;
        entries.push(entry.clone());
    }
    let n = done
        .iter()
        .filter(|r| r.role == Role::Baseline || r.role == Role::Teacher)
        .map(|r| r.seed)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let note = if n > 1 {
        format!("mean of {n} seeds;\nshaded ± 1 std;\neach α at its best T\n(by validation)")
    } else {
        "one seed;\neach α at its best T\n(by validation)".into()
    };
    legend(&side, "legend", &entries, &note)
}

/// Draws the three charts of a sweep under `dir/charts/`.
/// One point of the capacity-gap chart: a student model, its parameters, its best cell's KD gain.
pub struct CapacityPoint {
    pub model: String,
    pub parameters: f64,
    pub gain: Gain,
    pub setting: String,
}

/// The points of the capacity-gap chart: each student model's best cell by validation accuracy, and
/// its gain over that model's baseline (models whose size is unknown for `dataset`, or without a
/// baseline, are left out).
pub fn capacity_points(s: &Summary, dataset: &str) -> Vec<CapacityPoint> {
    let Some(kind) = crate::config::DatasetKind::parse(dataset) else {
        return Vec::new();
    };
    s.student_models()
        .into_iter()
        .filter_map(|m| {
            let arch = crate::model::Arch::parse(&m).ok()?;
            let part = s.for_model(&m);
            let c = &part.cells[part.chosen?];
            Some(CapacityPoint {
                parameters: arch.parameters(kind.image_shape(), kind.classes() as i64) as f64,
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
    let colour = alpha_colour(0);
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

pub fn write_all(
    dir: &Path,
    name: &str,
    dataset: &str,
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
        let (suffix, who) = model.map_or((String::new(), String::new()), |m| {
            (format!("-{m}"), format!("{m} "))
        });
        if !part.cells.is_empty() {
            let title = format!("{name}: {who}student accuracy vs temperature ({dataset})");
            both!(
                &charts,
                format!("accuracy_vs_temperature{suffix}"),
                CHART_SIZE,
                |a| accuracy_vs_temperature(&a, &title, part)
            );
        }
        if part.cells.iter().any(|c| c.method.uses_temperature()) {
            let gain = match model {
                Some(m) => format!("{m}, logit KD gain over its baseline"),
                None => "logit KD gain over the baseline student".into(),
            };
            let title = format!("{name}: {gain} (points, {dataset})");
            both!(
                &charts,
                format!("kd_gain_heatmap{suffix}"),
                CHART_SIZE,
                |a| { kd_gain_heatmap(&a, &title, part) }
            );
        }
    }
    if several {
        let points = capacity_points(s, dataset);
        if !points.is_empty() {
            let title = format!("{name}: best KD gain against student size ({dataset})");
            both!(&charts, "capacity_gap", CHART_SIZE, |a| capacity_gap(
                &a, &title, &points
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::records;

    /// Width, height and number of distinct colours of a PNG.
    pub(crate) fn png_facts(path: &Path) -> (u32, u32, usize) {
        let f = std::fs::File::open(path).unwrap();
        let mut r = png::Decoder::new(std::io::BufReader::new(f))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        let px: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
        (info.width, info.height, px.len())
    }

    #[test]
    fn the_three_charts_decode_and_carry_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = crate::report::summarize(&refs, None);
        write_all(dir.path(), "syn", "mnist", &s, &refs).unwrap();
        let charts = dir.path().join("charts");
        for stem in [
            "accuracy_vs_temperature",
            "kd_gain_heatmap",
            "learning_curves",
        ] {
            let (w, h, colours) = png_facts(&charts.join(format!("{stem}.png")));
            assert_eq!((w, h), CHART_SIZE, "{stem}");
            assert!(colours > 20, "{stem} looks blank");
        }
        let svg = |stem: &str| std::fs::read_to_string(charts.join(format!("{stem}.svg"))).unwrap();
        let acc = svg("accuracy_vs_temperature");
        for t in [
            "distillation temperature T (log scale)",
            "student test accuracy (%)",
            "α = 0.5",
            "teacher 90.00%",
            "baseline student 80.00%",
            "chosen: T=4, α=0.5",
        ] {
            assert!(acc.contains(t), "accuracy chart lacks {t:?}");
        }
        let heat = svg("kd_gain_heatmap");
        // mean gains: T=2 → +2.00, T=4 → +1.00
        for t in [
            "+2.00",
            "+1.00",
            "α = 0.5",
            "distillation temperature T",
            "gain (points)",
        ] {
            assert!(heat.contains(t), "heatmap lacks {t:?}");
        }
        let curves = svg("learning_curves");
        for t in [
            "epoch",
            "validation accuracy (%)",
            "teacher",
            "baseline student",
            "α = 0.5, T = 4",
        ] {
            assert!(curves.contains(t), "learning curves lack {t:?}");
        }
    }

    #[test]
    fn diverging_scale_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(-5.0), RGBColor(33, 102, 172));
    }
}
