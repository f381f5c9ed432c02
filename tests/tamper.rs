//! The tamper campaign (issue 26): every attack on the store, the ledger and a case package
//! that the issue names, as data. `tests/tamper/*.json` holds one case per attack: what it
//! does, and per anchor (none, a signed checkpoint kept off the phone, the phone's registered
//! key fingerprint, the receiver's identity) the typed problems it must raise, or why it is
//! not detectable with that anchor, which the README's "How secure is it" must then list.
//!
//! One phone is set up once through the real binary (a case of three photos, a checkpoint, an
//! export, a later checkpoint); each case runs on a copy of it. The attacks are done the way an
//! attacker with the app's user id would: SQLite, the files, the documented hash rules.

mod common;

use std::path::{Path, PathBuf};

use common::{stdout, Phone};
use fotovakt::export::{Check, Identities, PackageSignature};
use fotovakt::ledger::{data_sha256, event_hash, event_hash_v2, GENESIS, HASH_V2};
use fotovakt::signing::{Checkpoint, KeyFile, TrustList};
use rusqlite::{params, Connection};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    attack: String,
    target: String,
    about: String,
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    /// `none`, `checkpoint`, `trust`, `identity`, `wrong_identity`.
    anchor: String,
    /// Problem variants that must all be reported.
    #[serde(default)]
    expect: Vec<String>,
    /// Why this attack cannot be told with this anchor (nothing may be reported, and the README
    /// must list the attack).
    #[serde(default)]
    undetectable: Option<String>,
    /// The `PackageError` variant opening the package must fail with.
    #[serde(default)]
    error: Option<String>,
    /// A `device_key` event with this reason must record what happened.
    #[serde(default)]
    audited: Option<String>,
}

/// The phone every case starts from, and what was taken off it.
struct Template {
    /// Holds `store-before-export/`, the store as it was before the export (for the rollback).
    phone: Phone,
    /// The newest checkpoint after the export, as `stats --json` gave it.
    checkpoint: String,
    fingerprint: String,
    receiver: age::x25519::Identity,
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}\n{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    o
}

fn stats(phone: &Phone) -> serde_json::Value {
    serde_json::from_str(&stdout(&ok(phone.run(&["stats", "--format", "json"])))).expect("stats json")
}

