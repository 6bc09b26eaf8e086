//! The gain heatmaps: each method's cells over its own axes — logit KD's α × T, DKD's (α, β) × T,
//! DIST's (β, γ) × τ, multi-T's α × temperature set — each cell the mean test-accuracy gain over the
//! baseline in points, written in the cell, on a diverging scale centred on zero.

use super::{derr, distinct, Area, Cell, Summary, Variant};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// One method variant's cells laid out on its axes: columns its temperature (or temperature set),
/// rows the rest of its coordinate; `chosen` the cell in the grid chosen by validation, if any.
pub struct GainGrid {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub x_desc: &'static str,
    /// (row, column, mean gain when the cell has a baseline to pair with).
    pub cells: Vec<(usize, usize, Option<f64>)>,
    pub chosen: Option<(usize, usize)>,
}

/// A cell's row: its hyper-parameters other than the column's ("α = 1, β = 8").
fn row_of(c: &Cell) -> (Vec<f64>, String) {
    let k = &c.coord;
    let mut key = Vec::new();
    let mut parts = Vec::new();
    for (name, g) in [("α", &k.alpha), ("β", &k.beta), ("γ", &k.gamma)] {
        if let Some(g) = g {
            key.push(g.value);
            parts.push(format!("{name} = {g}"));
        }
    }
    (key, parts.join(", "))
}

/// A cell's column: its temperature, or its set of temperatures ("{2,3,4}").
fn col_of(c: &Cell) -> Option<(f64, String)> {
    let k = &c.coord;
    if let Some(t) = &k.temperature {
        return Some((t.value, t.text.clone()));
    }
    let first = k.temperatures.first()?;
    let ts: Vec<&str> = k.temperatures.iter().map(|t| t.text.as_str()).collect();
    Some((first.value, format!("{{{}}}", ts.join(","))))
}

impl GainGrid {
    /// The grid of `v`'s cells in `s`; `None` for a variant without a temperature axis (its cells
    /// sit in the accuracy chart's side panel).
    pub fn of(s: &Summary, v: Variant) -> Option<GainGrid> {
        let cells: Vec<(usize, &Cell)> = (s.cells.iter().enumerate())
            .filter(|(_, c)| Variant::of(c) == v)
            .collect();
        let x_desc = match cells.first()?.1.method.uses_temperature() {
            true => "distillation temperature T",
            false => "the set of temperatures",
        };
        let cols = distinct(
            cells
                .iter()
                .filter_map(|(_, c)| col_of(c))
                .collect::<Vec<_>>()
                .iter()
                .map(|(v, t)| (*v, t.as_str())),
        );
        if cols.is_empty() {
            return None;
        }
        let mut rows: Vec<(Vec<f64>, String)> = Vec::new();
        for (_, c) in &cells {
            let r = row_of(c);
            if !rows.iter().any(|x| x.1 == r.1) {
                rows.push(r);
            }
        }
        rows.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let place = |c: &Cell| {
            let r = rows.iter().position(|x| x.1 == row_of(c).1)?;
            let k = cols
                .iter()
                .position(|x| Some(&x.1) == col_of(c).map(|x| x.1).as_ref())?;
            Some((r, k))
        };
        let placed: Vec<(usize, usize, Option<f64>)> = (cells.iter())
            .filter_map(|(_, c)| place(c).map(|(r, k)| (r, k, c.gain.map(|g| g.mean))))
            .collect();
        let chosen = s
            .chosen
            .and_then(|i| cells.iter().find(|(j, _)| *j == i))
            .and_then(|(_, c)| place(c));
        Some(GainGrid {
            rows: rows.into_iter().map(|r| r.1).collect(),
            cols: cols.into_iter().map(|c| c.1).collect(),
            x_desc,
            cells: placed,
            chosen,
        })
    }

    /// The largest |gain|, at least half a point: the ends of the colour scale.
    fn scale(&self) -> f64 {
        (self.cells.iter().filter_map(|c| c.2))
            .fold(0.0f64, |m, g| m.max(g.abs()))
            .max(0.5)
    }
}

/// Text centred on a point.
fn centred<DB: DrawingBackend>(
    root: &Area<DB>,
    (x, y): (i32, i32),
    text: String,
    size: i32,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let style = ("sans-serif", size)
        .into_font()
        .into_text_style(root)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(text, (x, y), style)).map_err(derr)
}

/// `gain_heatmap`: the grid's rows × columns, each cell's gain written in it and coloured on a
/// diverging scale, the chosen cell boxed, a colour bar at the right.
pub fn gain_heatmap<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    g: &GainGrid,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let (w, h) = root.dim_in_pixel();
    // rows labelled with several hyper-parameters need a wider margin
    let widest = g.rows.iter().map(|r| r.chars().count()).max().unwrap_or(6) as i32;
    let left = (30 + 9 * widest).max(110);
    let (top, right, bottom) = (70i32, w as i32 - 170, h as i32 - 80);
    root.draw(&Text::new(
        title.to_string(),
        (16, 18),
        ("sans-serif", 22).into_font(),
    ))
    .map_err(derr)?;
    let scale = g.scale();
    let cw = (right - left) / g.cols.len().max(1) as i32;
    let ch = (bottom - top) / g.rows.len().max(1) as i32;
    for (row, label) in g.rows.iter().enumerate() {
        let y = top + row as i32 * ch;
        centred(root, (left / 2 + 5, y + ch / 2), label.clone(), 16)?;
        for col in 0..g.cols.len() {
            let x = left + col as i32 * cw;
            let cell = g.cells.iter().find(|c| c.0 == row && c.1 == col);
            let gain = cell.and_then(|c| c.2);
            let fill = gain.map_or(RGBColor(235, 235, 235), |v| diverging(v / scale));
            let corners = [(x, y), (x + cw, y + ch)];
            root.draw(&Rectangle::new(corners, fill.filled()))
                .map_err(derr)?;
            root.draw(&Rectangle::new(corners, WHITE.stroke_width(2)))
                .map_err(derr)?;
            let text = match gain {
                Some(v) => format!("{v:+.2}"),
                None if cell.is_some() => "no baseline".into(),
                None => "—".into(),
            };
            centred(root, (x + cw / 2, y + ch / 2), text, 17)?;
            if g.chosen == Some((row, col)) {
                let inner = [(x + 3, y + 3), (x + cw - 3, y + ch - 3)];
                root.draw(&Rectangle::new(inner, BLACK.stroke_width(3)))
                    .map_err(derr)?;
            }
        }
    }
    for (col, t) in g.cols.iter().enumerate() {
        let x = left + col as i32 * cw + cw / 2;
        centred(root, (x, bottom + 18), t.clone(), 16)?;
    }
    centred(root, ((left + right) / 2, bottom + 48), g.x_desc.into(), 18)?;
    colour_bar(root, (right + 40, top, bottom), scale)?;
    let note = "mean test-accuracy gain over the baseline student; boxed: chosen by validation";
    root.draw(&Text::new(
        note.to_string(),
        (left, h as i32 - 22),
        ("sans-serif", 14).into_font(),
    ))
    .map_err(derr)?;
    Ok(())
}

/// The colour bar from −scale to +scale at x = `bx`, between `top` and `bottom`.
fn colour_bar<DB: DrawingBackend>(
    root: &Area<DB>,
    (bx, top, bottom): (i32, i32, i32),
    scale: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let bw = 24;
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
    Ok(())
}
