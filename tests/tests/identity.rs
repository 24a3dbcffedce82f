//! Alliance identity through the real binary and real QUIC on 127.0.0.1 (issue 3): enrollment,
//! mutual TLS, refused handshakes, revocation, certificate expiry, hostile datagrams.

use std::time::Duration;

use yilian_node::config::{FacilityConfig, FacilityKind};
use yilian_node::identity::NodeKey;
use yilian_node::identity::ca::{Ca, Validity};
use yilian_node::identity::enroll;
use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(20);

fn facility(code: &str) -> FacilityConfig {
    FacilityConfig {
        code: code.parse().unwrap(),
        name: format!("{code} facility"),
        kind: FacilityKind::TownshipCenter,
        time_zone: None,
    }
}

/// A key and a certificate for it from `ca`, with the given validity: (cert PEM, key DER).
fn issued(ca: &mut Ca, code: &str, validity: Validity) -> (NodeKey, String, Vec<u8>) {
    let key = NodeKey::generate().unwrap();
    let req = enroll::make_request(&key, &facility(code)).unwrap();
    let bundle = ca.issue(&req, &[], validity).unwrap();
    let der = key.key_pair().serialize_der();
    (key, bundle.cert_pem, der)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_enrolled_nodes_connect_over_quic_and_see_each_others_identity() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "测试县医共体");
    let ch = alliance.node("CH-01", "county-hospital", "pharmacy");
    let tc = alliance.node("TC-01", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let tc_node = NodeProcess::start(&tc);
    let ch_addr = node_addr(&ch);
    ok(&tc, &["peer", "add", "--addr", &ch_addr.to_string()]);

    wait_until(WAIT, "TC-01 to connect to CH-01", || {
        connected_to(&tc, "CH-01")
    });
    let seen_by_tc = peers(&tc)
        .into_iter()
        .find(|p| p["peer"]["facility"] == "CH-01")
        .unwrap();
    assert_eq!(seen_by_tc["peer"]["kind"], "county-hospital");
    assert_eq!(seen_by_tc["peer"]["roles"], serde_json::json!(["pharmacy"]));
    assert_eq!(seen_by_tc["outbound"], true);
    let ch_status = json(&ch, &["status", "--json"]);
    assert_eq!(
        seen_by_tc["peer"]["node_id"], ch_status["node_id"],
        "node id derived from the key"
    );

    wait_until(WAIT, "CH-01 to see TC-01", || connected_to(&ch, "TC-01"));
    let seen_by_ch = peers(&ch)
        .into_iter()
        .find(|p| p["peer"]["facility"] == "TC-01")
        .unwrap();
    assert_eq!(seen_by_ch["outbound"], false);
    assert_eq!(seen_by_ch["peer"]["kind"], "township-center");

    let status = json(&tc, &["status", "--json"]);
    assert_eq!(status["identity"]["alliance"], "测试县医共体");
    assert!(status["identity"]["warning"].is_null());
    assert!(status["identity"]["expires_in_days"].as_i64().unwrap() > 1000);

    // The peer is remembered in the configuration across restarts.
    tc_node.stop();
    let tc_node = NodeProcess::start(&tc);
    wait_until(WAIT, "TC-01 to reconnect after restart", || {
        connected_to(&tc, "CH-01")
    });
    ok(&tc, &["peer", "remove", "--addr", &ch_addr.to_string()]);
    wait_until(WAIT, "CH-01 to notice TC-01 left", || {
        !connected_to(&ch, "TC-01")
    });
    assert!(peers(&tc).is_empty());
    tc_node.stop();
    ch_node.stop();
}

