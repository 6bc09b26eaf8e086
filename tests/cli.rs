//! The command line as a newcomer meets it: exit codes as README.md's table gives them, and what
//! `report`, `compare` and `clean` say about folders that are not what they take.

mod common;
use common::*;

fn readme() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .unwrap()
}

/// Runs `args` and checks the exit code and that stderr says `says`.
fn expect(c: &Case, args: &[&str], code: i32, says: &str) {
    let o = c.run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    assert!(err.contains(says), "{args:?} does not say {says:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn exit_codes_are_the_ones_the_readme_gives() {
    // the table the binary is held to (whitespace as one space: the README wraps its lines)
    let readme = readme().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains(
            "Exit codes: 0 every run done; 1 a run failed, or a data or file error; 2 a bad sweep \
             file or usage; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM"
        ),
        "README.md's exit-code table changed: change this test and the code with it"
    );
    let c = Case::new(20, 10);
    // 2: usage — a model name that is not one (with the nearest name), a bad option or value, no
    // sweep file, a sweep file that does not exist or has a mistake
    expect(&c, &["models", "resnet9"], 2, "did you mean \"resnet8\"?");
    expect(&c, &["models", "--dataset", "nope"], 2, "allowed:");
    expect(&c, &[], 2, "give a sweep file");
    expect(&c, &["report", "out", "--results", "r"], 2, "--results");
    expect(&c, &["missing.toml"], 2, "no such file");
    let bad = c.sweep("bad", &body("[0]", "[0]", "[0.5]"));
    expect(
        &c,
        &["plan", bad.to_str().unwrap()],
        2,
        "`grid.temperature`",
    );
    // 1: a data error (here: no dataset where the sweep file says)
    let nodata = c.sweep(
        "nodata",
        &body("[0]", "[1]", "[0.5]").replace("path = \"data\"", "path = \"nothing-here\""),
    );
    let o = c.run(&["plan", nodata.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // 0: what works
    for args in [
        &["models", "resnet26"][..],
        &["--help"],
        &["report", "--help"],
    ] {
        let o = c.run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
}

/// Trains a tiny sweep `name` (one seed, T = `temps`, α = 0.5) into `out/<name>`.
fn tiny(c: &Case, name: &str, temps: &str) {
    let s = c.sweep(name, &body("[0]", temps, "[0.5]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn report_and_compare_say_what_is_wrong_with_the_folders_they_are_given() {
    let c = Case::new(200, 60);
    tiny(&c, "tiny", "[1]");
    tiny(&c, "other", "[8]");
    // a folder that does not exist, with the sweep it was probably meant to be
    expect(
        &c,
        &["report", "out/tinny"],
        2,
        "out/tinny: no such folder; did you mean out/tiny?",
    );
    expect(
        &c,
        &["report", "nowhere/x"],
        2,
        "nowhere/x: no such folder (give",
    );
    // the results root: its sweeps, and to pick one
    expect(
        &c,
        &["report", "out"],
        2,
        "out is a results root holding 2 sweep(s), not one sweep's folder; pick one: out/other, out/tiny",
    );
    expect(&c, &["status", "out"], 2, "pick one: out/other, out/tiny");
    // a folder compared with itself, however it is spelt
    expect(
        &c,
        &["compare", "out/tiny", "./out/tiny/", "--out", "cmp"],
        2,
        "out/tiny and ./out/tiny/ are the same folder",
    );
    assert!(!c.path("cmp").exists(), "nothing written");
    // no cell in common: a sentence, no empty table
    let o = c.run(&["compare", "out/tiny", "out/other", "--out", "cmp"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("No cell is in every sweep: tiny and other share no (method, T, α) setting"),
        "{out}"
    );
    assert!(!out.contains("\n| method | T | α |"), "{out}");
    assert!(out.contains("| other | logit | 8 | 0.5 |"), "{out}");
}
