//! `index.html`: one self-contained page per sweep (and one per comparison) — the verdict, sortable
//! tables, the charts inlined as SVG, each run's status and time, links to the CSVs and the manifest,
//! the sweep file as written, and where it ran. No external scripts, fonts, images or styles: the page
//! reads the same from a laptop, a cluster's file browser or an e-mail attachment. Every piece of text
//! that came from a file goes through [`escape`].

use super::compare::Comparison;
use super::{Cell, Gain, Meta, Stat, Summary};
use crate::store::{Manifest, RunRecord, Status};
use std::fmt::Write as _;
use std::path::Path;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1180px;padding:1rem 1.5rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem;margin:.4rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}.verdict{font-size:1.1rem;background:#f4f7fb;border-left:4px solid #3b6fb6;padding:.6rem .9rem;margin:1rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem;width:100%}
th,td{padding:.25rem .55rem;border-bottom:1px solid #e6e6e6;text-align:right;white-space:nowrap}
th{background:#fafafa;position:sticky;top:0}th.sort{cursor:pointer}th.sort:after{content:" ⇅";color:#aaa;font-size:.8em}
td.l,th.l{text-align:left}td.err{white-space:normal;text-align:left;color:#a02020;max-width:28rem}
tr.chosen td{background:#fff6d6;font-weight:600}.failed td{color:#a02020}
.scroll{overflow-x:auto}figure{margin:1rem 0;break-inside:avoid}figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#555;font-size:.9rem}pre{background:#f6f6f6;padding:.7rem;overflow-x:auto;font-size:.85rem}
nav a{margin-right:1rem}
@media print{body{max-width:none;padding:0;font-size:10pt}th{position:static}nav,th.sort:after{display:none}h2{break-after:avoid}table{break-inside:auto;font-size:8pt}tr{break-inside:avoid}.scroll{overflow:visible}th,td{white-space:normal;padding:.1rem .3rem}}
"#;

/// Click a column heading of a `table.sortable` to sort by it (numbers as numbers, blanks last).
const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.classList.add('sort');
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var dir=th.dataset.dir==='asc'?-1:1;th.dataset.dir=dir===1?'asc':'desc';
      var key=function(r){var c=r.cells[i];return c?(c.dataset.v!==undefined?c.dataset.v:c.textContent.trim()):'';};
      rows.sort(function(a,b){var x=key(a),y=key(b),nx=parseFloat(x),ny=parseFloat(y);
        if(x===''&&y!=='')return 1;if(y===''&&x!=='')return -1;
        if(!isNaN(nx)&&!isNaN(ny))return dir*(nx-ny);return dir*x.localeCompare(y);});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        escape(title)
    )
}

/// An SVG chart file, made scalable (a viewBox from its size) for inlining; `None` if unreadable.
pub fn inline_svg(path: &Path) -> Option<String> {
    let svg = std::fs::read_to_string(path).ok()?;
    let start = svg.find("<svg")?;
    let svg = &svg[start..];
    if svg.contains("<script") || svg.contains("<foreignObject") {
        return None; // never inline anything active
    }
    let attr = |name: &str| -> Option<String> {
        let head = &svg[..svg.find('>')?];
        let i = head.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(head[i..].split('"').next()?.to_string())
    };
    match (attr("width"), attr("height")) {
        (Some(w), Some(h)) if !svg[..svg.find('>')?].contains("viewBox") => Some(svg.replacen(
            "<svg",
            &format!("<svg viewBox=\"0 0 {w} {h}\" role=\"img\""),
            1,
        )),
        _ => Some(svg.to_string()),
    }
}

fn stat_cell(s: Option<Stat>) -> String {
    match s {
        Some(s) => format!("<td data-v=\"{:.4}\">{}</td>", s.mean, s.show()),
        None => "<td></td>".into(),
    }
}

fn opt_num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("<td data-v=\"{v:.6}\">{v:.digits$}</td>"),
        None => "<td></td>".into(),
    }
}

/// A paired gain's two cells, its mean and its 95 % interval (empty cells for none).
fn gain_cells(g: &Option<Gain>) -> (String, String) {
    match g {
        Some(g) => (
            format!("<td data-v=\"{:.6}\">{:+.2}</td>", g.mean, g.mean),
            // sorted by the interval's lower end before its cut at −100, so cut ones keep an order
            match (g.ci95, g.half_width()) {
                (Some((lo, hi)), Some(h)) => {
                    format!("<td data-v=\"{:.6}\">[{lo:+.2}, {hi:+.2}]</td>", g.mean - h)
                }
                _ => "<td>n/a (one seed)</td>".into(),
            },
        ),
        None => ("<td></td>".into(), "<td></td>".into()),
    }
}

/// The best of each family (`Summary::methods`, as summary.md lists them): chosen by validation,
/// with its test accuracy, its gain and its paired difference from plain logit KD's best.
fn families_table(s: &Summary) -> String {
    let mut b = String::from("<h2>The best of each family</h2>\n<p class=\"meta\">Each family's cell chosen by validation accuracy; the last columns: its test accuracy minus plain logit KD's best cell's, paired over seeds.</p>\n<table class=\"sortable\" id=\"families\"><thead><tr><th class=\"l\">family</th><th class=\"l\">setting</th><th>validation (%)</th><th>test (%)</th><th>KD gain (points)</th><th>95 % CI</th><th>vs logit KD's best (points)</th><th>95 % CI</th></tr></thead><tbody>\n");
    for m in &s.methods {
        let c = &s.cells[m.cell];
        let (g, ci) = gain_cells(&c.gain);
        let (vg, vci) = gain_cells(&m.vs_logit);
        let _ = writeln!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td>{}{}{g}{ci}{vg}{vci}</tr>",
            escape(&m.family),
            escape(&c.label()),
            stat_cell(Some(c.val)),
            stat_cell(Some(c.test)),
        );
    }
    b.push_str("</tbody></table>\n");
    b
}