/// Copy a tree keeping its modes (the store refuses folders others can read).
fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mode = std::fs::metadata(from).expect("meta").permissions().mode();
    std::fs::DirBuilder::new().mode(mode & 0o777).create(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("type").is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

fn template() -> Template {
    let phone = Phone::new();
    phone.shoot("IMG_personal.jpg", 1);
    ok(phone.run(&["scan"]));
    ok(phone.run(&["session", "start", "--case", "C-1", "--officer", "ola"]));
    for (i, seed) in [11, 12, 13, 14].into_iter().enumerate() {
        phone.shoot(&format!("IMG_c{i}.jpg"), seed);
    }
    ok(phone.run(&["scan"]));
    ok(phone.run(&["session", "stop"]));
    let before_export = phone.dir.path().join("store-before-export");
    copy_tree(&phone.store, &before_export);
    let out = phone.dir.path().join("handoff");
    std::fs::create_dir_all(&out).expect("out");
    ok(phone.run(&["export", "--case", "C-1", "--out", out.join("C-1.zip").to_str().expect("utf-8")]));
    let receiver = age::x25519::Identity::generate();
    let to = receiver.to_public().to_string();
    let sealed = out.join("C-1.zip.age");
    ok(phone.run(&["export", "--case", "C-1", "--out", sealed.to_str().expect("utf-8"), "--to", &to]));
    let s = stats(&phone);
    let checkpoint = s["checkpoint"].to_string();
    let fingerprint = s["device_key"]["fingerprint"].as_str().expect("fingerprint").to_string();
    Template { phone, checkpoint, fingerprint, receiver }
}

/// One case's copy of the template.
struct Copy {
    dir: tempfile::TempDir,
    config: fotovakt::Config,
}

impl Copy {
    fn of(t: &Template) -> Copy {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("phone");
        copy_tree(t.phone.dir.path(), &root);
        std::fs::write(dir.path().join("checkpoint.json"), &t.checkpoint).expect("checkpoint");
        let config = fotovakt::Config {
            store: Some(root.join("private/store")),
            cameras: vec![root.join("phone/DCIM/Camera")],
            classifier: fotovakt::classify::Settings { enabled: false, ..Default::default() },
            ..fotovakt::Config::default()
        };
        Copy { dir, config }
    }

    fn store(&self) -> PathBuf {
        self.config.store.clone().expect("store")
    }

    fn db(&self) -> PathBuf {
        self.store().join("ledger.sqlite")
    }

    fn zip(&self) -> PathBuf {
        self.dir.path().join("phone/handoff/C-1.zip")
    }

    fn sealed(&self) -> PathBuf {
        self.dir.path().join("phone/handoff/C-1.zip.age")
    }

    fn checkpoint_file(&self) -> PathBuf {
        self.dir.path().join("checkpoint.json")
    }
}

/// Recompute every hash from event `from` on (a version 2 row's `data_sha256` too), and write
/// the head at the last: what anyone who can write the ledger can do, since the chain has no key.
fn rechain(db: &Path, from: i64) {
    let c = Connection::open(db).expect("db");
    let mut prev: String = if from <= 1 {
        GENESIS.into()
    } else {
        c.query_row("SELECT hash FROM events WHERE seq = ?1", [from - 1], |r| r.get(0)).expect("prev")
    };
    type Row = (i64, i64, String, Option<i64>, String, u8);
    let rows: Vec<Row> = {
        let mut st = c
            .prepare("SELECT seq, at_ms, kind, item_id, data, v FROM events WHERE seq >= ?1 ORDER BY seq")
            .expect("prepare");
        let r = st
            .query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .expect("query");
        r.collect::<Result<_, _>>().expect("rows")
    };
    let mut last = None;
    for (seq, at, kind, item, data, v) in rows {
        let hash = if v == HASH_V2 {
            let covered = data_sha256(&data);
            let hash = event_hash_v2(seq, at, &kind, item, &covered, &prev);
            c.execute("UPDATE events SET data_sha256 = ?2 WHERE seq = ?1", params![seq, covered]).expect("sha");
            hash
        } else {
            event_hash(seq, at, &kind, item, &data, &prev)
        };
        c.execute("UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1", params![seq, prev, hash]).expect("set");
        prev = hash;
        last = Some(seq);
    }
    let last = last.unwrap_or_else(|| c.query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).expect("max"));
    std::fs::write(db.with_file_name("ledger.head"), format!("{last} {prev}\n")).expect("head");
}

fn sql(db: &Path, statement: &str) {
    Connection::open(db).expect("db").execute_batch(statement).expect(statement);
}

fn one<T: rusqlite::types::FromSql>(db: &Path, query: &str) -> T {
    Connection::open(db).expect("db").query_row(query, [], |r| r.get(0)).expect(query)
}