#[test]
fn bad_certificates_are_refused_in_the_handshake_and_the_node_keeps_serving() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance A");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-02", "township-center", "");
    let ca_pem = std::fs::read_to_string(alliance.ca.join("ca.crt")).unwrap();
    let mut ca = Ca::open(&alliance.ca).unwrap();

    // A certificate from another alliance's CA.
    let mut other = Ca::init(&tmp.path().join("other-ca"), "Alliance B").unwrap();
    let (_, other_cert, other_key) = issued(&mut other, "TC-66", Validity::days_from_now(30));
    // An expired certificate from the right CA.
    let now = time::OffsetDateTime::now_utc();
    let (_, expired_cert, expired_key) = issued(
        &mut ca,
        "TC-77",
        Validity {
            not_before: now - time::Duration::days(30),
            not_after: now - time::Duration::days(1),
        },
    );
    // A certificate that gets revoked.
    let (revoked, revoked_cert, revoked_key) =
        issued(&mut ca, "TC-88", Validity::days_from_now(30));
    drop(ca);
    ok(
        &ch,
        &[
            "ca",
            "revoke",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--node",
            &revoked.node_id().to_string(),
        ],
    );
    ok(
        &ch,
        &[
            "crl",
            "install",
            alliance.ca.join("crl.pem").to_str().unwrap(),
        ],
    );
    // A self-signed certificate.
    let self_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let self_cert = rcgen::CertificateParams::new(vec!["node.yilian".to_string()])
        .unwrap()
        .self_signed(&self_key)
        .unwrap()
        .pem();

    let ch_node = NodeProcess::start(&ch);
    let addr = node_addr(&ch);
    let rt = runtime();
    let cases: Vec<(&str, rustls::ClientConfig, &str)> = vec![
        (
            "another alliance's CA",
            client_tls(&ca_pem, Some((&other_cert, other_key))),
            "not issued by this alliance's ca",
        ),
        (
            "expired",
            client_tls(&ca_pem, Some((&expired_cert, expired_key))),
            "expired",
        ),
        (
            "revoked",
            client_tls(&ca_pem, Some((&revoked_cert, revoked_key))),
            "has been revoked",
        ),
        (
            "self-signed",
            client_tls(&ca_pem, Some((&self_cert, self_key.serialize_der()))),
            "not issued by this alliance's ca",
        ),
        (
            "no client certificate",
            client_tls(&ca_pem, None),
            "presented no certificate",
        ),
    ];
    for (what, cfg, reason) in cases {
        let before = ch_node
            .log_text()
            .matches("peer refused during handshake")
            .count();
        let outcome = rt.block_on(quic_attempt(addr, cfg, Duration::from_secs(3)));
        assert!(outcome.is_err(), "{what}: the connection was accepted");
        wait_until(WAIT, "the refusal to be logged", || {
            ch_node
                .log_text()
                .matches("peer refused during handshake")
                .count()
                > before
        });
        let log = ch_node.log_text().to_lowercase();
        let last = log
            .lines()
            .rfind(|l| l.contains("peer refused during handshake"))
            .unwrap();
        assert!(
            last.contains(reason),
            "{what}: refusal reason not logged: {last}"
        );
        assert!(peers(&ch).is_empty(), "{what}: a refused peer is listed");
    }

    // The node still accepts a good peer and still serves its operator.
    let tc_node = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &addr.to_string()]);
    wait_until(WAIT, "a valid peer to connect after the refusals", || {
        connected_to(&ch, "TC-02")
    });
    ok(&ch, &["note", "add", "--title", "still serving"]);
    tc_node.stop();
    ch_node.stop();
}

#[test]
fn revoking_a_connected_node_drops_it_and_it_cannot_come_back() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance R");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-03", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let tc_node = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
    wait_until(WAIT, "TC-03 to connect", || connected_to(&ch, "TC-03"));

    let tc_id = json(&tc, &["status", "--json"])["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &ch,
        &[
            "ca",
            "revoke",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--node",
            &tc_id,
        ],
    );
    let crl = alliance.ca.join("crl.pem");
    let out = ok(&ch, &["crl", "install", crl.to_str().unwrap()]);
    assert!(out.contains("dropped the connection to TC-03"), "{out}");
    assert!(!connected_to(&ch, "TC-03"));
    // TC-03 keeps dialing; every attempt is refused.
    wait_until(WAIT, "a refused re-dial", || {
        ch_node.log_text().contains("Revoked")
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!connected_to(&ch, "TC-03"), "a revoked node got back in");
    // The same list again is refused as not newer.
    let (_, err) = fails(&ch, &["crl", "install", crl.to_str().unwrap()]);
    assert!(err.contains("not newer"), "{err}");
    // A list from another CA is refused.
    let other = Ca::init(&tmp.path().join("other"), "Other").unwrap();
    let (_, err) = fails(&ch, &["crl", "install", other.crl_path().to_str().unwrap()]);
    assert!(err.contains("not signed by this alliance's CA"), "{err}");
    tc_node.stop();
    ch_node.stop();
}