fn cell_row(c: &Cell, chosen: bool) -> String {
    let t = if c.method.uses_temperature() {
        escape(&c.temperature)
    } else {
        "–".into()
    };
    let (g, ci) = gain_cells(&c.gain);
    let extra = c.coord.extra_text();
    let kl = match c.kl {
        Some(k) => format!("<td data-v=\"{:.6}\">{:.4}</td>", k.mean, k.mean),
        None => "<td></td>".into(),
    };
    format!(
        "<tr{}><td class=\"l\">{}</td><td data-v=\"{}\">{t}</td><td data-v=\"{}\">{}</td><td class=\"l\">{}</td>{}{}{g}{ci}{}{kl}<td>{}</td></tr>\n",
        if chosen { " class=\"chosen\"" } else { "" },
        // another student than the tutorial's is named beside the method
        if c.student_model.is_empty() || c.student_model == "tutorial-student" {
            c.method.name().to_string()
        } else {
            format!("{} · {}", escape(&c.student_model), c.method.name())
        },
        if c.method.uses_temperature() { c.t_value } else { -1.0 },
        c.a_value,
        escape(&c.alpha),
        if extra.is_empty() { "–".into() } else { escape(&extra) },
        stat_cell(Some(c.test)),
        stat_cell(Some(c.val)),
        stat_cell(c.agreement),
        c.test.n
    )
}

fn cells_table(s: &Summary) -> String {
    let mut o = String::from(
        "<div class=\"scroll\"><table class=\"sortable\" id=\"cells\"><thead><tr><th class=\"l\">method</th><th>T</th><th>α</th><th class=\"l\">other</th>\
         <th>test accuracy (%)</th><th>validation accuracy (%)</th><th>KD gain (points)</th><th>paired 95 % CI of the gain</th>\
         <th title=\"top-1 agreement with the teacher on the test set\">agreement with the teacher (%)</th><th title=\"mean KL(teacher ‖ student) at T = 1 on the test set\">KL to the teacher</th><th>seeds</th></tr></thead><tbody>\n",
    );
    for (i, c) in s.cells.iter().enumerate() {
        o.push_str(&cell_row(c, Some(i) == s.chosen));
    }
    o.push_str("</tbody></table></div>\n");
    if let Some(said) = s.baseline_agreement_said() {
        let _ = writeln!(o, "<p>{}</p>", escape(&said));
    }
    o
}