/// The first quarantined item of the case: (id, sha256, store name).
fn case_item(db: &Path) -> (i64, String, String) {
    Connection::open(db)
        .expect("db")
        .query_row(
            "SELECT id, sha256, store_name FROM items WHERE case_id = 'C-1' AND state = 'quarantined' ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("a case item")
}

fn other_jpeg(seed: u64) -> Vec<u8> {
    fotovakt::sample::SamplePhoto { seed, ..Default::default() }.jpeg()
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Attacks on the store and its ledger.
fn attack_ledger(name: &str, c: &Copy) {
    let db = c.db();
    let newest: i64 = one(&db, "SELECT max(seq) FROM events");
    match name {
        "truncate_and_delete_head" => {
            std::fs::remove_file(c.store().join("ledger.head")).expect("rm head");
            sql(&db, &format!("DELETE FROM events WHERE seq > {}", newest - 3));
        }
        "truncate_and_rewrite_head" => {
            sql(&db, &format!("DELETE FROM events WHERE seq > {}", newest - 3));
            rechain(&db, newest - 2);
        }
        "edit_event" => sql(&db, "UPDATE events SET data = replace(data, 'session', 'manual') WHERE seq = (SELECT min(seq) FROM events WHERE kind = 'decided' AND data LIKE '%C-1%')"),
        "edit_event_and_rechain" => {
            let seq: i64 = one(&db, "SELECT min(seq) FROM events WHERE kind = 'intake'");
            sql(&db, &format!("UPDATE events SET data = replace(data, 'IMG_', 'DOC_') WHERE seq = {seq}"));
            rechain(&db, seq);
        }
        "swap_store_file" => {
            let (_, _, name) = case_item(&db);
            std::fs::write(c.store().join(name), other_jpeg(99)).expect("swap");
        }
        "swap_store_file_and_rewrite_hashes" => {
            let (id, old, name) = case_item(&db);
            let bytes = other_jpeg(99);
            let new = sha(&bytes);
            let new_name = name.replace(&old, &new).replace(&format!("objects/{}/", &old[..2]), &format!("objects/{}/", &new[..2]));
            std::fs::remove_file(c.store().join(&name)).expect("rm");
            let path = c.store().join(&new_name);
            std::fs::create_dir_all(path.parent().expect("shard")).expect("shard");
            std::fs::write(&path, &bytes).expect("write");
            sql(&db, &format!("UPDATE items SET sha256 = '{new}', store_name = '{new_name}' WHERE id = {id}"));
            sql(&db, &format!("UPDATE events SET data = replace(replace(data, '{name}', '{new_name}'), '{old}', '{new}') WHERE item_id = {id}"));
            rechain(&db, one(&db, &format!("SELECT min(seq) FROM events WHERE item_id = {id}")));
        }
        "rewrite_export_digest" => {
            let seq: i64 = one(&db, "SELECT min(seq) FROM events WHERE kind = 'export'");
            sql(&db, &format!(
                "UPDATE events SET data = json_set(data, '$.package_sha256', '{}') WHERE kind = 'export'",
                "ab".repeat(32)
            ));
            rechain(&db, seq);
        }
        "roll_back_store" => {
            let store = c.store();
            std::fs::remove_dir_all(&store).expect("rm store");
            let old = c.dir.path().join("phone/store-before-export");
            std::fs::rename(old, &store).expect("restore");
        }
        "set_clock_back" => {
            sql(&db, &format!("UPDATE events SET at_ms = at_ms - 7200000 WHERE seq = {newest}"));
            rechain(&db, newest);
        }
        "backdate_and_rewrite_stamps" => {
            let upto = newest - 4;
            sql(&db, &format!(
                "UPDATE events SET at_ms = at_ms - 7200000, \
                 data = json_set(data, '$.clock.mono_ms', json_extract(data, '$.clock.mono_ms') - 7200000) \
                 WHERE seq <= {upto}"
            ));
            rechain(&db, 1);
        }
        "stamp_moved_backwards" => {
            sql(&db, &format!(
                "UPDATE events SET data = json_set(data, '$.clock.mono_ms', \
                 (SELECT json_extract(data, '$.clock.mono_ms') FROM events WHERE seq = {}) - 1000) WHERE seq = {newest}",
                newest - 1
            ));
            rechain(&db, newest);
        }
        "garble_head" => std::fs::write(c.store().join("ledger.head"), "not a head").expect("garble"),
        "forge_checkpoint" => {
            let (key, _) = KeyFile::load_or_create(&c.dir.path().join("forger.key")).expect("forger's key");
            let hash: String = one(&db, &format!("SELECT hash FROM events WHERE seq = {newest}"));
            let forged = Checkpoint::make(&key, newest, &hash, fotovakt::ledger::now_ms()).expect("sign");
            std::fs::write(c.checkpoint_file(), serde_json::to_string(&forged).expect("json")).expect("write");
        }
        "alter_checkpoint" => {
            let mut cp: Checkpoint = serde_json::from_str(&std::fs::read_to_string(c.checkpoint_file()).expect("read")).expect("json");
            cp.seq -= 1;
            cp.hash = one(&db, &format!("SELECT hash FROM events WHERE seq = {}", cp.seq));
            std::fs::write(c.checkpoint_file(), serde_json::to_string(&cp).expect("json")).expect("write");
        }
        "delete_device_key" => std::fs::remove_file(c.store().join("device.key")).expect("rm key"),
        "forge_forgotten_after_checkpoint" => forge_forgotten(&db, newest, "decided_personal"),
        "forge_correction_expired_after_checkpoint" => forge_forgotten(&db, newest, "correction_expired"),
        other => panic!("no ledger attack named {other:?}"),
    }
}

/// After the newest checkpoint, erase a case photo's intake and decision the way the agent
/// prunes: their `data` removed (hashes kept, so every checkpoint still holds), and a
/// `forgotten` event with `reason` appended that lists them, chained and anchored.
fn forge_forgotten(db: &Path, newest: i64, reason: &str) {
    let (id, _, _) = case_item(db);
    let erased: Vec<i64> = {
        let c = Connection::open(db).expect("db");
        let mut st = c
            .prepare("SELECT seq FROM events WHERE item_id = ?1 AND kind IN ('intake', 'decided') ORDER BY seq")
            .expect("prepare");
        let r = st.query_map([id], |r| r.get(0)).expect("query");
        r.collect::<Result<_, _>>().expect("rows")
    };
    assert!(!erased.is_empty(), "the case item has an intake");
    sql(db, &format!("UPDATE events SET data = NULL WHERE item_id = {id} AND kind IN ('intake', 'decided')"));
    let at: i64 = one(db, &format!("SELECT at_ms + 1000 FROM events WHERE seq = {newest}"));
    let state = if reason == "correction_expired" { r#","state":"released""# } else { "" };
    let data = format!(r#"{{"pruned":{},"reason":"{reason}"{state}}}"#, serde_json::to_string(&erased).expect("json"));
    Connection::open(db)
        .expect("db")
        .execute(
            "INSERT INTO events(seq, at_ms, kind, item_id, data, prev_hash, hash, v) \
             VALUES (?1, ?2, 'forgotten', ?3, ?4, '', '', ?5)",
            params![newest + 1, at, id, data, HASH_V2],
        )
        .expect("insert");
    rechain(db, newest + 1);
}

/// Package parts as the forger handles them.
struct Parts {
    dir: PathBuf,
}

impl Parts {
    fn unzip(zip: &Path, into: &Path) -> Parts {
        let mut a = zip::ZipArchive::new(std::fs::File::open(zip).expect("zip")).expect("archive");
        a.extract(into).expect("extract");
        Parts { dir: into.to_path_buf() }
    }

    fn json(&self, name: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.join(name)).expect(name)).expect("json")
    }

    fn put(&self, name: &str, v: &serde_json::Value) {
        std::fs::write(self.dir.join(name), serde_json::to_vec_pretty(v).expect("json")).expect(name);
    }

    /// Recompute the CSV from the manifest, the custody events' hashes and links, and the digest.
    fn recompute(&self) -> String {
        let m: fotovakt::export::Manifest = serde_json::from_value(self.json("manifest.json")).expect("manifest");
        std::fs::write(self.dir.join("manifest.csv"), fotovakt::export::manifest_csv(&m)).expect("csv");
        let mut log = self.json("custody.json");
        let mut prev: Option<(i64, String)> = None;
        for e in log["events"].as_array_mut().expect("events") {
            let seq = e["seq"].as_i64().expect("seq");
            if let Some((q, h)) = &prev {
                if *q + 1 == seq {
                    e["prev_hash"] = h.clone().into();
                }
            }
            let (at, item) = (e["at_ms"].as_i64().expect("at"), e["item"].as_i64());
            let kind = e["kind"].as_str().expect("kind").to_string();
            let data = e["data"].as_str().expect("data").to_string();
            let prev_hash = e["prev_hash"].as_str().expect("prev").to_string();
            let hash = if e["v"].as_u64() == Some(u64::from(HASH_V2)) {
                let covered = data_sha256(&data);
                e["data_sha256"] = covered.clone().into();
                event_hash_v2(seq, at, &kind, item, &covered, &prev_hash)
            } else {
                event_hash(seq, at, &kind, item, &data, &prev_hash)
            };
            e["hash"] = hash.clone().into();
            prev = Some((seq, hash));
        }
        self.put("custody.json", &log);
        let read = |n: &str| std::fs::read(self.dir.join(n)).expect(n);
        let digest =
            fotovakt::export::package_digest(&read("manifest.json"), &read("manifest.csv"), &read("custody.json"));
        std::fs::write(self.dir.join("package.sha256"), format!("{digest}\n")).expect("digest");
        digest
    }

    /// Replace the first photo with other bytes and make everything else agree.
    fn replace_first_photo(&self) -> String {
        let mut m = self.json("manifest.json");
        let file = m["items"][0]["file"].as_str().expect("file").to_string();
        let item = m["items"][0]["item"].as_i64().expect("item");
        let (old, bytes) = (m["items"][0]["sha256"].as_str().expect("sha").to_string(), other_jpeg(77));
        let new = sha(&bytes);
        std::fs::write(self.dir.join(&file), &bytes).expect("photo");
        m["items"][0]["sha256"] = new.clone().into();
        m["items"][0]["size"] = bytes.len().into();
        self.put("manifest.json", &m);
        let mut log = self.json("custody.json");
        for e in log["events"].as_array_mut().expect("events") {
            if e["item"].as_i64() == Some(item) {
                let data = e["data"].as_str().expect("data").replace(&old, &new);
                let mut v: serde_json::Value = serde_json::from_str(&data).expect("json");
                if e["kind"] == "intake" {
                    v["size"] = bytes.len().into();
                }
                e["data"] = v.to_string().into();
            }
        }
        self.put("custody.json", &log);
        self.recompute()
    }

    fn resign(&self, digest: &str, key_path: &Path) {
        let (key, _) = KeyFile::load_or_create(key_path).expect("forger's key");
        let signed = fotovakt::signing::Signed::make(&key, &fotovakt::signing::package_message(digest)).expect("sign");
        let sig = PackageSignature { format: fotovakt::export::SIGNATURE_FORMAT.into(), digest: digest.into(), signed };
        std::fs::write(self.dir.join("package.sig"), serde_json::to_vec_pretty(&sig).expect("json")).expect("sig");
    }

    fn edit_sig(&self, f: impl FnOnce(&mut PackageSignature)) {
        let mut sig: PackageSignature = serde_json::from_value(self.json("package.sig")).expect("sig");
        f(&mut sig);
        std::fs::write(self.dir.join("package.sig"), serde_json::to_vec_pretty(&sig).expect("json")).expect("sig");
    }
}

/// Attacks on a case package; returns the package to check.
fn attack_package(name: &str, c: &Copy) -> PathBuf {
    let p = Parts::unzip(&c.zip(), &c.dir.path().join("forged"));
    let forger = c.dir.path().join("forger.key");
    match name {
        "replace_file_consistently" => {
            p.replace_first_photo();
        }
        "replace_file_consistently_and_resign" => {
            let d = p.replace_first_photo();
            p.resign(&d, &forger);
        }
        "replace_file_consistently_and_strip_signature" => {
            p.replace_first_photo();
            std::fs::remove_file(p.dir.join("package.sig")).expect("rm sig");
        }
        "remove_photo_consistently" => {
            let mut m = p.json("manifest.json");
            let gone = m["items"].as_array_mut().expect("items").remove(0);
            std::fs::remove_file(p.dir.join(gone["file"].as_str().expect("file"))).expect("rm photo");
            p.put("manifest.json", &m);
            let mut log = p.json("custody.json");
            log["events"].as_array_mut().expect("events").retain(|e| e["item"] != gone["item"]);
            p.put("custody.json", &log);
            let d = p.recompute();
            p.edit_sig(|s| s.digest = d);
        }
        "flip_signature_byte" => p.edit_sig(|s| {
            let mut b = fotovakt_b64(&s.signed.signature);
            b[10] ^= 1;
            s.signed.signature = b64(&b);
        }),
        "swap_public_key" => {
            let (key, _) = KeyFile::load_or_create(&forger).expect("key");
            use fotovakt::signing::Signer;
            p.edit_sig(|s| s.signed.public_key = b64(key.public_key().spki()));
        }
        "edit_digest_file" => {
            std::fs::write(p.dir.join("package.sha256"), format!("{}\n", "cd".repeat(32))).expect("digest")
        }
        other => panic!("no package attack named {other:?}"),
    }
    p.dir
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn fotovakt_b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

/// Attacks on an encrypted package; returns it.
fn attack_sealed(name: &str, c: &Copy) -> PathBuf {
    let path = c.sealed();
    match name {
        "flip_ciphertext_byte" => {
            let mut b = std::fs::read(&path).expect("read");
            let at = b.len() - 20;
            b[at] ^= 1;
            std::fs::write(&path, b).expect("write");
        }
        "open_with_wrong_identity" => {}
        other => panic!("no attack on an encrypted package named {other:?}"),
    }
    path
}

/// The variant name of a typed problem or error (`HeadMissing { newest: 3 }` → `HeadMissing`).
fn variant(debug: String) -> String {
    debug.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or_default().to_string()
}

/// What one run found: the problems' variant names, or the error's.
fn run_case(t: &Template, case: &Case, run: &Run) -> Result<Vec<String>, String> {
    let c = Copy::of(t);
    let mut trust = TrustList::default();
    trust.add(&t.fingerprint, "the phone's registered key").expect("fingerprint");
    match case.target.as_str() {
        "ledger" => {
            attack_ledger(&case.attack, &c);
            let checkpoints = match run.anchor.as_str() {
                "none" => Vec::new(),
                "checkpoint" => Checkpoint::parse_many(&std::fs::read_to_string(c.checkpoint_file()).expect("read"))
                    .expect("checkpoint"),
                other => panic!("{}: anchor {other:?} is not one for the ledger", case.attack),
            };
            let agent = fotovakt::Agent::open_without_model(c.config.clone()).map_err(|e| variant(format!("{e:?}")))?;
            let report = agent.verify_with(&checkpoints).map_err(|e| variant(format!("{e:?}")))?;
            if let Some(reason) = &run.audited {
                let keys = agent.ledger().events_of_kind("device_key").expect("device keys");
                let last = keys.last().map(|(_, _, e)| serde_json::to_value(e).expect("json"));
                let got = last.as_ref().and_then(|v| v["data"]["reason"].as_str()).unwrap_or("none");
                if got != reason {
                    return Err(format!("the newest device_key event says {got:?}, not {reason:?}"));
                }
            }
            Ok(report.problems.iter().map(|p| variant(format!("{p:?}"))).collect())
        }
        "package" | "sealed" => {
            let path = if case.target == "package" {
                attack_package(&case.attack, &c)
            } else {
                attack_sealed(&case.attack, &c)
            };
            let stranger = age::x25519::Identity::generate();
            let ids_file = c.dir.path().join("identity.txt");
            use age::secrecy::ExposeSecret;
            let id = if run.anchor == "wrong_identity" { &stranger } else { &t.receiver };
            std::fs::write(&ids_file, format!("{}\n", id.to_string().expose_secret())).expect("identity");
            let ids = Identities::from_file(&ids_file).expect("identities");
            let check = match run.anchor.as_str() {
                "none" => Check::default(),
                "trust" => Check { trust: Some(&trust), identities: None },
                "identity" | "wrong_identity" => Check { trust: Some(&trust), identities: Some(&ids) },
                other => panic!("{}: anchor {other:?} is not one for a package", case.attack),
            };
            let report = fotovakt::export::verify_package_with(&path, &check).map_err(|e| variant(format!("{e:?}")))?;
            Ok(report.problems.iter().map(|p| variant(format!("{p:?}"))).collect())
        }
        other => panic!("{}: target {other:?}", case.attack),
    }
}

fn cases() -> Vec<(PathBuf, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tamper");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).expect("tests/tamper").flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let case = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, case)
        })
        .collect()
}

#[test]
fn every_attack_is_caught_with_its_typed_problem_or_documented_as_needing_an_anchor() {
    let t = template();
    // The control: the untouched copy verifies clean with every anchor.
    let c = Copy::of(&t);
    let agent = fotovakt::Agent::open_without_model(c.config.clone()).expect("agent");
    let cp = Checkpoint::parse_many(&t.checkpoint).expect("checkpoint");
    let clean = agent.verify_with(&cp).expect("verify");
    assert!(clean.problems.is_empty() && clean.checkpoints == 1, "the control is clean: {:?}", clean.problems);
    drop(agent);
    let mut trust = TrustList::default();
    trust.add(&t.fingerprint, "--trust").expect("fp");
    let r =
        fotovakt::export::verify_package_with(&c.zip(), &Check { trust: Some(&trust), identities: None }).expect("zip");
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let all = cases();
    assert!(all.len() >= 20, "{} cases", all.len());
    let mut failures = Vec::new();
    for (file, case) in &all {
        assert!(!case.about.is_empty(), "{}", file.display());
        for run in &case.runs {
            let label = format!("{} [{}]", case.attack, run.anchor);
            let got = run_case(&t, case, run);
            let verdict = match (&got, &run.error, &run.undetectable) {
                (Err(e), Some(want), _) if e == want => None,
                (Err(e), _, _) => Some(format!("{label}: failed with {e}")),
                (Ok(found), Some(want), _) => {
                    Some(format!("{label}: expected the error {want}, got problems {found:?}"))
                }
                (Ok(found), None, Some(why)) => {
                    if !found.is_empty() {
                        Some(format!("{label}: listed as undetectable ({why}) but found {found:?}"))
                    } else if !readme.contains(&format!("`{}`", case.attack)) {
                        Some(format!(
                            "{label}: undetectable without an anchor, but README.md does not list `{}`",
                            case.attack
                        ))
                    } else {
                        None
                    }
                }
                (Ok(found), None, None) => {
                    let missing: Vec<&String> = run.expect.iter().filter(|w| !found.contains(w)).collect();
                    (!missing.is_empty()).then(|| format!("{label}: expected {missing:?}, found {found:?}"))
                }
            };
            eprintln!("{label}: {}", verdict.as_deref().unwrap_or("caught as expected"));
            failures.extend(verdict);
        }
    }
    assert!(failures.is_empty(), "{} of the tamper runs failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_campaign_data_names_only_attacks_the_harness_knows_and_each_once() {
    let all = cases();
    let mut names: Vec<&str> = all.iter().map(|(_, c)| c.attack.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "an attack is described twice");
    for (file, c) in &all {
        assert!(
            ["ledger", "package", "sealed"].contains(&c.target.as_str()),
            "{}: target {}",
            file.display(),
            c.target
        );
        assert!(!c.runs.is_empty(), "{}", file.display());
        for r in &c.runs {
            let kinds = r.expect.len() + usize::from(r.undetectable.is_some()) + usize::from(r.error.is_some());
            assert!(kinds >= 1 || r.audited.is_some(), "{}: a run that expects nothing", file.display());
        }
    }
}

/// Signed checkpoints through the binary: one after every barrier that advanced the head,
/// the newest in `stats --json`, and `verify --checkpoint` taking it as `stats` gave it.
#[test]
fn checkpoints_follow_the_ledger_and_verify_proves_the_ledger_extends_them() {
    let phone = Phone::new();
    phone.shoot("IMG_a.jpg", 1);
    ok(phone.run(&["session", "start", "--case", "C-9"]));
    let first = stats(&phone)["checkpoint"].clone();
    assert_eq!(first["format"], "fotovakt-checkpoint-v1", "{first}");
    ok(phone.run(&["scan"]));
    let second = stats(&phone)["checkpoint"].clone();
    assert!(second["seq"].as_i64() > first["seq"].as_i64(), "{first} {second}");
    let newest: i64 = one(&phone.store.join("ledger.sqlite"), "SELECT max(seq) FROM events");
    assert_eq!(second["seq"].as_i64(), Some(newest), "the scan's barrier was checkpointed");
    let metrics = stdout(&ok(phone.run(&["stats", "--format", "openmetrics"])));
    assert!(metrics.contains(&format!("\nfotovakt_checkpoint_seq {newest}\n")), "{metrics}");

    // Both kept off the phone, as the EMM would: one file per line.
    let history = phone.dir.path().join("history.jsonl");
    std::fs::write(&history, format!("{first}\n{second}\n")).expect("history");
    let stats_file = phone.dir.path().join("stats.json");
    std::fs::write(&stats_file, stdout(&ok(phone.run(&["stats", "--format", "json"])))).expect("stats");
    let h = history.to_str().expect("utf-8");
    let o = ok(phone.run(&["verify", "--checkpoint", h, "--checkpoint", stats_file.to_str().expect("utf-8")]));
    assert!(stdout(&o).contains("extends 3 signed checkpoint(s)"), "{}", stdout(&o));

    // A checkpoint made on a copy of the store; the phone then goes back to that copy's past.
    let copy = phone.dir.path().join("copy");
    copy_tree(&phone.store, &copy);
    ok(phone.run(&["session", "stop"]));
    std::fs::write(&stats_file, stdout(&ok(phone.run(&["stats", "--format", "json"])))).expect("stats");
    std::fs::remove_dir_all(&phone.store).expect("rm");
    std::fs::rename(&copy, &phone.store).expect("roll back");
    let o = phone.run(&["verify", "--checkpoint", stats_file.to_str().expect("utf-8"), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("it was rolled back or cut off since"), "{}", stdout(&o));
    let o = phone.run(&["verify", "--checkpoint", "/nonexistent/x.json"]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(&stats_file, "{\"items\": 1}").expect("junk");
    let o = phone.run(&["verify", "--checkpoint", stats_file.to_str().expect("utf-8")]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a file with no checkpoint is bad usage: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// At least every `checkpoint_interval`, even when nothing happens (the reconcile tick).
#[test]
fn an_idle_agent_still_checkpoints_on_its_reconcile_tick() {
    let phone = Phone::new();
    let config = fotovakt::Config {
        checkpoint_interval: std::time::Duration::from_secs(1),
        classifier: fotovakt::classify::Settings { enabled: false, ..Default::default() },
        ..phone.config()
    };
    let a = fotovakt::Agent::open(config).expect("agent");
    a.reconcile(std::time::Duration::ZERO).expect("reconcile");
    let first = a.newest_checkpoint().expect("the first tick checkpoints");
    assert!(first.check().is_ok());
    a.reconcile(std::time::Duration::ZERO).expect("reconcile");
    assert_eq!(a.newest_checkpoint().expect("cp").at_ms, first.at_ms, "not due yet: none made");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.reconcile(std::time::Duration::ZERO).expect("reconcile");
    let later = a.newest_checkpoint().expect("cp");
    assert!(later.at_ms > first.at_ms && later.seq == first.seq, "{first:?} {later:?}");
}

/// A missing head is reported until an officer anchors the ledger again, audited.
#[test]
fn a_missing_head_is_reported_until_an_officer_anchors_the_ledger_again() {
    let phone = Phone::new();
    phone.shoot("IMG_a.jpg", 1);
    ok(phone.run(&["scan"]));
    let o = phone.run(&["anchor", "--reason", "nothing wrong"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to anchor again"));
    std::fs::remove_file(phone.store.join("ledger.head")).expect("rm head");
    let o = phone.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("ledger.head is missing, yet the ledger has events"), "{}", stdout(&o));
    // Other commands' barriers do not quietly make a new head.
    ok(phone.run(&["session", "start", "--case", "C-2"]));
    assert!(!phone.store.join("ledger.head").exists());
    let o = ok(phone.run(&["anchor", "--reason", "restored from a backup without the head", "--officer", "admin"]));
    assert!(stdout(&o).contains("ledger anchored again"), "{}", stdout(&o));
    let o = ok(phone.run(&["verify"]));
    assert!(
        stdout(&o).contains("NOTE: event")
            && stdout(&o).contains("anchored again by admin: \"restored from a backup without the head\""),
        "{}",
        stdout(&o)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&ok(phone.run(&["verify", "--json"])))).expect("json");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(1), "{v}");
}
