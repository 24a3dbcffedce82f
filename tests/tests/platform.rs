//! The node platform through the real binary: persistence, crash safety, refusing a second
//! node, and every kind of bad input (issue 2).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use yilian_tests::*;

fn note_add(dir: &std::path::Path, title: &str) -> String {
    let v = json(
        dir,
        &[
            "note",
            "add",
            "--title",
            title,
            "--text",
            "first",
            "--audience",
            "TC-01",
            "--json",
        ],
    );
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn documents_persist_across_a_clean_restart_with_the_same_heads() {
    let tmp = tempdir();
    let dir = tmp.path().join("ch");
    init(&dir, "CH-01", "county-hospital");
    let node = NodeProcess::start(&dir);
    let a = note_add(&dir, "clinic hours");
    let b = note_add(&dir, "catalog update");
    for i in 0..30 {
        ok(
            &dir,
            &["note", "append", &a[..6], "--text", &format!("entry {i}")],
        );
    }
    let before_a = json(&dir, &["doc", "show", &a, "--json"]);
    let before_b = json(&dir, &["doc", "show", &b, "--json"]);
    assert_eq!(before_a["content"]["entries"].as_array().unwrap().len(), 31);
    assert_eq!(before_a["audience"], serde_json::json!(["CH-01", "TC-01"]));
    assert_eq!(node.stop(), 0, "SIGTERM must end the node cleanly");
    assert!(
        !dir_socket(&dir).exists(),
        "socket left behind after a clean stop"
    );

    let node = NodeProcess::start(&dir);
    let after_a = json(&dir, &["doc", "show", &a, "--json"]);
    let after_b = json(&dir, &["doc", "show", &b, "--json"]);
    assert_eq!(after_a["heads"], before_a["heads"]);
    assert_eq!(after_a["content"], before_a["content"]);
    assert_eq!(after_b["heads"], before_b["heads"]);
    let status = json(&dir, &["status", "--json"]);
    assert_eq!(status["store"]["docs_total"], 2);
    assert_eq!(status["facility"]["code"], "CH-01");
    assert!(
        status["uptime_secs"].is_u64(),
        "a running node reports uptime: {status}"
    );
    node.stop();

    // With the node stopped, read commands work on the files directly.
    let offline = json(&dir, &["status", "--json"]);
    assert!(offline["uptime_secs"].is_null());
    assert_eq!(offline["store"]["docs_total"], 2);
}

#[test]
fn every_write_acknowledged_before_sigkill_survives() {
    let tmp = tempdir();
    let dir = tmp.path().join("ch");
    init(&dir, "CH-01", "county-hospital");
    let node = NodeProcess::start(&dir);
    let note = note_add(&dir, "crash log");

    // Three writers drive CLI writes as fast as they can; each records what was acknowledged.
    let acked_notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_entries = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (dir, note) = (dir.clone(), note.clone());
        let (acked_notes, acked_entries, stop) =
            (acked_notes.clone(), acked_entries.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if w == 0 {
                    let out = run(
                        &dir,
                        &["note", "add", "--title", &format!("n{i}"), "--json"],
                    );
                    if out.status.success() {
                        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                        acked_notes
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                } else {
                    let text = format!("w{w}-{i}");
                    let out = run(&dir, &["note", "append", &note, "--text", &text]);
                    if out.status.success() {
                        acked_entries.lock().unwrap().push(text);
                    }
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    node.kill9();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked_notes = acked_notes.lock().unwrap().clone();
    let acked_entries = acked_entries.lock().unwrap().clone();
    assert!(
        acked_notes.len() > 5 && acked_entries.len() > 5,
        "too few writes to mean anything"
    );

    let node = NodeProcess::start(&dir);
    let list = json(&dir, &["doc", "list", "--json"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for id in &acked_notes {
        assert!(
            ids.contains(&id.as_str()),
            "acknowledged note {id} lost after SIGKILL"
        );
    }
    let shown = json(&dir, &["doc", "show", &note, "--json"]);
    let entries: Vec<&str> = shown["content"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    for e in &acked_entries {
        assert_eq!(
            entries.iter().filter(|x| *x == e).count(),
            1,
            "acknowledged entry {e} lost or doubled"
        );
    }
    // The store is whole: every document loads.
    for id in &ids {
        ok(&dir, &["doc", "show", id, "--json"]);
    }
    node.stop();
}

#[test]
fn a_second_node_on_the_same_directory_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("tc");
    init(&dir, "TC-01", "township-center");
    let node = NodeProcess::start(&dir);
    let id = note_add(&dir, "still here");
    let (code, err) = fails(&dir, &["node", "run"]);
    assert_ne!(code, 0);
    assert!(err.contains("already running"), "{err}");
    // The first node is unharmed.
    json(&dir, &["doc", "show", &id, "--json"]);
    node.stop();
}

#[test]
fn init_refuses_to_overwrite_and_commands_name_a_missing_or_corrupt_directory() {
    let tmp = tempdir();
    let dir = tmp.path().join("tc");
    init(&dir, "TC-02", "township-center");
    let (_, err) = fails(
        &dir,
        &[
            "init",
            "--facility",
            "TC-09",
            "--name",
            "x",
            "--kind",
            "township-center",
        ],
    );
    assert!(err.contains("already holds a yilian node"), "{err}");
    let (_, err) = fails(
        &dir,
        &[
            "init",
            "--facility",
            "bad code!",
            "--name",
            "x",
            "--kind",
            "township-center",
        ],
    );
    assert!(err.contains("facility code"), "{err}");

    let missing = tmp.path().join("nowhere");
    let (_, err) = fails(&missing, &["status"]);
    assert!(err.contains("not a yilian data directory"), "{err}");

    let id = {
        let node = NodeProcess::start(&dir);
        let id = note_add(&dir, "keep me");
        node.stop();
        id
    };
    let cfg = dir.join("yilian.toml");
    let good_cfg = std::fs::read(&cfg).unwrap();
    std::fs::write(&cfg, b"[facility]\ncode = 42\n").unwrap();
    let (_, err) = fails(&dir, &["node", "run"]);
    assert!(err.contains("yilian.toml") && err.contains("code"), "{err}");
    std::fs::write(&cfg, &good_cfg).unwrap();

    let store = dir.join("store.redb");
    let good_store = std::fs::read(&store).unwrap();
    std::fs::write(&store, &good_store[..good_store.len() / 3]).unwrap();
    let (_, err) = fails(&dir, &["node", "run"]);
    assert!(err.contains("store.redb"), "{err}");
    std::fs::write(&store, &good_store).unwrap();
    let node = NodeProcess::start(&dir);
    json(&dir, &["doc", "show", &id, "--json"]);
    node.stop();
}

#[test]
fn truncated_and_garbage_automerge_files_are_refused_and_nothing_is_lost() {
    let tmp = tempdir();
    let dir = tmp.path().join("ch");
    init(&dir, "CH-01", "county-hospital");
    let node = NodeProcess::start(&dir);
    let id = note_add(&dir, "original");
    for i in 0..10 {
        ok(&dir, &["note", "append", &id, "--text", &format!("e{i}")]);
    }
    let before = json(&dir, &["doc", "show", &id, "--json"]);
    let file = tmp.path().join("doc.automerge");
    ok(
        &dir,
        &["doc", "export", &id, "--out", file.to_str().unwrap()],
    );
    let bytes = std::fs::read(&file).unwrap();
    // The export is plain Automerge: any implementation loads it with the same heads.
    let loaded = automerge::Automerge::load(&bytes).unwrap();
    let heads: Vec<String> = {
        let mut h: Vec<String> = loaded.get_heads().iter().map(|h| h.to_string()).collect();
        h.sort();
        h
    };
    assert_eq!(serde_json::json!(heads), before["heads"]);

    let truncated = tmp.path().join("truncated.automerge");
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let garbage = tmp.path().join("garbage.automerge");
    std::fs::write(&garbage, b"PK\x03\x04 this is a zip file, not a document").unwrap();
    for f in [&truncated, &garbage] {
        let (code, err) = fails(
            &dir,
            &["doc", "import", f.to_str().unwrap(), "--kind", "note"],
        );
        assert_eq!(code, 4, "invalid input exit code: {err}");
        assert!(err.contains("not a valid Automerge document"), "{err}");
    }
    let (_, err) = fails(
        &dir,
        &["doc", "import", "/definitely/missing", "--kind", "note"],
    );
    assert!(err.contains("/definitely/missing"), "{err}");

    let imported = json(
        &dir,
        &[
            "doc",
            "import",
            file.to_str().unwrap(),
            "--kind",
            "note",
            "--audience",
            "TC-02",
            "--json",
        ],
    );
    assert_eq!(imported["heads"], before["heads"], "import keeps heads");
    let list = json(&dir, &["doc", "list", "--json"]);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "only the good import was stored"
    );
    assert_eq!(json(&dir, &["doc", "show", &id, "--json"]), before);
    node.stop();
}

fn raw_call(dir: &std::path::Path, frame: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(dir_socket(dir)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    // After a protocol error the node closes the connection.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "connection stayed open after a protocol error"
    );
    body
}

#[test]
fn oversized_and_malformed_control_messages_get_named_errors_and_the_node_keeps_serving() {
    let tmp = tempdir();
    let dir = tmp.path().join("ch");
    init(&dir, "CH-01", "county-hospital");
    let node = NodeProcess::start(&dir);
    let id = note_add(&dir, "survivor");

    let answer = |frame: &[u8]| String::from_utf8_lossy(&raw_call(&dir, frame)).into_owned();
    // 1 GiB announced: refused before reading it.
    let huge = answer(&(1u32 << 30).to_be_bytes());
    assert!(huge.contains("exceeds"), "{huge}");
    // Right length, garbage body of the right version.
    let mut bad = 5u32.to_be_bytes().to_vec();
    bad.extend([0, 1, 0xff, 0xff, 0xff]);
    let malformed = answer(&bad);
    assert!(malformed.contains("malformed"), "{malformed}");
    // Another protocol version.
    let mut other = 3u32.to_be_bytes().to_vec();
    other.extend([0, 99, 0]);
    let version = answer(&other);
    assert!(version.contains("version 99"), "{version}");
    // A client that sends half a frame and hangs up.
    {
        let mut s = UnixStream::connect(dir_socket(&dir)).unwrap();
        s.write_all(&100u32.to_be_bytes()).unwrap();
        s.write_all(b"half").unwrap();
    }

    let shown = json(&dir, &["doc", "show", &id, "--json"]);
    assert_eq!(shown["content"]["title"], "survivor");
    assert!(
        node.log_text().contains("control request refused"),
        "refusal not logged"
    );
    node.stop();
}

#[test]
fn a_full_disk_fails_the_write_clearly_and_keeps_what_was_stored() {
    let tmp = tempdir();
    let dir = tmp.path().join("ch");
    init(&dir, "CH-01", "county-hospital");
    let node = NodeProcess::start(&dir);
    let id = note_add(&dir, "before the disk filled");
    let before = json(&dir, &["doc", "show", &id, "--json"]);
    node.stop();

    // A random (incompressible) 3 MiB document to import.
    let big = tmp.path().join("big.automerge");
    {
        use automerge::transaction::Transactable;
        let mut doc = automerge::Automerge::new();
        let blob = pseudo_random_bytes(0x9e37_79b9_7f4a_7c15, 3 << 20);
        doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "scan", blob))
            .unwrap();
        std::fs::write(&big, doc.save()).unwrap();
    }
    // The node may grow its files by at most 1 MiB: the disk is "full" for this import.
    let limit = std::fs::metadata(dir.join("store.redb")).unwrap().len() + (1 << 20);
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--fsize={limit}"))
        .arg(yilian_bin())
        .arg("--dir")
        .arg(&dir);
    let node = NodeProcess::start_with(&dir, cmd);
    let (code, err) = fails(
        &dir,
        &["doc", "import", big.to_str().unwrap(), "--kind", "note"],
    );
    assert_eq!(code, 5, "storage failure exit code: {err}");
    assert!(err.contains("disk is full"), "{err}");
    // The node keeps serving.
    assert_eq!(json(&dir, &["doc", "show", &id, "--json"]), before);
    let status = json(&dir, &["status", "--json"]);
    assert_eq!(status["store"]["docs_total"], 1);
    assert_eq!(node.stop(), 0);

    let node = NodeProcess::start(&dir);
    assert_eq!(json(&dir, &["doc", "show", &id, "--json"]), before);
    assert_eq!(
        json(&dir, &["doc", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    node.stop();
}

#[test]
fn a_node_log_written_to_a_file_has_no_colour_codes() {
    let tmp = tempdir();
    let dir = tmp.path().join("tc");
    init(&dir, "TC-01", "township-center");
    // The harness sends the node's stderr to a file, as systemd or `2>node.log` would.
    let node = NodeProcess::start(&dir);
    note_add(&dir, "logged");
    let log = node.log_text();
    assert_eq!(node.stop(), 0);
    assert!(log.contains("node ready"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour escape codes in a log file:\n{log:?}"
    );
}

#[test]
fn a_node_starts_while_offline_commands_run_in_a_loop() {
    let tmp = tempdir();
    let dir = tmp.path().join("tc");
    init(&dir, "TC-01", "township-center");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Offline while no node runs (each run holds the store for a moment), over the
                // socket while one does; either may fail while a node starts or stops.
                let _ = run(&dir, &["status"]);
                runs += 1;
            }
            runs
        })
    };
    // Each start races the loop for the store; every one must come up.
    for _ in 0..6 {
        let node = NodeProcess::start(&dir);
        note_add(&dir, "started");
        assert_eq!(node.stop(), 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(looping.join().unwrap() > 6, "the status loop hardly ran");
}

#[test]
fn a_node_that_cannot_get_the_store_names_the_process_holding_it() {
    let tmp = tempdir();
    let dir = tmp.path().join("tc");
    init(&dir, "TC-01", "township-center");
    // This test process holds the store, as a long offline command would.
    let dd = yilian_node::datadir::DataDir::new(&dir);
    let (cfg, key) = dd.load().unwrap();
    let store = dd.open_store(key.node_id(), &cfg).unwrap();
    let (code, err) = fails(&dir, &["node", "run"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("process {}", std::process::id())),
        "the holder is not named: {err}"
    );
    assert!(
        !err.contains("a node is already running"),
        "no node runs here: {err}"
    );
    drop(store);
    // Once it lets go, the node starts.
    let node = NodeProcess::start(&dir);
    assert_eq!(node.stop(), 0);
}