fn runs_table(records: &[&RunRecord]) -> String {
    let mut o = String::from(
        "<div class=\"scroll\"><table class=\"sortable\" id=\"runs\"><thead><tr><th class=\"l\">run</th><th class=\"l\">role</th><th class=\"l\">status</th>\
         <th>epochs</th><th>best validation (%)</th><th>test at best (%)</th><th>last test (%)</th><th>seconds</th><th class=\"l\">device</th><th class=\"l\">error</th></tr></thead><tbody>\n",
    );
    for r in records {
        let failed = r.status == Status::Failed;
        let _ = writeln!(
            o,
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>{}{}{}<td data-v=\"{:.3}\">{:.1}</td><td class=\"l\">{}</td><td class=\"err\">{}</td></tr>",
            if failed { " class=\"failed\"" } else { "" },
            escape(&r.run_id),
            r.role.name(),
            match r.status {
                Status::Done => "done",
                Status::Failed => "failed",
                Status::Pruned => "pruned",
            },
            r.history.len(),
            opt_num(r.best_val_acc, 2),
            opt_num(r.test_acc_at_best, 2),
            opt_num(r.test_acc, 2),
            r.seconds,
            r.seconds,
            escape(&r.device),
            escape(r.error.as_deref().unwrap_or("")),
        );
    }
    o.push_str("</tbody></table></div>\n");
    o
}

fn charts_section(dir: &Path) -> String {
    let mut o = String::new();
    let fixed = [
        (
            "teacher_epoch",
            "Distilling from the teacher's epochs: the teacher's test accuracy after each snapshot epoch (black), the best student distilled from that snapshot (chosen by validation accuracy; bars ± 1 std over seeds) and the baseline student (dashed). The charts below show the cells of the chosen cell's snapshot.",
        ),
        (
            "capacity_gap",
            "The best cell of each student model (by validation accuracy): its KD gain over the same model's baseline against the student's parameters, with the 95 % confidence interval.",
        ),
        (
            "accuracy_vs_temperature",
            "Student test accuracy against T, one line per α (mean over seeds, bars ± 1 std); the ring marks the setting chosen by validation accuracy.",
        ),
        (
            "agreement_vs_temperature",
            "How often logit KD's students predict their teacher's class on the test set, against T, one line per α; dashed: the baseline student's agreement (a student that learned nothing from its teacher).",
        ),
        (
            "kd_gain_heatmap",
            "Logit KD gain over the baseline student, in points, per (T, α).",
        ),
        (
            "ctkd_temperature",
            "CTKD: the temperature each cell learned, per epoch (mean over seeds).",
        ),
        (
            "learning_curves",
            "Validation accuracy per epoch (mean over seeds, band ± 1 std).",
        ),
    ];
    // the methods' gain heatmaps sit before CTKD's temperature, in report order
    let (before, after) = fixed.split_at(fixed.len() - 2);
    let captions: Vec<(String, String)> = (before.iter())
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .chain(heatmap_captions())
        .chain(after.iter().map(|(f, c)| (f.to_string(), c.to_string())))
        .collect();
    // each chart, then its per-student-model versions (`<chart>-<model>`, in name order)
    let mut files: Vec<(String, &str)> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".svg")
                        .map(String::from)
                })
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for (stem, caption) in &captions {
        for n in &names {
            if n == stem
                || n.strip_prefix(stem.as_str())
                    .is_some_and(|r| r.starts_with('-'))
            {
                files.push((n.clone(), caption));
            }
        }
    }
    for (file, caption) in files {
        if let Some(svg) = inline_svg(&dir.join("charts").join(format!("{file}.svg"))) {
            let _ = writeln!(
                o,
                "<figure id=\"{file}\">{svg}<figcaption>{caption} <a href=\"charts/{file}.png\">PNG</a> · <a href=\"charts/{file}.svg\">SVG</a></figcaption></figure>"
            );
        }
    }
    o
}

/// A caption for every method's gain heatmap but plain logit KD's (`kd_gain_heatmap`), from the
/// method's axes: rows its weights, columns its temperature or set of temperatures.
fn heatmap_captions() -> Vec<(String, String)> {
    use crate::distill::Axis;
    use crate::report::charts::Variant;
    let mut out = Vec::new();
    for m in crate::config::Method::ALL {
        let axes = m.axes();
        let col = if axes.contains(&Axis::Temperature) {
            "T"
        } else if axes.contains(&Axis::Temperatures) {
            "set of temperatures"
        } else {
            continue; // no heatmap: its cells sit beside the accuracy chart
        };
        let rows: Vec<&str> = (axes.iter())
            .filter_map(|a| match a {
                Axis::Alpha => Some("α"),
                Axis::Beta => Some("β"),
                Axis::Gamma => Some("γ"),
                _ => None,
            })
            .collect();
        let rows = match rows.as_slice() {
            [one] => one.to_string(),
            many => format!("({})", many.join(", ")),
        };
        for zscore in [false, true] {
            if (zscore && !m.standardizable()) || (!zscore && m.is_logit()) {
                continue;
            }
            let title = match zscore {
                true => format!("{} with z-scored logits (logit standardisation)", m.title()),
                false => m.title().to_string(),
            };
            let stem = Variant { method: m, zscore }.stem();
            out.push((
                format!("gain_heatmap_{stem}"),
                format!("{title}: gain over the baseline student per ({rows}, {col})."),
            ));
        }
    }
    out
}

