//! Sync between real nodes over real QUIC on 127.0.0.1 (issue 4): convergence after offline
//! edits, store and forward through the county, audience filtering, SIGKILL during a large sync,
//! a peer restored from an old backup, and hostile frames from an authenticated peer. Issue 13:
//! a restored node edited before it reconnects, a document forked by an earlier version,
//! refusals in `status` and `sync wait`, and a county killed and restarted.

use std::path::Path;
use std::time::Duration;

use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);

fn link(tc: &Path, ch: &Path) {
    ok(tc, &["peer", "add", "--addr", &node_addr(ch).to_string()]);
}

fn unlink(tc: &Path, ch: &Path) {
    ok(
        tc,
        &["peer", "remove", "--addr", &node_addr(ch).to_string()],
    );
}

fn note(dir: &Path, title: &str, audience: &str) -> String {
    let mut args = vec!["note", "add", "--title", title, "--json"];
    if !audience.is_empty() {
        args.extend(["--audience", audience]);
    }
    json(dir, &args)["id"].as_str().unwrap().to_string()
}

fn entries(dir: &Path, id: &str) -> Vec<String> {
    json(dir, &["doc", "show", id, "--json"])["content"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn offline_edits_on_four_nodes_converge_to_identical_heads() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync A");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tcs: Vec<_> = ["TC-01", "TC-02", "TC-03"]
        .iter()
        .map(|c| alliance.node(c, "township-center", ""))
        .collect();
    let _ch_node = NodeProcess::start(&ch);
    let _tc_nodes: Vec<_> = tcs.iter().map(|d| NodeProcess::start(d)).collect();
    for tc in &tcs {
        link(tc, &ch);
    }
    let shared = note(&ch, "weekly meeting", "TC-01,TC-02,TC-03");
    let all: Vec<&Path> = std::iter::once(ch.as_path())
        .chain(tcs.iter().map(|d| d.as_path()))
        .collect();
    wait_converged(&all, &shared, WAIT);

    // Partition every township; everybody edits the same note offline.
    for tc in &tcs {
        unlink(tc, &ch);
    }
    for (i, d) in all.iter().enumerate() {
        for k in 0..3 {
            ok(
                d,
                &[
                    "note",
                    "append",
                    &shared,
                    "--text",
                    &format!("node{i}-edit{k}"),
                ],
            );
        }
    }
    let diverged: Vec<_> = all.iter().map(|d| heads_of(d, &shared)).collect();
    assert!(
        diverged.windows(2).any(|w| w[0] != w[1]),
        "nodes should differ while partitioned"
    );
    for tc in &tcs {
        link(tc, &ch);
    }
    wait_converged(&all, &shared, WAIT);
    for d in &all {
        let e = entries(d, &shared);
        assert_eq!(
            e.len(),
            12,
            "every offline edit kept exactly once on {}: {e:?}",
            d.display()
        );
        for i in 0..4 {
            for k in 0..3 {
                assert!(e.contains(&format!("node{i}-edit{k}")));
            }
        }
    }
    for tc in &tcs {
        ok(tc, &["sync", "wait", "--timeout", "30"]);
    }
}

#[test]
fn townships_without_a_link_converge_through_the_county_and_outsiders_get_nothing() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync B");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let a = alliance.node("TC-0A", "township-center", "");
    let b = alliance.node("TC-0B", "township-center", "");
    let c = alliance.node("TC-0C", "township-center", "");
    let _nodes: Vec<_> = [&ch, &a, &b, &c]
        .iter()
        .map(|d| NodeProcess::start(d))
        .collect();
    for t in [&a, &b, &c] {
        link(t, &ch);
    }
    let for_b = note(&a, "downward plan for TC-0B", "TC-0B");
    let private = note(&a, "only TC-0A and the county", "");
    wait_converged(&[&a, &ch, &b], &for_b, WAIT);
    ok(
        &b,
        &["note", "append", &for_b, "--text", "received, thanks"],
    );
    wait_converged(&[&a, &ch, &b], &for_b, WAIT);
    assert!(
        entries(&a, &for_b).contains(&"received, thanks".to_string()),
        "B's answer reached A via the county"
    );
    wait_converged(&[&a, &ch], &private, WAIT);
    for d in [&a, &b, &c] {
        ok(d, &["sync", "wait", "--timeout", "30"]);
    }
    // TC-0C is in neither audience: its store holds neither document.
    let held = all_heads(&c);
    assert!(
        !held.contains_key(&for_b),
        "TC-0C received a document outside its audience"
    );
    assert!(!held.contains_key(&private));
    assert!(
        !all_heads(&b).contains_key(&private),
        "TC-0B received a document outside its audience"
    );
}

