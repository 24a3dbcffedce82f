//! Tiny runs of every `yilian-bench` scenario, so the benchmarks cannot rot. They check the
//! figures that do not depend on the machine's speed (round trips, bytes against budgets); the
//! timed figures live in docs/benchmarks.md.

use std::process::Output;

use yilian_tests::*;

/// Runs `yilian-bench ARGS... --json` to completion.
fn run_bench(args: &[&str]) -> Output {
    bench_command()
        .args(args)
        .arg("--json")
        .output()
        .expect("run yilian-bench")
}

/// Runs a scenario that must succeed and returns its JSON figures.
fn bench(args: &[&str]) -> serde_json::Value {
    let out = run_bench(args);
    assert!(
        out.status.success(),
        "yilian-bench {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "yilian-bench {args:?} printed invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn catalog_bench_runs_at_a_tiny_size() {
    let c = bench(&["catalog", "--entries", "40", "--facilities", "2"]);
    assert_eq!(
        (c["entries"].as_u64(), c["facilities"].as_u64()),
        (Some(40), Some(2))
    );
    assert!(
        c["import (GBK, all new), ms"].as_f64().unwrap() > 0.0,
        "{c}"
    );
    assert!(
        c["show one entry with 2 stock rows, ms"].as_f64().is_some(),
        "{c}"
    );
    assert!(c["stock set p99, ms"].as_f64().is_some(), "{c}");
}

#[test]
fn writes_and_load_benches_report_figures() {
    let w = bench(&["writes", "--count", "50", "--clients", "2"]);
    assert_eq!(w["writes"], 50);
    assert!(w["p50_ms"].as_f64().unwrap() > 0.0);
    let l = bench(&["load", "--docs", "200"]);
    assert_eq!(l["docs"], 200);
    assert_eq!(
        l["heads"], 200,
        "every stored document loaded with one head"
    );
}

#[test]
fn sync_benches_meet_the_protocol_targets_at_small_sizes() {
    let f = bench(&["first-sync", "--docs", "30"]);
    assert_eq!(f["runs"][0]["docs"], 30);
    assert!(f["runs"][0]["peak_rss_township_mib"].as_f64().unwrap() > 1.0);

    let r = bench(&["reconnect", "--docs", "40"]);
    assert_eq!(r["round_trips"], 1, "{r}");
    assert!(
        r["bytes_out"].as_u64().unwrap() <= 1024 && r["bytes_in"].as_u64().unwrap() <= 1024,
        "{r}"
    );

    let scale = bench(&["scale", "--docs", "100"]);
    assert_eq!(scale["docs"], 100);
    assert!(scale["county_rss_mib"].as_f64().unwrap() > 1.0);

    let lossy = bench(&[
        "lossy",
        "--updates",
        "5",
        "--rtt-ms",
        "20",
        "--kbit",
        "4000",
        "--loss-percent",
        "2",
    ]);
    assert_eq!(lossy["updates_per_township"], 5);
    assert!(
        lossy["converge_s"].as_f64().unwrap() > 0.0
            && lossy["busiest_link_bytes"].as_u64().unwrap() > 0
            && lossy["restart_reconnect_s"].as_f64().unwrap() > 0.0,
        "{lossy}"
    );

    let live = bench(&["live", "--edits", "5"]);
    assert_eq!(live["edits"], 5);

    let c = bench(&["catchup", "--changed", "1,10"]);
    for run in c["runs"].as_array().unwrap() {
        assert_eq!(run["within_budget"], true, "{run}");
        assert!(run["change_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
#[allow(clippy::print_stderr)] // the skip must be visible in the test output
fn vs_peers_runs_automerge_repo_and_pouchdb_beside_yilian() {
    let out = run_bench(&["vs-peers", "--docs", "20"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("needs npm") || err.contains("cannot install automerge-repo and PouchDB") {
            eprintln!(
                "SKIPPED vs-peers smoke run: npm or the npm registry is not reachable here: {err}"
            );
            return;
        }
        panic!("vs-peers failed: {err}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &v["first_sync"][0];
    assert_eq!(row["docs"], 20);
    for k in ["yilian_s", "pouchdb_s", "automerge_repo_s"] {
        assert!(row[k].as_f64().is_some_and(|s| s > 0.0), "{k}: {v}");
    }
    assert_eq!(v["reconnect"]["yilian"]["round_trips"], 1, "{v}");
    assert!(
        v["reconnect"]["pouchdb"]["requests"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(
        v["reconnect"]["automerge_repo"]["messages"]
            .as_u64()
            .unwrap()
            > 0,
        "{v}"
    );
}