fn where_it_ran(m: &Manifest) -> String {
    let mut devices: Vec<String> = Vec::new();
    for s in &m.devices {
        let d = format!("{} × {} thread(s)", s.device, s.threads);
        if !devices.contains(&d) {
            devices.push(d);
        }
    }
    let when = |t: u64| {
        let secs = t as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, mo, d) = civil_from_days(days);
        format!(
            "{y:04}-{mo:02}-{d:02} {:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60
        )
    };
    format!(
        "<table id=\"where\"><tbody>\
         <tr><th class=\"l\">kd-sweep</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">libtorch</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">model version</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">devices</th><td class=\"l\">{} ({} worker(s))</td></tr>\
         <tr><th class=\"l\">data</th><td class=\"l\">{}; fingerprint {}</td></tr>\
         <tr><th class=\"l\">last run</th><td class=\"l\">{} – {}</td></tr>\
         <tr><th class=\"l\">sweep file</th><td class=\"l\">{}</td></tr>\
         </tbody></table>\n",
        escape(&m.kd_sweep_version),
        escape(&m.libtorch_version),
        m.model_version,
        escape(&devices.join(", ")),
        m.devices.len(),
        escape(
            &m.sweep
                .data
                .used_text(m.data.train_images, m.data.test_images)
        ),
        escape(&m.data.fingerprint[..m.data.fingerprint.len().min(16)]),
        when(m.started_at),
        when(m.finished_at),
        escape(&m.sweep_file.display().to_string()),
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The page's verdict, after a word that the sweep has not finished when it has not, and the
/// weak-teacher warning.
fn verdict_lines(b: &mut String, s: &Summary) {
    if let Some(u) = s.unfinished {
        let _ = writeln!(
            *b,
            "<p class=\"verdict\" id=\"unfinished\"><strong>Not finished:</strong> {}.</p>",
            escape(&u.sentence())
        );
    }
    let _ = writeln!(
        *b,
        "<p class=\"verdict\" id=\"verdict\"><strong>Verdict{}:</strong> {}.</p>",
        if s.unfinished.is_some() {
            " (so far)"
        } else {
            ""
        },
        escape(&s.verdict)
    );
    if let Some(w) = s.weak_teacher_warning() {
        let _ = writeln!(
            *b,
            "<p class=\"verdict\" id=\"weak-teacher\"><strong>Warning:</strong> {}.</p>",
            escape(&w)
        );
    }
    if let Some(w) = s.machines_warning() {
        let _ = writeln!(
            *b,
            "<p class=\"verdict\" id=\"machines\"><strong>Machines:</strong> {}.</p>",
            escape(&w)
        );
    }
}

/// The page of a sweep's results folder, from what `report::publish` has written (the charts' SVG
/// files) and the manifest, when there is one.
pub fn sweep_page(dir: &Path, meta: &Meta, s: &Summary, records: &[&RunRecord]) -> String {
    let manifest = Manifest::read(dir).ok();
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>{} — knowledge-distillation sweep</h1>\n<p class=\"meta\">{}</p>",
        escape(&meta.name),
        escape(&meta.context_line())
    );
    b.push_str("<nav><a href=\"#cells\">cells</a><a href=\"#charts\">charts</a><a href=\"#runs\">runs</a><a href=\"#sweep\">sweep file</a><a href=\"runs.csv\">runs.csv</a><a href=\"epochs.csv\">epochs.csv</a><a href=\"manifest.json\">manifest.json</a><a href=\"summary.md\">summary.md</a></nav>\n");
    verdict_lines(&mut b, s);
    if let Some(c) = s.chosen.map(|i| &s.cells[i]) {
        let _ = writeln!(
            b,
            "<p><strong>Chosen by validation accuracy:</strong> {} — validation {:.2} %, test {} %.</p>",
            escape(&c.label()),
            c.val.mean,
            c.test.show()
        );
    }
    if let Some(sp) = &s.search {
        let _ = writeln!(
            b,
            "<p id=\"search\"><strong>Search:</strong> {} The runs table lists the pruned runs; the accuracy chart draws them hollow.</p>",
            escape(&sp.sentence(s.pruned.len()))
        );
    }
    b.push_str("<table id=\"models\"><thead><tr><th class=\"l\">model</th><th>test accuracy (%)</th><th>seeds</th></tr></thead><tbody>\n");
    for (name, st) in [
        ("teacher", s.teacher),
        ("baseline student (no distillation)", s.baseline),
    ] {
        if let Some(st) = st {
            let _ = writeln!(
                b,
                "<tr><td class=\"l\">{name}</td>{}<td>{}</td></tr>",
                stat_cell(Some(st)),
                st.n
            );
        }
    }
    b.push_str("</tbody></table>\n<h2>Cells</h2>\n<p class=\"meta\">Click a heading to sort. The KD gain is the per-seed paired difference from the baseline student; its interval is a Student-t 95 % interval over seeds.</p>\n");
    b.push_str(&cells_table(s));
    if s.methods.len() > 1 {
        b.push_str(&families_table(s));
    }
    b.push_str("<h2 id=\"charts\">Charts</h2>\n");
    b.push_str(&charts_section(dir));
    let _ = writeln!(
        b,
        "<h2>Runs</h2>\n<p class=\"meta\">{} run(s), {} failed.</p>",
        records.len(),
        records
            .iter()
            .filter(|r| r.status == Status::Failed)
            .count()
    );
    b.push_str(&runs_table(records));
    b.push_str("<h2 id=\"sweep\">The sweep file</h2>\n");
    match manifest.as_ref().and_then(|m| m.sweep_text.as_ref()) {
        Some(text) => {
            let _ = writeln!(b, "<pre>{}</pre>", escape(text));
        }
        None => b.push_str("<p>not recorded (results written by an older kd-sweep)</p>\n"),
    }
    if let Some(m) = &manifest {
        b.push_str("<h2>Where it ran</h2>\n");
        b.push_str(&where_it_ran(m));
    }
    page(&format!("{} — kd-sweep", meta.name), &b)
}