#[test]
fn sigkill_during_a_large_sync_loses_and_duplicates_nothing() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync C");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let ids = bulk_notes(&ch, 6000, 2000, &["TC-01"]);
    let _ch_node = NodeProcess::start(&ch);
    let tc_node = NodeProcess::start(&tc);
    link(&tc, &ch);
    // Kill the receiver once part of the backlog has arrived.
    wait_until(WAIT, "the first documents to arrive", || {
        json(&tc, &["status", "--json"])["store"]["docs_total"]
            .as_u64()
            .unwrap_or(0)
            >= 50
    });
    tc_node.kill9();
    // Read the killed node's store directly: it opens cleanly and holds part of the backlog.
    let partial = json(&tc, &["status", "--json"])["store"]["docs_total"]
        .as_u64()
        .unwrap();
    assert!(
        (50..6000).contains(&partial),
        "the sync finished before the kill ({partial}); the test proved nothing"
    );
    let _tc_node = NodeProcess::start(&tc);
    ok(&tc, &["sync", "wait", "--timeout", "120"]);
    let got = all_heads(&tc);
    let want = all_heads(&ch);
    assert_eq!(got.len(), 6000, "documents lost or duplicated");
    for id in &ids {
        assert_eq!(
            got.get(id),
            want.get(id),
            "document {id} differs after the crash"
        );
    }
}

