//! The registry's promises: every method listed once, ids and keys of the methods of before kept.

use super::*;

#[test]
fn every_method_is_listed_once_with_a_name_that_parses() {
    for m in Method::ALL {
        // a new variant fails to compile here until it is given its place
        match m {
            Method::Logit
            | Method::Feature
            | Method::Imitation
            | Method::Dkd
            | Method::Dist
            | Method::MultiT
            | Method::Ctkd
            | Method::Ttm => {}
        }
        assert_eq!(Method::ALL.iter().filter(|x| **x == m).count(), 1);
        assert_eq!(Method::parse(m.name()), Some(m));
        assert!(Method::NAMES.contains(&format!("\"{}\"", m.name())));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            format!("\"{}\"", m.name()),
            "records spell it as the file does"
        );
    }
    let ranks: Vec<usize> = Method::ALL.iter().map(|m| m.rank()).collect();
    assert_eq!(ranks, (0..Method::ALL.len()).collect::<Vec<_>>());
}

#[test]
fn ids_of_the_methods_of_before_are_kept() {
    let c = Coord::logit(GridValue::of("4"), GridValue::of("0.5"));
    assert_eq!(c.id_part(""), "T4-a0.5");
    assert_eq!(c.id_part("resnet8-"), "resnet8-T4-a0.5");
    let f = Coord {
        alpha: Some(GridValue::of("0.9")),
        ..Coord::of(Method::Feature)
    };
    assert_eq!(f.id_part(""), "feature-a0.9");
    // and the newer ones name their method and every axis, so no two cells share an id
    let d = Coord {
        temperature: Some(GridValue::of("4")),
        alpha: Some(GridValue::of("1")),
        beta: Some(GridValue::of("8")),
        zscore: true,
        ..Coord::of(Method::Dkd)
    };
    assert_eq!(d.id_part(""), "dkd-zscore-T4-a1-b8");
    let z = Coord {
        zscore: true,
        ..c.clone()
    };
    assert_ne!(z.id_part(""), c.id_part(""));
    let m = Coord {
        temperatures: ["2", "4", "6"].map(GridValue::of).to_vec(),
        alpha: Some(GridValue::of("0.9")),
        ..Coord::of(Method::MultiT)
    };
    assert_eq!(m.id_part(""), "multi-t-T2_4_6-a0.9");
}

#[test]
fn logit_keys_hold_exactly_the_fields_of_before() {
    let c = Coord::logit(GridValue::of("4"), GridValue::of("0.5"));
    let k = serde_json::Value::Object(c.key_fields(&Fixed::default()));
    assert_eq!(k, serde_json::json!({"temperature": 4.0, "alpha": 0.5}));
    let f = Coord {
        alpha: Some(GridValue::of("0.5")),
        ..Coord::of(Method::Imitation)
    };
    let k = serde_json::Value::Object(f.key_fields(&Fixed::default()));
    assert_eq!(
        k,
        serde_json::json!({"temperature": null, "alpha": 0.5, "method": "imitation"})
    );
}

#[test]
fn the_settings_of_dkd_and_ctkd_are_in_their_keys_as_before() {
    let dkd = Coord {
        temperature: Some(GridValue::of("4")),
        alpha: Some(GridValue::of("1")),
        beta: Some(GridValue::of("8")),
        ..Coord::of(Method::Dkd)
    };
    let k = serde_json::Value::Object(dkd.key_fields(&Fixed::default()));
    assert_eq!(
        k.to_string(),
        r#"{"alpha":1.0,"beta":8.0,"method":"dkd","temperature":4.0,"warmup":20}"#
    );
    let ctkd = Coord {
        alpha: Some(GridValue::of("0.9")),
        ..Coord::of(Method::Ctkd)
    };
    let k = serde_json::Value::Object(ctkd.key_fields(&Fixed::default()));
    assert_eq!(
        k.to_string(),
        r#"{"alpha":0.9,"ctkd":[1.0,20.0,10],"method":"ctkd","temperature":null}"#
    );
    // and the ids of every method: its name, then each axis it has, T (or the set), α, β, γ
    let dist = Coord {
        temperature: Some(GridValue::of("4")),
        beta: Some(GridValue::of("2")),
        gamma: Some(GridValue::of("2")),
        ..Coord::of(Method::Dist)
    };
    assert_eq!(dist.id_part(""), "dist-T4-b2-g2");
    assert_eq!(ctkd.id_part(""), "ctkd-a0.9");
    let snapshot = Coord {
        teacher_epoch: Some(3),
        ..dkd
    };
    assert_eq!(snapshot.id_part("resnet8-"), "resnet8-te3-dkd-T4-a1-b8");
}