/// Writes `<dir>/index.html`.
pub fn write_sweep_page(
    dir: &Path,
    meta: &Meta,
    s: &Summary,
    records: &[&RunRecord],
) -> std::io::Result<()> {
    crate::files::write_atomic(
        &dir.join("index.html"),
        sweep_page(dir, meta, s, records).as_bytes(),
    )
}

/// The page of a comparison: the sweeps, warnings, the shared cells and the overlay chart (already
/// written into `out` by `compare::chart`).
pub fn compare_page(out: &Path, c: &Comparison) -> String {
    let mut b = String::from("<h1>kd-sweep: comparing sweeps</h1>\n");
    b.push_str("<table id=\"sweeps\"><thead><tr><th class=\"l\">sweep</th><th class=\"l\">folder</th><th class=\"l\">dataset</th><th>model version</th><th>teacher epochs</th><th>student epochs</th><th class=\"l\">seeds</th></tr></thead><tbody>\n");
    for s in &c.sweeps {
        let seeds: Vec<String> = s.seeds.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&s.name),
            escape(&s.dir),
            escape(&s.dataset),
            s.model_version,
            s.teacher_epochs,
            s.student_epochs,
            seeds.join(", ")
        );
    }
    b.push_str("</tbody></table>\n");
    for w in &c.warnings {
        let _ = writeln!(b, "<p class=\"verdict\">warning: {}</p>", escape(w));
    }
    settings_table(&mut b, c);
    b.push_str("<h2>Shared cells</h2>\n");
    if let Some(none) = c.none_shared() {
        let _ = writeln!(b, "<p class=\"verdict\">{}</p>", escape(&none));
    } else {
        let _ = writeln!(b, "<p>{}</p>", escape(super::compare::SHARED_INTRO));
        shared_table(&mut b, c);
    }
    if !c.only.is_empty() {
        b.push_str("<h2>Cells only some sweeps have</h2>\n<table class=\"sortable\" id=\"only\"><thead><tr><th class=\"l\">sweep</th><th class=\"l\">method</th><th>T</th><th>α</th><th>test (%)</th></tr></thead><tbody>\n");
        for o in &c.only {
            let _ = writeln!(
                b,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>{}</tr>",
                escape(&o.sweep),
                escape(&o.method),
                escape(&o.temperature),
                escape(&o.alpha),
                stat_cell(Some(o.test))
            );
        }
        b.push_str("</tbody></table>\n");
    }
    if let Some(svg) = inline_svg(&out.join("compare_accuracy_vs_temperature.svg")) {
        let _ = writeln!(
            b,
            "<h2>Overlay</h2>\n<figure id=\"overlay\">{svg}<figcaption>Test accuracy against T: one colour per sweep, one line style per α. <a href=\"compare_accuracy_vs_temperature.png\">PNG</a></figcaption></figure>"
        );
    }
    page("kd-sweep comparison", &b)
}

