//! `yilian demo` end to end: the in-process alliance starts through the node's public daemon
//! API, converges after the partition heals, stops every node and removes its directory.

use std::process::Command;

use yilian_tests::*;

#[test]
fn the_demo_converges_stops_its_nodes_and_removes_its_directory() {
    let out = Command::new(yilian_bin())
        .arg("demo")
        .env_remove("YILIAN_DIR")
        .output()
        .expect("run yilian demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the demo failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "every node holds the same heads for the shared note with all 5 entries",
        "TC-02's note reached TC-03 through the county",
        "nodes stopped; temporary directory removed",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    let dir = stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(" in ").next())
        .expect("the demo names its directory");
    assert!(
        !std::path::Path::new(dir).exists(),
        "the demo left {dir} behind"
    );
}
