//! Outreach free clinics through the real binary and real sync (issue 6): two devices log 200
//! visits each for the same event while offline; after they meet, both hold all 400 exactly
//! once, and the outreach report counts them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use yilian_tests::*;

const WAIT: Duration = Duration::from_secs(60);
const EACH: usize = 200;

fn log_visits(dir: &Path, event: &str, device: &str) {
    for i in 0..EACH {
        let day = if i < EACH / 2 { "10" } else { "11" };
        let at = format!(
            "2026-06-{day}T{:02}:{:02}",
            8 + (i % 100) / 12,
            (i * 5) % 60
        );
        let complaint = format!("{device} visit {i}");
        ok(
            dir,
            &[
                "outreach",
                "visit",
                "add",
                event,
                "--at",
                &at,
                "--sex",
                "F",
                "--age-band",
                "60-69",
                "--complaint",
                &complaint,
                "--screening",
                "血压=150/95",
                "--advice",
                "low-salt diet",
            ],
        );
    }
}

fn event_json(dir: &Path, id: &str) -> serde_json::Value {
    json(dir, &["outreach", "show", id, "--json"])
}

#[test]
fn two_devices_log_200_visits_each_offline_and_both_end_with_all_400_once() {
    let tmp = tempdir();
    let alliance = Alliance::new(tmp.path(), "Outreach A");
    let ch = alliance.node("CH-01", "county-hospital", "");
    let tc = alliance.node("TC-01", "township-center", "");

    // The county creates the event; it reaches the township's node.
    let id = {
        let _c = NodeProcess::start(&ch);
        let _t = NodeProcess::start(&tc);
        ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
        wait_until(WAIT, "the township to meet the county", || {
            connected_to(&tc, "CH-01")
        });
        let (code, err) = fails(
            &ch,
            &[
                "outreach",
                "create",
                "--title",
                "义诊",
                "--township",
                "TC-01",
                "--start",
                "2026-06-10",
                "--member",
                "李明,主治医师",
            ],
        );
        assert_eq!(code, 2, "{err}"); // clap refuses a member without a department
        let (code, err) = fails(
            &ch,
            &[
                "outreach",
                "create",
                "--title",
                "义诊",
                "--township",
                "TC-09",
                "--start",
                "2026-06-10",
                "--member",
                "李明,主治医师,心内科",
            ],
        );
        assert_eq!(code, 4, "{err}");
        assert!(err.contains("township: TC-09 is not a facility"), "{err}");
        let e = json(
            &ch,
            &[
                "outreach",
                "create",
                "--title",
                "高血压糖尿病义诊",
                "--township",
                "TC-01",
                "--start",
                "2026-06-10",
                "--end",
                "2026-06-11",
                "--member",
                "李明,主治医师,心内科",
                "--member",
                "王芳,副主任医师,内分泌科",
                "--service",
                "screening",
                "--json",
            ],
        );
        let id = e["id"].as_str().unwrap().to_string();
        wait_converged(&[&ch, &tc], &id, WAIT);
        id
    };

    // Both nodes are stopped: each device logs 200 visits on its own, at the same time.
    std::thread::scope(|s| {
        s.spawn(|| log_visits(&ch, &id, "county"));
        s.spawn(|| log_visits(&tc, &id, "township"));
    });
    ok(
        &tc,
        &[
            "outreach",
            "lecture",
            "add",
            &id,
            "--at",
            "2026-06-10T15:00",
            "--topic",
            "高血压防治",
            "--speaker",
            "李明",
            "--attendees",
            "60",
        ],
    );
    let (code, err) = fails(
        &tc,
        &[
            "outreach",
            "visit",
            "add",
            &id,
            "--at",
            "2026-06-12T09:00",
            "--sex",
            "F",
            "--age-band",
            "60-69",
            "--complaint",
            "x",
            "--advice",
            "y",
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("outside the event"), "{err}");
    assert_eq!(
        event_json(&ch, &id)["event"]["visits"]
            .as_object()
            .unwrap()
            .len(),
        EACH
    );
    assert_eq!(
        event_json(&tc, &id)["event"]["visits"]
            .as_object()
            .unwrap()
            .len(),
        EACH
    );

    // They meet again.
    let _c = NodeProcess::start(&ch);
    let t = NodeProcess::start(&tc);
    ok(&tc, &["peer", "add", "--addr", &node_addr(&ch).to_string()]);
    wait_converged(&[&ch, &tc], &id, WAIT);
    let mut seen = Vec::new();
    for dir in [&ch, &tc] {
        let e = event_json(dir, &id);
        let visits = e["event"]["visits"].as_object().unwrap();
        assert_eq!(visits.len(), 2 * EACH);
        let complaints: BTreeSet<&str> = visits
            .values()
            .map(|v| v["complaint"].as_str().unwrap())
            .collect();
        assert_eq!(complaints.len(), 2 * EACH, "a visit is duplicated or lost");
        for dev in ["county", "township"] {
            for i in 0..EACH {
                assert!(complaints.contains(format!("{dev} visit {i}").as_str()));
            }
        }
        assert_eq!(e["visits_by_day"]["2026-06-10"], 2 * EACH / 2);
        assert_eq!(e["event"]["lectures"].as_object().unwrap().len(), 1);
        seen.push(e["event"].clone());
    }
    assert_eq!(seen[0], seen[1]);

    // The outreach report counts them against the target (100 a day: met on both days).
    let r = json(
        &ch,
        &[
            "report",
            "outreach",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-30",
            "--format",
            "json",
        ],
    );
    assert_eq!(r["visits"], 2 * EACH);
    let ev = &r["events"][0];
    assert_eq!(ev["visits_per_day"], 200.0);
    assert_eq!(ev["days_met"], 2);
    assert_eq!(ev["lectures"], 1);
    assert_eq!(r["townships_visited"][0], "TC-01");

    // A visit logged through the running node with the patient's name: the name and the
    // complaint stay out of the node's log.
    ok(
        &tc,
        &[
            "outreach",
            "visit",
            "add",
            &id,
            "--at",
            "2026-06-11T16:00",
            "--sex",
            "M",
            "--age-band",
            "70-79",
            "--name",
            "赵六",
            "--complaint",
            "胸闷三天",
            "--advice",
            "转诊",
        ],
    );
    assert_eq!(
        event_json(&tc, &id)["event"]["visits"]
            .as_object()
            .unwrap()
            .len(),
        2 * EACH + 1
    );
    let log = t.log_text();
    assert!(
        !log.contains("赵六") && !log.contains("胸闷三天"),
        "patient data in the log:\n{log}"
    );
}
