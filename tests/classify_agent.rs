//! The classifier inside the agent: real photos decided by the model when no context rule
//! applies, the model skipped when one does, and officers' corrections kept in the ledger and
//! replayed into the classifier. Uses `../shared/data/eval-dev` (real photos that may not be
//! committed); without it the test says so and returns.

mod common;

use std::path::PathBuf;

use common::Phone;
use fotovakt::agent::{Agent, OutcomeKind};
use fotovakt::policy::Source;

fn eval_dev() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eval-dev");
    dir.join("labels.tsv").is_file().then_some(dir)
}

fn pick(dir: &std::path::Path, category: &str, n: usize) -> Vec<PathBuf> {
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).expect("labels");
    labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(2) == Some(&category)).then(|| dir.join(cols[0]))
        })
        .take(n)
        .collect()
}

#[test]
fn the_model_decides_when_context_does_not_and_learns_from_officers() {
    let Some(dir) = eval_dev() else {
        common::skip("../shared/data/eval-dev not found; the classifier-in-the-agent test needs real photos");
        return;
    };
    let phone = Phone::new();
    let agent = match Agent::open(phone.config()) {
        Ok(a) if a.model_status().is_ok() => a,
        Ok(a) => panic!("classifier must load for this test: {:?}", a.model_status()),
        Err(e) => panic!("agent: {e}"),
    };
    let copy = |src: &PathBuf, name: &str| {
        let dst = phone.camera.join(name);
        std::fs::copy(src, &dst).expect("copy");
        dst
    };
    // Off duty, no session, no work site: the model decides, at the shipped head's threshold.
    let head = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/case_head.json"))
        .expect("models/case_head.json");
    let head: serde_json::Value = serde_json::from_str(&head).expect("head file is JSON");
    let threshold = head["threshold"].as_f64().expect("threshold") as f32;
    let passports = pick(&dir, "id_documents", 3);
    let pets = pick(&dir, "pets", 3);
    let mut quarantined = Vec::new();
    for (i, p) in passports.iter().enumerate() {
        let o = common::handle(&agent, &copy(p, &format!("IMG_id{i}.jpg")));
        assert_eq!((o.kind, o.source), (OutcomeKind::Quarantined, Some(Source::Classifier)), "{o:?}");
        assert!(o.score.is_some_and(|s| s >= threshold), "{o:?} (threshold {threshold})");
        quarantined.push(o.item.expect("item"));
    }
    for (i, p) in pets.iter().enumerate() {
        let o = common::handle(&agent, &copy(p, &format!("IMG_pet{i}.jpg")));
        assert_eq!((o.kind, o.source), (OutcomeKind::Kept, Some(Source::Classifier)), "{o:?}");
    }
    // A session decides without the model: no score recorded.
    agent.session_start("K-55", None, None).expect("session");
    let o = common::handle(&agent, &copy(&pets[0], "IMG_in_session.jpg"));
    assert_eq!((o.kind, o.source, o.score), (OutcomeKind::Quarantined, Some(Source::Session), None), "{o:?}");
    agent.session_stop().expect("stop");
    // Corrections: a release of a classifier decision and a tag of a kept photo.
    agent.release(&quarantined[0].to_string(), "specimen for training, not evidence", Some("t")).expect("release");
    agent.tag(phone.camera.join("IMG_pet1.jpg").to_str().expect("utf8"), "K-56", Some("t"), None).expect("tag");
    let corrections = agent.ledger().corrections().expect("corrections");
    assert_eq!(corrections.len(), 2, "one release and one tag kept as corrections");
    assert_eq!(corrections.iter().map(|(_, case)| *case).collect::<Vec<_>>(), vec![false, true]);
    assert!(corrections.iter().all(|(e, _)| e.len() == 1280), "pooled embeddings");
    // The next decision runs with the corrections replayed into the classifier.
    let o = common::handle(&agent, &copy(&pets[2], "IMG_pet_again.jpg"));
    assert_eq!(o.source, Some(Source::Classifier), "{o:?}");
    assert!(agent.verify().expect("verify").problems.is_empty());
}
