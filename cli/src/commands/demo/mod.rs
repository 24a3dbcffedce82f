//! `yilian demo`: a small alliance on loopback in a temporary directory — a county hospital and
//! three township centers with their own CA. It partitions two townships away, lets every
//! facility work offline, heals the partition and shows, step by step, how they converge.

mod alliance;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use yilian_node::config::FacilityKind;
use yilian_node::control::{Request, Response};
use yilian_node::ids::{DocId, FacilityCode};

use self::alliance::{Member, enroll_all, settle};
use crate::cli::DemoArgs;
use crate::output;

fn codes(list: &[&str]) -> Vec<FacilityCode> {
    list.iter().filter_map(|c| c.parse().ok()).collect()
}

async fn note(m: &Member, title: &str, audience: &[&str]) -> Result<DocId> {
    match m
        .ask(Request::NoteAdd {
            title: title.into(),
            text: Some(format!("posted by {}", m.code)),
            audience: codes(audience),
        })
        .await?
    {
        Response::Written(info) => Ok(info.id),
        _ => bail!("unexpected answer"),
    }
}

async fn append(m: &Member, id: DocId, text: &str) -> Result<()> {
    m.ask(Request::NoteAppend {
        id: id.to_string(),
        text: text.into(),
    })
    .await?;
    Ok(())
}

/// (entries, heads) of a note on a node, or None if the node does not hold it.
async fn look(m: &Member, id: DocId) -> Result<Option<(usize, String)>> {
    match m
        .client()
        .await?
        .call(&Request::DocShow { id: id.to_string() })
        .await?
    {
        Response::Doc { info, json } => {
            let v: serde_json::Value = serde_json::from_str(&json)?;
            let n = v["entries"].as_array().map_or(0, Vec::len);
            let heads = info
                .heads_hex()
                .iter()
                .map(|h| h[..8].to_string())
                .collect::<Vec<_>>()
                .join("+");
            Ok(Some((n, heads)))
        }
        _ => Ok(None),
    }
}

async fn show(members: &[Member], id: DocId, what: &str) -> Result<Vec<Option<(usize, String)>>> {
    let mut row = Vec::new();
    let mut cells = Vec::new();
    for m in members {
        let l = look(m, id).await?;
        cells.push(match &l {
            Some((n, h)) => format!("{}: {n} entries @{h}", m.code),
            None => format!("{}: -", m.code),
        });
        row.push(l);
    }
    output::line(format_args!("   {what:<28} {}", cells.join(" | ")));
    Ok(row)
}

pub(crate) async fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("yilian-demo-").tempdir()?;
    output::line(format_args!(
        "yilian demo: a county medical alliance on loopback, in {}",
        tmp.path().display()
    ));
    let mut members = enroll_all(
        tmp.path(),
        "演示县医共体 Demo County Alliance",
        &[
            (
                "CH-01",
                "县人民医院 County People's Hospital",
                FacilityKind::CountyHospital,
            ),
            (
                "TC-01",
                "城关镇卫生院 Chengguan Township Center",
                FacilityKind::TownshipCenter,
            ),
            (
                "TC-02",
                "河口乡卫生院 Hekou Township Center",
                FacilityKind::TownshipCenter,
            ),
            (
                "TC-03",
                "石桥镇卫生院 Shiqiao Township Center",
                FacilityKind::TownshipCenter,
            ),
        ],
    )?;
    output::line(
        "1. created the alliance CA and enrolled CH-01 (county hospital) and TC-01..03 (township centers)",
    );
    for m in &mut members {
        m.start().await?;
    }
    let county = members[0].addr()?;
    for m in &members[1..] {
        m.ask(Request::PeerAdd {
            addr: county.to_string(),
        })
        .await?;
    }
    let all: Vec<&Member> = members.iter().collect();
    let took = settle(&all, &[3, 1, 1, 1], Duration::from_secs(20)).await?;
    output::line(format_args!(
        "2. nodes running on 127.0.0.1; townships dialed the county over QUIC (mutual TLS): connected and synced in {} ms",
        took.as_millis()
    ));
    let shared = note(
        &members[0],
        "医共体周例会 Weekly alliance meeting",
        &["TC-01", "TC-02", "TC-03"],
    )
    .await?;
    settle(&all, &[3, 1, 1, 1], Duration::from_secs(20)).await?;
    show(&members, shared, "shared note everywhere:").await?;

    for m in &members[2..] {
        m.ask(Request::PeerRemove {
            addr: county.to_string(),
        })
        .await?;
    }
    output::line(
        "3. partition: TC-02 and TC-03 lose their link to the county; everyone keeps working offline",
    );
    let upward = note(
        &members[1],
        "上转 TC-01 -> CH-01: suspected appendicitis",
        &["CH-01"],
    )
    .await?;
    let sideways = note(
        &members[2],
        "TC-02 -> TC-03: outreach roster swap",
        &["TC-03"],
    )
    .await?;
    append(&members[1], shared, "TC-01: we can host on Tuesday").await?;
    append(
        &members[2],
        shared,
        "TC-02: Tuesday is market day, Wednesday?",
    )
    .await?;
    append(&members[3], shared, "TC-03: either works").await?;
    append(&members[0], shared, "CH-01: agenda attached").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    output::line("   while partitioned, each node sees its own version:");
    show(&members, shared, "shared note:").await?;
    show(&members, upward, "TC-01's upward referral note:").await?;
    show(&members, sideways, "TC-02's note for TC-03:").await?;

    let healed = Instant::now();
    for m in &members[2..] {
        m.ask(Request::PeerAdd {
            addr: county.to_string(),
        })
        .await?;
    }
    output::line("4. the partition heals: TC-02 and TC-03 reconnect to the county");
    settle(&all, &[3, 1, 1, 1], Duration::from_secs(30)).await?;
    // Relayed documents take a second hop through the county; wait for the shared note to agree.
    let mut agreed = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let row: Vec<_> = {
            let mut v = Vec::new();
            for m in &members {
                v.push(look(m, shared).await?);
            }
            v
        };
        if row.iter().all(|r| r.is_some() && *r == row[0])
            && look(&members[3], sideways).await?.is_some()
        {
            agreed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    output::line(format_args!(
        "5. converged {} ms after healing:",
        healed.elapsed().as_millis()
    ));
    let row = show(&members, shared, "shared note:").await?;
    show(&members, upward, "TC-01's upward referral note:").await?;
    show(&members, sideways, "TC-02's note for TC-03:").await?;
    if !agreed || row.iter().any(|r| r.as_ref().map(|x| x.0) != Some(5)) {
        bail!("the alliance did not converge");
    }
    output::line(
        "   every node holds the same heads for the shared note with all 5 entries (no edit lost);",
    );
    output::line("   TC-02's note reached TC-03 through the county (store and forward);");
    output::line(
        "   TC-01's referral stayed with TC-01 and the county: TC-02 and TC-03 are not in its audience.",
    );

    let s = members[0].status().await?;
    for p in &s.network.sync {
        output::line(format_args!(
            "   county <-> {}: {} docs out, {} in, {} bytes out, {} in",
            p.facility, p.docs_sent, p.docs_received, p.bytes_sent, p.bytes_received
        ));
    }
    for m in &mut members {
        m.stop().await?;
    }
    if args.keep {
        let kept = tmp.keep();
        output::line(format_args!(
            "kept the alliance directory: {}",
            kept.display()
        ));
    } else {
        output::line("6. nodes stopped; temporary directory removed");
    }
    output::line(format_args!(
        "demo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