#[test]
fn enrollment_refuses_foreign_mismatched_and_expired_bundles() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance E");
    let a = alliance.node("TC-10", "township-center", "");
    let b_dir = tmp.path().join("tc-11");
    ok(
        &b_dir,
        &[
            "init",
            "--facility",
            "TC-11",
            "--name",
            "b",
            "--kind",
            "township-center",
        ],
    );

    // Another node's bundle.
    let (_, err) = fails(
        &b_dir,
        &[
            "enroll",
            "install",
            tmp.path().join("TC-10.bundle").to_str().unwrap(),
        ],
    );
    assert!(err.contains("issued for node"), "{err}");

    // A bundle from another alliance for a node already in this one.
    let other_ca = tmp.path().join("other-ca");
    ok(&other_ca, &["ca", "init", "--alliance", "Alliance F"]);
    let req = tmp.path().join("a-again.req");
    ok(&a, &["enroll", "request", "--out", req.to_str().unwrap()]);
    let foreign = tmp.path().join("foreign.bundle");
    ok(
        &a,
        &[
            "ca",
            "issue",
            "--ca",
            other_ca.to_str().unwrap(),
            "--request",
            req.to_str().unwrap(),
            "--out",
            foreign.to_str().unwrap(),
        ],
    );
    let (_, err) = fails(&a, &["enroll", "install", foreign.to_str().unwrap()]);
    assert!(
        err.contains("Alliance F") && err.contains("Alliance E"),
        "{err}"
    );

    // An expired bundle for the right node.
    let (cfg, key) = yilian_node::datadir::DataDir::new(&b_dir).load().unwrap();
    let mut ca = Ca::open(&alliance.ca).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let bundle = ca
        .issue(
            &enroll::make_request(&key, &cfg.facility).unwrap(),
            &[],
            Validity {
                not_before: now - time::Duration::days(10),
                not_after: now - time::Duration::days(2),
            },
        )
        .unwrap();
    let expired = tmp.path().join("expired.bundle");
    std::fs::write(&expired, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let (_, err) = fails(&b_dir, &["enroll", "install", expired.to_str().unwrap()]);
    assert!(err.contains("expired"), "{err}");
    assert!(
        !b_dir.join("node.crt").exists(),
        "a refused bundle left files behind"
    );

    // Garbage and a tampered request are refused by the CA with a clear message.
    let garbage = tmp.path().join("garbage.req");
    std::fs::write(&garbage, b"{\"format\": 1}").unwrap();
    let (_, err) = fails(
        &a,
        &[
            "ca",
            "issue",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--request",
            garbage.to_str().unwrap(),
            "--out",
            "/dev/null",
        ],
    );
    assert!(err.contains("not a yilian enrollment request"), "{err}");
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&req).unwrap()).unwrap();
    tampered["node_id"] = serde_json::json!("00".repeat(16));
    let tampered_path = tmp.path().join("tampered.req");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    let (_, err) = fails(
        &a,
        &[
            "ca",
            "issue",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--request",
            tampered_path.to_str().unwrap(),
            "--out",
            "/dev/null",
        ],
    );
    assert!(err.contains("signed by node"), "{err}");
}