#[test]
fn a_node_restored_from_an_old_backup_gets_everything_again() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync D");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _ch_node = NodeProcess::start(&ch);
    let early = note(&ch, "before the backup", "TC-01");
    {
        let _n = NodeProcess::start(&tc);
        link(&tc, &ch);
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
    }
    let backup = tmp.path().join("tc-backup");
    copy_dir(&tc, &backup);
    let late = note(&ch, "after the backup", "TC-01");
    ok(
        &ch,
        &[
            "note",
            "append",
            &early,
            "--text",
            "edited after the backup",
        ],
    );
    {
        let _n = NodeProcess::start(&tc);
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
        assert!(heads_of(&tc, &late).is_some());
    }
    // Disaster: the township's disk is replaced and last month's backup restored.
    std::fs::remove_dir_all(&tc).unwrap();
    copy_dir(&backup, &tc);
    let tc_node = NodeProcess::start(&tc);
    assert!(
        heads_of(&tc, &late).is_none(),
        "the backup should predate the late document"
    );
    wait_converged(&[&ch, &tc], &late, WAIT);
    wait_converged(&[&ch, &tc], &early, WAIT);
    assert!(entries(&tc, &early).contains(&"edited after the backup".to_string()));
    assert!(
        tc_node.log_text().contains("restored from an older backup"),
        "restore not detected:\n{}",
        tc_node.log_text()
    );
    // The session that found the restore ended as it should: nothing to report as an error.
    assert!(
        !tc_node.log_text().contains("fell behind"),
        "{}",
        tc_node.log_text()
    );
    // Writes after the restore use a new actor id, and still reach the county.
    ok(
        &tc,
        &["note", "append", &early, "--text", "after the restore"],
    );
    wait_converged(&[&ch, &tc], &early, WAIT);
    assert!(entries(&ch, &early).contains(&"after the restore".to_string()));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "control.sock" {
            continue;
        }
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A raw, authenticated QUIC client speaking whatever bytes the test wants: `payload` on the
/// sync stream, then each of `lanes` on a document stream of its own.
async fn hostile(
    addr: std::net::SocketAddr,
    ca_dir: &Path,
    payload: Vec<u8>,
    lanes: Vec<Vec<u8>>,
) -> String {
    let (ep, conn) = enrolled_client(ca_dir, "TC-66", addr).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&payload).await.unwrap();
    for lane in lanes {
        // The node may already have closed the connection: that is the point of the test.
        if let Ok(mut s) = conn.open_uni().await {
            let _ = s.write_all(&lane).await;
            let _ = s.finish();
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(20), conn.closed()).await;
    ep.close(0u32.into(), b"");
    match reason {
        Ok(r) => r.to_string(),
        Err(_) => "still open".into(),
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn malformed_oversized_and_out_of_order_frames_close_the_session_and_harm_nothing() {
    use yilian_node::sync::proto::Frame;
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync E");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let kept = note(&ch, "must survive", "TC-01");
    let before = heads_of(&ch, &kept);
    let addr = node_addr(&ch);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ack_first = Frame::Ack {
        doc: yilian_node::ids::DocId([7; 16]),
        heads: vec![],
    }
    .encode();
    let hello = framed(
        &Frame::Hello {
            version: yilian_node::sync::proto::VERSION,
            store_id: [66; 16],
            last_seq: 0,
            have_yours: None,
            crl_number: 0,
        }
        .encode(),
    );
    /// What the hostile peer sends on the main stream, what it then sends on
    /// document streams, and what the node must log about it.
    type Case = (&'static str, Vec<u8>, Vec<Vec<u8>>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "garbage",
            framed(&[0xff, 0xfe, 0xfd, 0x00, 0x13]),
            vec![],
            "malformed sync frame",
        ),
        (
            "oversized",
            (1u32 << 30).to_be_bytes().to_vec(),
            vec![],
            "exceeds",
        ),
        (
            "out of order",
            framed(&ack_first),
            vec![],
            "expected Hello first",
        ),
        (
            "garbage on a document stream",
            hello.clone(),
            vec![framed(&[0xee, 0xee, 0xee])],
            "malformed sync frame",
        ),
        (
            "an ack for nothing on a document stream",
            hello.clone(),
            vec![framed(&ack_first)],
            "which was not pushed",
        ),
        (
            "oversized on a document stream",
            hello,
            vec![(1u32 << 30).to_be_bytes().to_vec()],
            "exceeds",
        ),
    ];
    for (what, payload, lanes, logged) in cases {
        let reason = rt.block_on(hostile(addr, &alliance.ca, payload, lanes));
        assert!(
            reason.contains("closed by peer") || reason.contains("protocol"),
            "{what}: session not closed: {reason}"
        );
        wait_until(WAIT, "the reason to be logged", || {
            ch_node.log_text().contains(logged)
        });
    }
    // The node keeps serving: its data is intact and a well-behaved peer syncs.
    assert_eq!(heads_of(&ch, &kept), before);
    let _tc_node = NodeProcess::start(&tc);
    link(&tc, &ch);
    wait_converged(&[&ch, &tc], &kept, WAIT);
}

#[test]
fn sync_wait_gives_up_with_exit_code_6_when_a_peer_is_unreachable() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync F");
    let tc = alliance.node("TC-01", "township-center", "");
    let _n = NodeProcess::start(&tc);
    // Nobody listens there.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ok(
        &tc,
        &["peer", "add", "--addr", &format!("127.0.0.1:{port}")],
    );
    let (code, err) = fails(&tc, &["sync", "wait", "--timeout", "2"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("not caught up after 2 s"), "{err}");
    // Not running at all: a clear error.
    let idle = alliance.node("TC-02", "township-center", "");
    let (_, err) = fails(&idle, &["sync", "wait", "--timeout", "1"]);
    assert!(err.contains("needs a running node"), "{err}");
}

