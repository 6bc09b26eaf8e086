use super::*;

/// Which finished runs a sweep may reuse: the same device class — CPU with CPU; GPU runs only on
/// the same GPU model, compute capability and precision mode; a GPU record from before models
/// were recorded matches no GPU the sweep can name.
#[test]
fn device_classes_keep_cpus_gpu_models_and_precision_apart() {
    let h200 = Some("NVIDIA H200, sm_90, TF32");
    assert_eq!(device_class("cpu", None), "cpu");
    assert_eq!(device_class("cuda:0", h200), device_class("cuda:3", h200));
    for other in [
        device_class("cpu", None),
        device_class("cuda:0", None),
        device_class("cuda:0", Some("NVIDIA H100 80GB HBM3, sm_90, TF32")),
        device_class("cuda:0", Some("NVIDIA H200, sm_90, FP32")),
    ] {
        assert_ne!(device_class("cuda:0", h200), other);
    }
    assert_eq!(device_class("", None), "");
}

fn spec() -> RunSpec {
    RunSpec {
        id: "student-T2-a0.5-s0".into(),
        role: crate::record::Role::Student,
        seed: 0,
        key: "ab".repeat(32),
        teacher: None,
        reference: None,
        coord: crate::distill::Coord {
            temperature: None,
            alpha: None,
            ..crate::distill::Coord::of(Default::default())
        },
        teacher_model: None,
        numerics: crate::platform::numerics::Numerics::Native,
        deterministic: false,
        cuda_graphs: false,
        snapshots: Vec::new(),
    }
}

fn stats(epoch: u32, val: f64) -> EpochStats {
    EpochStats {
        epoch,
        train_loss: 1.0,
        val_acc: val,
        seconds: epoch as f64,
        learned_temperature: None,
    }
}

/// A fitted run of these validation accuracies, tested once at the end.
fn fitted(vals: &[f64], test_last: f64, test_best: f64) -> Fitted {
    let history = (1..).zip(vals).map(|(e, &v)| stats(e, v)).collect();
    Fitted::new(history, test_last, test_best, Vec::new())
}

#[test]
fn best_epoch_is_chosen_by_validation_not_test() {
    let r = RunRecord::done(
        &spec(),
        3,
        fitted(&[50.0, 70.0, 70.0], 65.0, 60.0),
        3.0,
        "cpu",
    );
    assert_eq!(
        r.best_epoch,
        Some(2),
        "first epoch with the best validation accuracy"
    );
    assert_eq!(r.test_acc_at_best, Some(60.0));
    assert_eq!(r.test_acc, Some(65.0));
}

#[test]
fn record_round_trips_and_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path(), "s");
    let run = spec();
    assert!(matches!(store.load_record(&run), Stored::Missing));
    let r = RunRecord::done(&run, 1, fitted(&[50.0], 51.0, 51.0), 1.0, "cpu");
    let path = store.save_record(&r).unwrap();
    match store.load_record(&run) {
        Stored::Found(got) => assert_eq!(got.test_acc, Some(51.0)),
        other => panic!("{other:?}"),
    }
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("51.0", "99.0");
    std::fs::write(&path, text).unwrap();
    assert!(matches!(store.load_record(&run), Stored::Corrupt(..)));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(store.load_record(&run), Stored::Corrupt(..)));
}

/// A record written by a newer build, with a field this build does not know, is read (its checksum
/// covers that field as written) and still fails when changed.
#[test]
fn a_newer_build_s_record_with_an_unknown_field_is_read_and_still_checked() {
    use sha2::{Digest, Sha256};
    let r = RunRecord::done(&spec(), 1, fitted(&[50.0], 51.0, 51.0), 1.0, "cpu");
    // sealed as that build would: the compact JSON with an empty checksum, hashed, then pretty
    let mut v = serde_json::to_value(&r).unwrap();
    // a field of its own after `checksum` (keys sorted), holding a `checksum` of its own
    v["zz_later"] = serde_json::json!({"checksum": "not the record's", "note": "a \"quoted\" word", "xs": [1, 2.5]});
    let sum = crate::util::hex(&Sha256::digest(serde_json::to_vec(&v).unwrap()));
    v["checksum"] = sum.into();
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    let got = RunRecord::from_json(&bytes).unwrap();
    assert_eq!(got.test_acc, Some(51.0));
    assert_eq!(got.key, r.key);
    for (from, to) in [
        ("51.0", "52.0"),
        ("quoted", "quotes"),
        ("2.5", "2.6"),
        // a space inside a string, after an escaped quote, is the string's
        ("\\\"quoted\\\" word", "\\\"quoted\\\"word"),
        ("not the record's", "not the records"),
    ] {
        let text = String::from_utf8(bytes.clone())
            .unwrap()
            .replacen(from, to, 1);
        assert!(
            RunRecord::from_json(text.as_bytes()).is_err(),
            "{from} → {to}"
        );
    }
    // this build's own records: both digests agree
    let mine = r.to_json();
    assert_eq!(crate::record::digest_as_written(&mine), Some(r.digest()));
}