#[test]
fn status_warns_before_expiry_and_an_expired_certificate_keeps_the_node_off_the_network() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance X");
    let dir = tmp.path().join("tc-20");
    ok(
        &dir,
        &[
            "init",
            "--facility",
            "TC-20",
            "--name",
            "x",
            "--kind",
            "township-center",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let req = tmp.path().join("r.req");
    let bundle = tmp.path().join("r.bundle");
    ok(&dir, &["enroll", "request", "--out", req.to_str().unwrap()]);
    ok(
        &dir,
        &[
            "ca",
            "issue",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--request",
            req.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
            "--valid-days",
            "10",
        ],
    );
    ok(&dir, &["enroll", "install", bundle.to_str().unwrap()]);
    let node = NodeProcess::start(&dir);
    let status = json(&dir, &["status", "--json"]);
    let warning = status["identity"]["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("expires in"),
        "no expiry warning: {status}"
    );
    let table = run(&dir, &["status"]);
    assert!(String::from_utf8_lossy(&table.stderr).contains("WARNING"));
    node.stop();

    // Replace the certificate with one that has expired (as if the node sat unused for years).
    let (cfg, key) = yilian_node::datadir::DataDir::new(&dir).load().unwrap();
    let mut ca = Ca::open(&alliance.ca).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let old = ca
        .issue(
            &enroll::make_request(&key, &cfg.facility).unwrap(),
            &[],
            Validity {
                not_before: now - time::Duration::days(400),
                not_after: now - time::Duration::days(35),
            },
        )
        .unwrap();
    std::fs::write(dir.join("node.crt"), old.cert_pem).unwrap();
    let node = NodeProcess::start(&dir);
    assert!(
        node.log_text().contains("expired"),
        "expiry not reported at start:\n{}",
        node.log_text()
    );
    let status = json(&dir, &["status", "--json"]);
    assert_eq!(status["network"]["enabled"], false);
    assert!(
        status["network"]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(
        status["identity"]["warning"]
            .as_str()
            .unwrap()
            .contains("EXPIRED")
    );
    assert!(status["identity"]["expires_in_days"].as_i64().unwrap() < 0);
    // Local work goes on.
    ok(&dir, &["note", "add", "--title", "offline but working"]);
    node.stop();
}

#[test]
fn garbage_datagrams_and_a_half_open_flood_do_not_stop_a_valid_peer() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance G");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-30", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let addr = node_addr(&ch);

    // Garbage: 2,000 datagrams of random bytes and sizes, some shaped like QUIC long headers.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2000 {
        let len = 1 + (i * 37) % 1400;
        let mut buf = pseudo_random_bytes(0x2545_f491_4f6c_dd1d + i as u64, len);
        if i % 3 == 0 {
            buf[0] = 0xc0 | (buf[0] & 0x0f); // long header, Initial
            if buf.len() > 5 {
                buf[1..5].copy_from_slice(&1u32.to_be_bytes()); // QUIC v1
            }
        }
        let _ = sock.send_to(&buf, addr);
    }

    // Half-open handshakes: 200 clients start a handshake and vanish without finishing it.
    let rt = runtime();
    let ca_pem = std::fs::read_to_string(alliance.ca.join("ca.crt")).unwrap();
    rt.block_on(async {
        for _ in 0..200 {
            let mut cfg = client_tls(&ca_pem, None);
            cfg.alpn_protocols = vec![b"yilian/1".to_vec()];
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
            let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            let connecting = ep
                .connect_with(
                    quinn::ClientConfig::new(std::sync::Arc::new(crypto)),
                    addr,
                    "node.yilian",
                )
                .unwrap();
            // Let the Initial go out, then drop everything without a word.
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop(connecting);
            drop(ep);
        }
    });

    let tc_node = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &addr.to_string()]);
    wait_until(WAIT, "a valid peer to connect after the flood", || {
        connected_to(&ch, "TC-30")
    });
    assert_eq!(
        json(&ch, &["status", "--json"])["facility"]["code"],
        "CH-01"
    );
    tc_node.stop();
    assert_eq!(ch_node.stop(), 0, "the node must still shut down cleanly");
}

#[test]
fn a_revocation_list_installed_on_one_node_spreads_over_sync_and_takes_effect_everywhere() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Alliance S");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let t1 = alliance.node("TC-41", "township-center", "");
    let t2 = alliance.node("TC-42", "township-center", "");
    let ch_node = NodeProcess::start(&ch);
    let _t1_node = NodeProcess::start(&t1);
    let _t2_node = NodeProcess::start(&t2);
    for t in [&t1, &t2] {
        ok(t, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
    }
    wait_until(WAIT, "both townships to connect", || {
        connected_to(&ch, "TC-41") && connected_to(&ch, "TC-42")
    });

    // County IT revokes TC-42 and hands the list to TC-41 only.
    let t2_id = json(&t2, &["status", "--json"])["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &ch,
        &[
            "ca",
            "revoke",
            "--ca",
            alliance.ca.to_str().unwrap(),
            "--node",
            &t2_id,
        ],
    );
    ok(
        &t1,
        &[
            "crl",
            "install",
            alliance.ca.join("crl.pem").to_str().unwrap(),
        ],
    );

    // It reaches the county over sync, which drops TC-42 and refuses it from then on.
    wait_until(WAIT, "the county to install the list from its peer", || {
        ch_node
            .log_text()
            .contains("installed a newer revocation list received from a peer")
    });
    wait_until(WAIT, "the county to drop the revoked township", || {
        !connected_to(&ch, "TC-42")
    });
    assert!(
        connected_to(&ch, "TC-41"),
        "the messenger must stay connected"
    );
    let installed = std::fs::read_to_string(ch.join("crl.pem")).unwrap();
    assert_eq!(
        installed,
        std::fs::read_to_string(alliance.ca.join("crl.pem")).unwrap()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !connected_to(&ch, "TC-42"),
        "the revoked township got back in"
    );
}