/// The comparison page's table of the settings the sweeps differ in (or the sentence that they
/// differ in none).
fn settings_table(b: &mut String, c: &Comparison) {
    use super::compare::{SAME_SETTINGS, SETTINGS_INTRO};
    b.push_str("<h2>Settings</h2>\n");
    if c.settings.is_empty() {
        let _ = writeln!(b, "<p>{}</p>", escape(SAME_SETTINGS));
        return;
    }
    let _ = writeln!(b, "<p>{}</p>", escape(SETTINGS_INTRO));
    b.push_str("<table id=\"settings\"><thead><tr><th class=\"l\">setting</th>");
    for s in &c.sweeps {
        let _ = write!(b, "<th class=\"l\">{}</th>", escape(&s.name));
    }
    b.push_str("</tr></thead><tbody>\n");
    for d in &c.settings {
        let _ = write!(b, "<tr><td class=\"l\">{}</td>", escape(&d.setting));
        for v in &d.values {
            let _ = write!(b, "<td class=\"l\">{}</td>", escape(v));
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table>\n");
}

/// The comparison page's table of the cells every sweep has.
fn shared_table(b: &mut String, c: &Comparison) {
    b.push_str("<div class=\"scroll\"><table class=\"sortable\" id=\"shared\"><thead><tr><th class=\"l\">method</th><th>T</th><th>α</th>");
    for s in &c.sweeps {
        let _ = write!(b, "<th>{} test (%)</th>", escape(&s.name));
    }
    for s in c.sweeps.iter().skip(1) {
        let _ = write!(
            b,
            "<th>{} − {} (points)</th>",
            escape(&s.name),
            escape(&c.sweeps[0].name)
        );
    }
    for s in &c.sweeps {
        let _ = write!(b, "<th>KD gain in {} (points)</th>", escape(&s.name));
    }
    b.push_str("</tr></thead><tbody>\n");
    for cell in c.references.iter().chain(&c.shared) {
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
            escape(&cell.method),
            escape(&cell.temperature),
            escape(&cell.alpha)
        );
        for st in &cell.test {
            b.push_str(&stat_cell(*st));
        }
        for d in &cell.diff {
            match d {
                Some(d) => {
                    let _ = write!(b, "<td data-v=\"{d:.6}\">{d:+.2}</td>");
                }
                None => b.push_str("<td>–</td>"),
            }
        }
        for i in 0..c.sweeps.len() {
            match cell.gain.get(i).copied().flatten() {
                Some(g) => {
                    let _ = write!(b, "<td data-v=\"{g:.6}\">{g:+.2}</td>");
                }
                None => b.push_str("<td>–</td>"),
            }
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teacher_no_better_than_the_baseline_is_flagged_on_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta {
            name: "syn".into(),
            ..Default::default()
        };
        let mut recs = crate::report::tests::records();
        let page = |recs: &[RunRecord]| {
            let refs: Vec<&RunRecord> = recs.iter().collect();
            let s = crate::report::summarize(&refs, None);
            sweep_page(dir.path(), &meta, &s, &refs)
        };
        assert!(!page(&recs).contains("id=\"weak-teacher\""));
        for r in recs
            .iter_mut()
            .filter(|r| r.role == crate::record::Role::Teacher)
        {
            r.test_acc = Some(50.0);
        }
        let html = page(&recs);
        assert!(
            html.contains("id=\"weak-teacher\"")
                && html.contains("is no better than the student trained alone"),
            "{html}"
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn svg_gets_a_view_box_and_active_content_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.svg");
        std::fs::write(
            &p,
            "<?xml version=\"1.0\"?>\n<svg width=\"800\" height=\"600\" xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>",
        )
        .unwrap();
        let s = inline_svg(&p).unwrap();
        assert!(s.starts_with("<svg viewBox=\"0 0 800 600\""), "{s}");
        std::fs::write(&p, "<svg width=\"1\" height=\"1\"><script>x</script></svg>").unwrap();
        assert!(inline_svg(&p).is_none());
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
