//! Referrals through the real binary and real sync (issue 5): the workflow, refused
//! transitions and field errors, and an offline conflict that both nodes show and that a
//! resolution on one node clears on both.

use std::path::Path;
use std::time::Duration;

use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);

fn create(tc: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "referral",
        "create",
        "--to",
        "CH-01",
        "--to-department",
        "General surgery",
        "--from-department",
        "Outpatient",
        "--patient-name",
        "王五",
        "--sex",
        "F",
        "--birth-date",
        "1949-12-31",
        "--id-number",
        "11010519491231002X",
        "--reason",
        "RLQ pain 12 h, fever 38.2",
        "--icd10",
        "K35.800",
        "--diagnosis",
        "acute appendicitis, suspected",
        "--urgency",
        "green-channel",
        "--treatment",
        "IV fluids",
        "--doctor",
        "Dr. Li",
        "--json",
    ];
    args.extend_from_slice(extra);
    json(tc, &args)["id"].as_str().unwrap().to_string()
}

fn show(dir: &Path, id: &str) -> serde_json::Value {
    json(dir, &["referral", "show", id, "--json"])
}

#[test]
fn a_referral_goes_up_is_accepted_arrives_and_completes_with_refusals_on_the_way() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Referral A");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _c = NodeProcess::start(&ch);
    let t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);

    // Field errors name the field; identifiers are not echoed.
    let (code, err) = fails(
        &tc,
        &[
            "referral",
            "create",
            "--to",
            "CH-01",
            "--to-department",
            "x",
            "--from-department",
            "y",
            "--patient-name",
            "p",
            "--sex",
            "F",
            "--birth-date",
            "1949-12-31",
            "--id-number",
            "110105194912310021",
            "--reason",
            "r",
            "--icd10",
            "K35.800",
            "--diagnosis",
            "d",
            "--treatment",
            "t",
            "--doctor",
            "d",
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("id_number")
            && err.contains("check character")
            && !err.contains("110105194912310021"),
        "{err}"
    );
    let (_, err) = fails(
        &tc,
        &[
            "referral",
            "create",
            "--to",
            "CH-01",
            "--to-department",
            "x",
            "--from-department",
            "y",
            "--patient-name",
            "p",
            "--sex",
            "F",
            "--birth-date",
            "1949-12-31",
            "--reason",
            "r",
            "--icd10",
            "appendix",
            "--diagnosis",
            "d",
            "--treatment",
            "t",
            "--doctor",
            "d",
        ],
    );
    assert!(err.contains("icd10"), "{err}");

    let id = create(&tc, &[]);
    assert_eq!(show(&tc, &id)["status"], "requested");
    assert!(
        !t.log_text().contains("王五") && !t.log_text().contains("11010519491231002X"),
        "patient data in the log"
    );

    // The sender may not accept its own request.
    let (code, err) = fails(
        &tc,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "Surgery",
        ],
    );
    assert_eq!(code, 4);
    assert!(err.contains("only the receiving facility CH-01"), "{err}");

    wait_until(WAIT, "the referral to reach the county", || {
        heads_of(&ch, &id).is_some()
    });
    let (_, err) = fails(&ch, &["referral", "arrive", &id]);
    assert!(err.contains("it is requested"), "{err}");
    ok(
        &ch,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "General surgery",
        ],
    );
    ok(
        &ch,
        &["referral", "note", &id, "--text", "bring previous CT"],
    );
    wait_until(WAIT, "the acceptance to reach the township", || {
        show(&tc, &id)["status"] == "accepted"
    });
    assert_eq!(show(&tc, &id)["slot"], "2026-12-01T09:30");
    ok(&ch, &["referral", "arrive", &id]);
    ok(
        &ch,
        &[
            "referral",
            "complete",
            &id,
            "--outcome",
            "appendectomy, discharged day 3",
        ],
    );
    wait_until(WAIT, "completion to reach the township", || {
        show(&tc, &id)["status"] == "completed"
    });
    let (_, err) = fails(&tc, &["referral", "cancel", &id, "--reason", "too late"]);
    assert!(err.contains("already completed"), "{err}");

    let up = json(&ch, &["referral", "list", "--direction", "up", "--json"]);
    assert_eq!(up.as_array().unwrap().len(), 1);
    assert!(
        json(
            &ch,
            &["referral", "list", "--status", "requested", "--json"]
        )
        .as_array()
        .unwrap()
        .is_empty()
    );
}

#[test]
fn offline_cancel_and_accept_show_as_one_conflict_on_both_nodes_until_resolved() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Referral B");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");
    let _c = NodeProcess::start(&ch);
    let _t = NodeProcess::start(&tc);
    let county = node_addr(&ch).to_string();
    ok(&tc, &["peer", "add", "--addr", &county]);
    let id = create(&tc, &[]);
    wait_until(WAIT, "the referral to reach the county", || {
        heads_of(&ch, &id).is_some()
    });

    // The link goes down; both sides act.
    ok(&tc, &["peer", "remove", "--addr", &county]);
    wait_until(WAIT, "the link to drop", || !connected_to(&ch, "TC-01"));
    ok(
        &tc,
        &[
            "referral",
            "cancel",
            &id,
            "--reason",
            "patient chose another hospital",
        ],
    );
    ok(
        &ch,
        &[
            "referral",
            "accept",
            &id,
            "--slot",
            "2026-12-01T09:30",
            "--department",
            "General surgery",
        ],
    );
    ok(&tc, &["peer", "add", "--addr", &county]);
    wait_converged(&[&ch, &tc], &id, WAIT);

    let on_ch = show(&ch, &id);
    let on_tc = show(&tc, &id);
    assert_eq!(on_ch["needs_reconciliation"], true);
    assert_eq!(
        on_ch["conflicts"], on_tc["conflicts"],
        "both nodes show the same conflict"
    );
    let acts = on_ch["conflicts"][0]["acts"].as_array().unwrap();
    let kinds: Vec<&str> = acts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"accept") && kinds.contains(&"cancel"),
        "{kinds:?}"
    );
    assert!(
        acts.iter().all(|a| a["by"].is_string() && a["at"].is_u64()),
        "author and time shown"
    );
    let listed = json(&tc, &["referral", "conflicts", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, err) = fails(&ch, &["referral", "arrive", &id]);
    assert!(err.contains("needs reconciliation"), "{err}");
    // The township may not resolve; the county may.
    let cancel_id = acts.iter().find(|a| a["kind"] == "cancel").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, err) = fails(&tc, &["referral", "resolve", &id, "--keep", &cancel_id]);
    assert!(err.contains("county hospital"), "{err}");
    ok(
        &ch,
        &["referral", "resolve", &id, "--keep", &cancel_id[..6]],
    );
    wait_converged(&[&ch, &tc], &id, WAIT);
    for d in [&ch, &tc] {
        let v = show(d, &id);
        assert_eq!(v["needs_reconciliation"], false);
        assert_eq!(v["status"], "cancelled");
        assert_eq!(
            v["referral"]["acts"].as_array().unwrap().len(),
            3,
            "no act lost"
        );
        assert!(
            json(d, &["referral", "conflicts", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}