/// The same for a cached teacher's entry: a newer build's record field does not make the entry
/// look corrupt (the teacher would be trained again and its entry replaced).
#[test]
fn a_newer_build_s_teacher_entry_is_read_and_still_checked() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("teachers").join("k");
    let r = RunRecord::done(&spec(), 1, fitted(&[50.0], 51.0, 51.0), 1.0, "cpu");
    save_teacher(&at, &r, |d| {
        for f in [WEIGHTS, LOGITS] {
            std::fs::write(d.join(f), f).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .unwrap();
    assert!(load_teacher(&at).unwrap().is_some());
    let entry = at.join("entry.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    v["record"]["zz_later"] = serde_json::json!({"xs": [1, 2]});
    v["record"]["checksum"] = "".into();
    let sum = crate::util::hex(&Sha256::digest(serde_json::to_vec(&v["record"]).unwrap()));
    v["record"]["checksum"] = sum.into();
    let later = serde_json::to_vec_pretty(&v).unwrap();
    std::fs::write(&entry, &later).unwrap();
    let got = load_teacher(&at).unwrap().unwrap();
    assert_eq!(got.record.test_acc, Some(51.0));
    let changed = String::from_utf8(later)
        .unwrap()
        .replacen("[\n        1,", "[\n        3,", 1);
    assert_ne!(changed.as_bytes(), std::fs::read(&entry).unwrap());
    std::fs::write(&entry, changed).unwrap();
    assert!(load_teacher(&at)
        .unwrap_err()
        .contains("its record: checksum mismatch"));
}

#[test]
fn csv_has_the_documented_columns_and_empty_cells() {
    use crate::record::Role;
    use crate::report::csv::{epochs_csv, runs_csv};
    let mut t = spec();
    t.role = Role::Teacher;
    t.id = "teacher-s0".into();
    let r = RunRecord::done(&t, 2, fitted(&[50.0, 60.0], 61.0, 61.0), 1.0, "cpu");
    let text = String::from_utf8(runs_csv(&[&r]).unwrap()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "run_id,role,method,teacher_model,student_model,seed,temperature,alpha,epochs,val_acc,test_acc,best_epoch,best_val_acc,test_acc_at_best,agreement,kl_to_teacher,seconds,device,status,error"
    );
    assert_eq!(
        lines.next().unwrap(),
        "teacher-s0,teacher,,tutorial-teacher,,0,,,2,60.00,61.00,2,60.00,61.00,,,1.0,cpu,done,"
    );
    let e = String::from_utf8(epochs_csv(&[&r]).unwrap()).unwrap();
    assert_eq!(e.lines().count(), 3);
}

/// `clean`'s report of a folder where only an empty folder went says that, not "nothing to remove".
#[test]
fn clean_says_an_empty_folder_it_removed() {
    use clean::{render, Cleaned, Removal};
    let dir = std::path::PathBuf::from("r/long");
    let gone = Cleaned {
        dir: dir.clone(),
        removed: vec![Removal {
            path: dir.join("progress"),
            bytes: 0,
            why: "empty folder",
        }],
        kept_paused: 0,
    };
    for (dry, verb) in [(false, "removed"), (true, "would remove")] {
        let o = render(std::slice::from_ref(&gone), dry);
        assert_eq!(
            o,
            format!("{verb} r/long/progress (empty folder)\nr/long: {verb} 1 empty folder(s), no files\n")
        );
    }
    let nothing = Cleaned {
        removed: Vec::new(),
        ..gone
    };
    assert_eq!(render(&[nothing], false), "r/long: nothing to remove\n");
}

/// A lock file that does not read (being written, or garbage) is said so, not as "pid 0 on host ?";
/// a held lock's age is its last refresh.
#[test]
fn a_held_lock_says_who_holds_it_and_an_unreadable_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CoordinatorLock::FILE), "garbage{").unwrap();
    let e = CoordinatorLock::acquire(dir.path(), &|_| {}).err().unwrap();
    let said = e.to_string();
    assert!(
        said.contains("its lock file, written ") && said.contains(" s ago, does not read yet"),
        "{said}"
    );
    assert!(!said.contains("pid 0"), "{said}");
    let owner = LockOwner {
        host: "h".into(),
        pid: 42,
        since: 0,
    };
    assert_eq!(
        owner.held(7),
        "pid 42 on host h, its lock refreshed 7 s ago"
    );
}

/// `check` (what `clean --dry-run` uses) only reads the lock: a live owner's lock refuses as
/// `acquire` does, a dead owner's stays on disk byte for byte (taken over by the next `acquire`).
#[test]
fn checking_a_lock_writes_nothing_and_refuses_a_live_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CoordinatorLock::FILE);
    assert!(CoordinatorLock::check(dir.path()).is_ok());
    assert!(!path.exists(), "check created a lock");
    // a dead owner on this host (pid beyond pid_max)
    let dead = serde_json::json!({"host": crate::files::host(), "pid": 99_999_999u32, "since": 1});
    std::fs::write(&path, dead.to_string()).unwrap();
    assert!(CoordinatorLock::check(dir.path()).is_ok());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), dead.to_string());
    let said = std::cell::RefCell::new(String::new());
    let taken = CoordinatorLock::acquire(dir.path(), &|m| said.borrow_mut().push_str(m)).unwrap();
    assert!(said.borrow().contains("which is gone"), "{}", said.borrow());
    // now live (this process): check refuses, as acquire does
    let e = CoordinatorLock::check(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    drop(taken);
    assert!(!path.exists());
}