/// Appends a note entry to the store of a stopped node through the library, writing as `actor`
/// (what yilian before issue 13 did after a restore: it kept the actor id of the backup).
fn append_as(dir: &Path, id: &str, actor: &automerge::ActorId, text: &str) {
    let dd = yilian_node::datadir::DataDir::new(dir);
    let (cfg, key) = dd.load().unwrap();
    let mut store = dd.open_store(key.node_id(), &cfg).unwrap();
    let mut b = store.batch().unwrap();
    let doc: yilian_node::ids::DocId = id.parse().unwrap();
    let by = cfg.facility.code.clone();
    let text = text.to_string();
    b.edit(&doc, |d| {
        d.set_actor(actor.clone());
        yilian_node::documents::note::append(d, &by, 1, &text)
            .map_err(|e| yilian_node::storage::StoreError::Invalid(e.to_string()))
    })
    .unwrap();
    b.commit().unwrap();
}

/// The actor of the latest change of a document in the store of a stopped node.
fn last_actor(dir: &Path, id: &str) -> automerge::ActorId {
    use automerge::ReadDoc;
    let dd = yilian_node::datadir::DataDir::new(dir);
    let (cfg, key) = dd.load().unwrap();
    let mut store = dd.open_store(key.node_id(), &cfg).unwrap();
    let mut b = store.batch().unwrap();
    let doc: yilian_node::ids::DocId = id.parse().unwrap();
    let actor = b
        .read(&doc, |d| {
            let heads = d.get_heads();
            d.get_change_by_hash(&heads[0]).unwrap().actor_id().clone()
        })
        .unwrap();
    b.rollback();
    actor
}

fn no_refusals_logged(node: &NodeProcess, who: &str) {
    let log = node.log_text();
    for bad in [
        "refused a document",
        "the peer refused",
        "duplicate seq",
        "fell behind",
    ] {
        assert!(!log.contains(bad), "{who} logged {bad:?}:\n{log}");
    }
}

#[test]
fn a_restored_node_edited_before_it_reconnects_converges() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync G");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let shared = {
        let _n = NodeProcess::start(&tc);
        link(&tc, &ch);
        let id = note(&tc, "ward rota", "");
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
        id
    };
    // The backup: a copy of the stopped node's directory.
    let backup = tmp.path().join("tc-backup");
    copy_dir(&tc, &backup);
    {
        let _n = NodeProcess::start(&tc);
        ok(
            &tc,
            &["note", "append", &shared, "--text", "after the backup"],
        );
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
    }
    assert!(entries(&ch, &shared).contains(&"after the backup".to_string()));
    // Disaster and restore; then an edit on the restored files before the node starts. It
    // takes the change number the lost edit had, so the county's checkpoint alone cannot
    // tell that anything is missing.
    std::fs::remove_dir_all(&tc).unwrap();
    copy_dir(&backup, &tc);
    ok(
        &tc,
        &[
            "note",
            "append",
            &shared,
            "--text",
            "offline after the restore",
        ],
    );
    let tc_node = NodeProcess::start(&tc);
    ok(&tc, &["sync", "wait", "--timeout", "60"]);
    wait_converged(&[&ch, &tc], &shared, WAIT);
    for d in [&ch, &tc] {
        let e = entries(d, &shared);
        assert!(e.contains(&"after the backup".to_string()), "{e:?}");
        assert!(
            e.contains(&"offline after the restore".to_string()),
            "{e:?}"
        );
    }
    no_refusals_logged(&tc_node, "the township");
    no_refusals_logged(&ch_node, "the county");
}

