//! The sweep page (`index.html`), the comparison page, and `kd-sweep status`: what a person reads.
//! The pages are checked as text (self-contained, escaped) and, where Debian's Chromium is installed
//! (`make test` installs it), rendered in a real headless browser.

mod common;
use common::{body, text, wait_for, Case};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A sweep file whose comment tries to break out of the page.
const HOSTILE: &str =
    "# </pre><script>document.title='pwned'</script><img src=x onerror=alert(1)>\n";

fn finished_sweep(c: &Case, name: &str, temps: &str) -> PathBuf {
    let s = c.sweep(
        name,
        &(HOSTILE.to_string() + &body("[0, 1]", temps, "[0.5, 0.9]")),
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    c.path(&format!("out/{name}"))
}

/// Nothing the page loads comes from elsewhere: no external scripts, styles, fonts or images.
fn assert_self_contained(html: &str) {
    for bad in [
        "src=\"http",
        "href=\"http",
        "@import",
        "url(",
        "<link",
        "<img",
        "<iframe",
    ] {
        assert!(!html.contains(bad), "the page references {bad:?}");
    }
    // our one script, and no other
    assert_eq!(html.matches("<script>").count(), 1);
}

#[test]
fn the_sweep_page_is_self_contained_complete_and_escaped() {
    let c = Case::new(200, 60);
    let dir = finished_sweep(&c, "page", "[1, 4]");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert_self_contained(&html);
    // charts scale with the page: each inlined SVG has a viewBox
    assert_eq!(html.matches("<svg ").count(), 4);
    assert_eq!(
        html.matches("<svg ").count(),
        html.matches("viewBox=\"0 0 ").count()
    );
    // the verdict, the tables, four inline charts, the links, the sweep file, where it ran
    for want in [
        "id=\"verdict\"",
        "<table class=\"sortable\" id=\"cells\">",
        "<table class=\"sortable\" id=\"runs\">",
        "id=\"accuracy_vs_temperature\"><svg ",
        "id=\"kd_gain_heatmap\"><svg ",
        "id=\"agreement_vs_temperature\"><svg ",
        "id=\"learning_curves\"><svg ",
        "href=\"runs.csv\"",
        "href=\"epochs.csv\"",
        "href=\"manifest.json\"",
        "<h2>Where it ran</h2>",
        "libtorch</th><td class=\"l\">2.11.0",
        // the images the sweep used, not only the dataset's
        "data</th><td class=\"l\">160 training images, 40 held out for validation, 60 test images; fingerprint",
        "accuracies are test accuracy in % on 60 test images",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    // one row per cell (2 T × 2 α) and one per run (2 teachers, 2 baselines, 8 students)
    assert_eq!(rows_of(&html, "cells"), 4);
    assert_eq!(rows_of(&html, "runs"), 12);
    // the hostile comment is shown as text, never as markup
    assert!(
        html.contains("&lt;/pre&gt;&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;")
    );
    assert!(!html.contains("<script>document.title"));
    assert!(!html.contains("<img src=x") && html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // `report` rewrites the same page from the records alone
    std::fs::remove_file(dir.join("index.html")).unwrap();
    let o = c.run(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let again = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert_eq!(rows_of(&again, "cells"), 4);
}

/// Body rows of the table with `id` (its heading row not counted).
fn rows_of(html: &str, id: &str) -> usize {
    let t = &html[html.find(&format!("id=\"{id}\"")).unwrap()..];
    t[..t.find("</table>").unwrap()].matches("<tr").count() - 1
}

#[test]
fn the_comparison_page_has_the_shared_cells_and_the_overlay() {
    let c = Case::new(200, 60);
    finished_sweep(&c, "ca", "[1, 4]");
    finished_sweep(&c, "cb", "[4, 8]");
    let o = c.run(&["compare", "out/ca", "out/cb", "--out", "cmp"]);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(c.path("cmp/index.html")).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("id=\"overlay\"><svg "));
    // the teacher and the baseline, then T = 4, the one shared temperature, at two α values
    assert_eq!(rows_of(&html, "shared"), 4);
    assert!(html.contains("<td class=\"l\">teacher</td>"));
    assert!(html.contains("<td class=\"l\">baseline student</td>"));
    assert!(html.contains("<td class=\"l\">logit</td><td>4</td><td>0.5</td>"));
    // the two sweeps differ in their grids alone
    assert!(html.contains(
        "<h2>Settings</h2>\n<p>The sweeps ran with the same settings apart from their grids.</p>"
    ));
}

/// Debian's Chromium, when installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn the_sweep_page_renders_in_a_real_browser() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no Chromium (make test installs Debian's chromium)");
        return;
    };
    let c = Case::new(200, 60);
    let dir = finished_sweep(&c, "shown", "[1, 4]");
    let url = format!("file://{}", dir.join("index.html").display());
    let profile = c.path("chromium-profile");
    // the DOM after scripts ran: tables and charts present, the hostile text inert
    let dom = headless(&browser, &profile)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<table class=\"sortable\" id=\"cells\">"),
        "{dom}"
    );
    assert_eq!(dom.matches("<svg").count(), 4, "four charts in the DOM");
    assert!(
        dom.contains("<title>shown — kd-sweep</title>"),
        "the title was not changed"
    );
    assert!(dom.contains("th class=\"sort\""), "the sorting script ran");
    // a screenshot at laptop width: a real picture, not a blank page
    let shot = c.path("shot.png");
    let o = headless(&browser, &profile)
        .args([
            "--window-size=1366,2400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1366, 2400));
    let px = &buf[..info.buffer_size()];
    let dark = px
        .chunks(info.color_type.samples())
        .filter(|p| p[0] < 100)
        .count();
    let total = px.len() / info.color_type.samples();
    // text, table rules and chart lines: more than a sliver, less than a dark page
    assert!(
        dark * 1000 > total && dark * 4 < total,
        "{dark} dark pixels of {total}"
    );
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn status_reads_a_finished_sweep_and_writes_nothing() {
    let c = Case::new(200, 60);
    let dir = finished_sweep(&c, "st", "[1, 4]");
    let before = listing(&c.path("out"));
    let o = c.run(&["status", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("st (mnist): 12 runs — 12 done, 0 failed, 0 running, 0 pending"),
        "{out}"
    );
    // everything finished: the best and the verdict are final, not "so far"
    assert!(
        out.contains("◀ best\n") && out.contains("\nverdict: ") && !out.contains("so far"),
        "{out}"
    );
    assert!(!out.contains("ETA"), "{out}");
    // by its sweep file too
    let o = c.run(&["status", "st.toml", "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(listing(&c.path("out")), before, "status changed the folder");
    // a folder that is no sweep
    let o = c.run(&["status", "data"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no manifest.json"));
}

#[test]
fn status_shows_a_running_sweep_with_an_eta() {
    let c = Case::new(400, 60);
    let b = body("[0]", "[1, 2, 4, 8]", "[0.5, 0.9]").replace("epochs = 2", "epochs = 8");
    let s = c.sweep("live", &b);
    let mut child = c.spawn(&[
        s.to_str().unwrap(),
        "--results",
        "out",
        "-q",
        "--workers-per-device",
        "1",
    ]);
    let mut seen = String::new();
    wait_for(120, 200, || {
        let o = c.run(&["status", "out/live"]);
        seen = String::from_utf8_lossy(&o.stdout).into_owned();
        seen.contains("running: student-") && seen.contains("ETA: about")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("running: student-"), "{seen}");
    assert!(seen.contains("ETA: about"), "{seen}");
    assert!(seen.contains("10 runs — "), "{seen}");
    // the killed coordinator's run is not shown as running any more
    let o = c.run(&["status", "out/live"]);
    let after = String::from_utf8_lossy(&o.stdout);
    assert!(after.contains("0 running"), "{after}");
}
