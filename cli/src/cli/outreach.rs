//! Arguments of `yilian outreach ...`.

use clap::{Args, Subcommand};
use yilian_node::documents::outreach::{self, Member, ServiceKind};

use super::JsonFlag;

#[derive(Debug, Subcommand)]
pub(crate) enum OutreachCommand {
    /// Create an event hosted by this facility.
    Create(Box<CreateArgs>),
    /// Visits at an event.
    #[command(subcommand)]
    Visit(VisitCommand),
    /// Health lectures at an event.
    #[command(subcommand)]
    Lecture(LectureCommand),
    /// Events, newest first.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One event: team, visits per day against the target, lectures.
    Show {
        /// Event id or unique prefix.
        event: String,
        /// Also list every visit.
        #[arg(long)]
        visits: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Title (e.g. 高血压糖尿病义诊).
    #[arg(long)]
    pub(crate) title: String,
    /// Township center visited (facility code).
    #[arg(long)]
    pub(crate) township: String,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) start: String,
    /// Last day (default: the first).
    #[arg(long)]
    pub(crate) end: Option<String>,
    /// A team member as NAME,TITLE,DEPARTMENT (e.g. 李明,主治医师,心内科); repeat per member.
    #[arg(long = "member", required = true, value_parser = parse_member)]
    pub(crate) members: Vec<Member>,
    /// Planned services: consultation, screening, lecture, medicine, follow-up (repeatable).
    #[arg(long = "service")]
    pub(crate) services: Vec<ServiceKind>,
    /// Visits a day expected (default 100).
    #[arg(long)]
    pub(crate) target_per_day: Option<u32>,
    #[command(flatten)]
    pub(crate) json: JsonFlag,
}

fn parse_member(s: &str) -> Result<Member, String> {
    outreach::parse_member(s)
}

#[derive(Debug, Subcommand)]
pub(crate) enum VisitCommand {
    /// Log a visit (works offline; devices merge when they meet).
    Add(Box<VisitArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct VisitArgs {
    /// Event id or unique prefix.
    pub(crate) event: String,
    /// When, YYYY-MM-DDTHH:MM.
    #[arg(long)]
    pub(crate) at: String,
    /// M, F or U.
    #[arg(long)]
    pub(crate) sex: String,
    /// Age band, e.g. 60-69 or 80+.
    #[arg(long)]
    pub(crate) age_band: String,
    /// The patient's name, only if they give it (visits may be anonymous).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Chief complaint.
    #[arg(long)]
    pub(crate) complaint: String,
    /// A screening result ITEM=VALUE (e.g. 血压=150/95); repeatable.
    #[arg(long = "screening")]
    pub(crate) screenings: Vec<String>,
    /// Advice given.
    #[arg(long)]
    pub(crate) advice: String,
    /// A referral created for this patient (`yilian referral create`), id or prefix.
    #[arg(long)]
    pub(crate) referral: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LectureCommand {
    /// Log a health lecture.
    Add {
        /// Event id or unique prefix.
        event: String,
        /// When, YYYY-MM-DDTHH:MM.
        #[arg(long)]
        at: String,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Speaker.
        #[arg(long)]
        speaker: String,
        /// People attending.
        #[arg(long)]
        attendees: u32,
        #[command(flatten)]
        json: JsonFlag,
    },
}