#[test]
fn a_document_forked_by_an_earlier_version_is_repaired() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync H");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _ch_node = NodeProcess::start(&ch);
    let shared = {
        let _n = NodeProcess::start(&tc);
        link(&tc, &ch);
        let id = note(&tc, "ward rota", "");
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
        id
    };
    let backup = tmp.path().join("tc-backup");
    copy_dir(&tc, &backup);
    {
        let _n = NodeProcess::start(&tc);
        ok(
            &tc,
            &["note", "append", &shared, "--text", "after the backup"],
        );
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
    }
    let reused = last_actor(&tc, &shared);
    std::fs::remove_dir_all(&tc).unwrap();
    copy_dir(&backup, &tc);
    // The restored node writes under the actor id of the lost edit, at the same seq: the
    // county holds a different change under that (actor, seq).
    append_as(&tc, &shared, &reused, "forked after the restore");
    let tc_node = NodeProcess::start(&tc);
    ok(&tc, &["sync", "wait", "--timeout", "60"]);
    wait_converged(&[&ch, &tc], &shared, WAIT);
    for d in [&ch, &tc] {
        let e = entries(d, &shared);
        assert!(e.contains(&"after the backup".to_string()), "{e:?}");
        assert!(e.contains(&"forked after the restore".to_string()), "{e:?}");
    }
    assert!(
        tc_node.log_text().contains("repaired"),
        "no repair logged:\n{}",
        tc_node.log_text()
    );
    let st = json(&tc, &["status", "--json"]);
    let sync = &st["network"]["sync"][0];
    assert_eq!(sync["caught_up"], true, "{st}");
    assert_eq!(sync["refusals"], serde_json::json!([]), "{st}");
}

#[test]
fn refused_documents_show_in_status_and_fail_sync_wait() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync I");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    fixed_port(&ch);
    let shared = {
        let _c = NodeProcess::start(&ch);
        let _t = NodeProcess::start(&tc);
        link(&tc, &ch);
        let id = note(&tc, "ward rota", "");
        ok(&tc, &["sync", "wait", "--timeout", "30"]);
        id
    };
    // A third node's actor id with a different change at the same seq on each side: neither
    // node wrote it, so neither can repair it (a forgery, or a fork that spread).
    let stranger = automerge::ActorId::from(vec![0x77u8; 24]);
    append_as(&tc, &shared, &stranger, "one version");
    append_as(&ch, &shared, &stranger, "another version");
    let _c = NodeProcess::start(&ch);
    let _t = NodeProcess::start(&tc);
    let (code, err) = fails(&tc, &["sync", "wait", "--timeout", "60"]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains(&shared),
        "the refused document is not named: {err}"
    );
    assert!(err.contains("refused"), "{err}");
    let st = json(&tc, &["status", "--json"]);
    let sync = &st["network"]["sync"][0];
    assert_eq!(sync["caught_up"], false, "{st}");
    let refusals = sync["refusals"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r["doc"] == shared.as_str() && r["reason"].as_str().unwrap().contains("seq")),
        "{st}"
    );
    let table = ok(&tc, &["status"]);
    assert!(table.contains(&shared[..12]), "{table}");
}

#[test]
fn a_county_killed_and_restarted_is_recognised_within_seconds() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Sync J");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    fixed_port(&ch);
    let ch_node = NodeProcess::start(&ch);
    let _tc_node = NodeProcess::start(&tc);
    link(&tc, &ch);
    let first = note(&tc, "before the crash", "");
    ok(&tc, &["sync", "wait", "--timeout", "30"]);
    assert!(heads_of(&ch, &first).is_some());
    ch_node.kill9();
    let _ch_node = NodeProcess::start(&ch);
    // A correctness bound, far below the idle timeout: only a restarted node that is told
    // apart from a silent one (stateless reset) and redialed at once meets it.
    let bound = Duration::from_secs(20);
    wait_until(
        bound,
        "the township to reconnect to the restarted county",
        || connected_to(&ch, "TC-01"),
    );
    let second = note(&tc, "after the restart", "");
    wait_until(bound, "a new write to reach the restarted county", || {
        heads_of(&ch, &second).is_some()
    });
    ok(&tc, &["sync", "wait", "--timeout", "30"]);
}
