//! `yilian outreach ...`: free-clinic events (义诊), their visits and lectures.

use std::path::Path;

use anyhow::{Result, bail};
use yilian_node::control::proto::OutreachView;
use yilian_node::control::{Request, Response};
use yilian_node::documents::outreach::{LectureInput, OutreachInput, VisitInput};

use crate::cli::{LectureCommand, OutreachCommand, VisitCommand};
use crate::connect::one;
use crate::output;

fn print(v: &OutreachView, visits: bool) {
    let e = &v.event;
    output::line(format_args!(
        "{} {} — {} visits {} ({} to {}, {} days)",
        e.number,
        e.title,
        e.host,
        e.township,
        e.start,
        e.end,
        e.days()
    ));
    output::line(format_args!("id {}", v.info.id));
    let mut team = output::table(&["member", "title", "grade", "department"]);
    for m in &e.team {
        team.add_row(vec![
            m.name.clone(),
            m.title_text.clone(),
            m.title.as_str().to_string(),
            m.department.clone(),
        ]);
    }
    output::line(team);
    let below = e.below_mid_level();
    if !below.is_empty() {
        let names: Vec<&str> = below.iter().map(|m| m.name.as_str()).collect();
        output::line(format_args!(
            "note: {} below the mid-level title the policy asks for",
            names.join(", ")
        ));
    }
    let mut days = output::table(&["day", "visits", "target", "met"]);
    let by_day = e.visits_by_day();
    let mut d = e.start.parse::<jiff::civil::Date>().ok();
    while let Some(day) = d.filter(|x| x.to_string() <= e.end) {
        let n = by_day.get(&day.to_string()).copied().unwrap_or(0);
        days.add_row(vec![
            day.to_string(),
            n.to_string(),
            e.target_per_day.to_string(),
            output::yes(n as u32 >= e.target_per_day).to_string(),
        ]);
        d = day.tomorrow().ok();
    }
    output::line(days);
    output::line(format_args!(
        "{} visits, {} referrals, {} lectures ({} attending)",
        e.visits.len(),
        e.visits.values().filter(|v| v.referral.is_some()).count(),
        e.lectures.len(),
        e.lectures.values().map(|l| l.attendees).sum::<u32>()
    ));
    if visits {
        let mut t = output::table(&["at", "sex", "age", "complaint", "screening", "advice", "by"]);
        let mut list: Vec<_> = e.visits.values().collect();
        list.sort_by(|a, b| a.at.cmp(&b.at));
        for v in list {
            t.add_row(vec![
                v.at.clone(),
                v.patient.sex.clone(),
                v.patient.age_band.clone(),
                v.complaint.clone(),
                v.screenings
                    .iter()
                    .map(|s| format!("{}={}", s.item, s.value))
                    .collect::<Vec<_>>()
                    .join(" "),
                v.advice.clone(),
                v.by.clone(),
            ]);
        }
        output::line(t);
    }
}

fn view_json(v: &OutreachView) -> serde_json::Value {
    serde_json::json!({
        "id": v.info.id.to_string(),
        "heads": v.info.heads_hex(),
        "added": v.added,
        "event": v.event,
        "visits_by_day": v.event.visits_by_day(),
    })
}

pub(crate) async fn run(dir: &Path, cmd: OutreachCommand) -> Result<()> {
    let (req, json, visits) = match cmd {
        OutreachCommand::Create(a) => {
            let a = *a;
            (
                Request::OutreachCreate {
                    input: Box::new(OutreachInput {
                        title: a.title,
                        township: a.township,
                        start: a.start,
                        end: a.end,
                        team: a.members,
                        services: a.services,
                        target_per_day: a.target_per_day,
                    }),
                },
                a.json.json,
                false,
            )
        }
        OutreachCommand::Visit(VisitCommand::Add(a)) => {
            let a = *a;
            (
                Request::OutreachVisit {
                    id: a.event,
                    input: Box::new(VisitInput {
                        at: a.at,
                        name: a.name,
                        sex: a.sex,
                        age_band: a.age_band,
                        complaint: a.complaint,
                        screenings: a.screenings,
                        advice: a.advice,
                        referral: a.referral,
                    }),
                },
                a.json.json,
                false,
            )
        }
        OutreachCommand::Lecture(LectureCommand::Add {
            event,
            at,
            topic,
            speaker,
            attendees,
            json,
        }) => (
            Request::OutreachLecture {
                id: event,
                input: Box::new(LectureInput {
                    at,
                    topic,
                    speaker,
                    attendees,
                }),
            },
            json.json,
            false,
        ),
        OutreachCommand::Show {
            event,
            visits,
            json,
        } => (Request::OutreachShow { id: event }, json.json, visits),
        OutreachCommand::List { json } => (Request::OutreachList, json.json, false),
    };
    match one(dir, req).await? {
        Response::Outreach(v) if json => output::json_timed(&view_json(&v)),
        Response::Outreach(v) => {
            if let Some(k) = &v.added {
                output::line(format_args!("logged {k}"));
            }
            print(&v, visits);
            Ok(())
        }
        Response::OutreachEvents(list) if json => output::json(&list),
        Response::OutreachEvents(list) => {
            let mut t = output::table(&[
                "id", "number", "title", "host", "township", "start", "end", "visits", "lectures",
            ]);
            for e in &list {
                t.add_row(vec![
                    e.id.to_string()[..8].to_string(),
                    e.number.clone(),
                    e.title.clone(),
                    e.host.clone(),
                    e.township.clone(),
                    e.start.clone(),
                    e.end.clone(),
                    e.visits.to_string(),
                    e.lectures.to_string(),
                ]);
            }
            output::line(t);
            Ok(())
        }
        _ => bail!("unexpected answer from the node"),
    }
}
