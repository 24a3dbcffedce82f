//! The command line: every command, option and its validation. The larger command groups'
//! arguments have modules of their own; `commands/` reads these types, never the reverse.

mod catalog;
mod outreach;
mod report;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use yilian_node::config::{FacilityKind, ZoneName};
use yilian_node::documents::DocKind;
use yilian_node::documents::referral::{Direction, Status, Urgency};
use yilian_node::documents::result::{ItemClass, RetestReason};
use yilian_node::identity::cert::Role;
use yilian_node::ids::{FacilityCode, NodeId};

pub(crate) use catalog::{CatalogCommand, DispensingCommand, StockCommand};
pub(crate) use outreach::{LectureCommand, OutreachCommand, VisitCommand};
pub(crate) use report::{Format, ReportCommand};

/// yilian: offline-first sync node for a county medical alliance (县域医共体).
#[derive(Debug, Parser)]
#[command(name = "yilian", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// The node's data directory.
    #[arg(long, global = true, env = "YILIAN_DIR", value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a node's data directory: configuration, key pair and an empty store.
    Init(InitArgs),
    /// Run the node.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Show the node's identity, uptime and store figures.
    Status(JsonFlag),
    /// Generic document commands.
    #[command(subcommand)]
    Doc(DocCommand),
    /// Alliance notes and notices.
    #[command(subcommand)]
    Note(NoteCommand),
    /// The alliance certificate authority (kept offline by county IT).
    #[command(subcommand)]
    Ca(CaCommand),
    /// Join the alliance: request a certificate, install the CA's bundle.
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// The alliance's certificate revocation list.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Peers this node dials, and their connection state.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Two-way referrals (双向转诊).
    #[command(subcommand)]
    Referral(ReferralCommand),
    /// Lab and imaging results and their mutual recognition (检查检验结果互认).
    #[command(subcommand)]
    Result(ResultCommand),
    /// Quality-control certifications of facilities.
    #[command(subcommand)]
    Qc(QcCommand),
    /// Facilities of the alliance this node has met.
    #[command(subcommand)]
    Facility(FacilityCommand),
    /// The county drug catalog (统一县域药品目录) and this facility's stock.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Dispensing summaries for essential-medicine usage rates.
    #[command(subcommand)]
    Dispensing(DispensingCommand),
    /// Outreach free clinics (义诊): events, visits, lectures.
    #[command(subcommand)]
    Outreach(OutreachCommand),
    /// Reports for the health commission (tables, CSV, JSON, semiannual HTML).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Sync with peers: wait until caught up.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Run a small simulated alliance on loopback and show what it does.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The facility code, unique in the alliance (e.g. CH-01, TC-03).
    #[arg(long)]
    pub(crate) facility: FacilityCode,
    /// The facility's name.
    #[arg(long)]
    pub(crate) name: String,
    /// The facility kind.
    #[arg(long, value_parser = parse_kind)]
    pub(crate) kind: FacilityKind,
    /// UDP address to listen on for peers.
    #[arg(long, default_value = "0.0.0.0:7400")]
    pub(crate) listen: std::net::SocketAddr,
    /// The facility's time zone, an IANA name such as Asia/Shanghai (default: the system's,
    /// looked up at every start).
    #[arg(long, value_name = "ZONE")]
    pub(crate) time_zone: Option<ZoneName>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create the alliance CA in the directory given by --dir.
    Init {
        /// The alliance's name (e.g. "某某县医共体").
        #[arg(long)]
        alliance: String,
    },
    /// Sign a node's enrollment request into a bundle for it.
    Issue {
        /// The CA directory.
        #[arg(long, value_name = "CADIR")]
        ca: PathBuf,
        /// The node's request file (from `yilian enroll request`).
        #[arg(long)]
        request: PathBuf,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
        /// Roles to grant, comma-separated (pharmacy, qc).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
        /// Validity in days.
        #[arg(long, default_value_t = yilian_node::identity::ca::DEFAULT_NODE_DAYS, value_parser = clap::value_parser!(u32).range(1..=7300))]
        valid_days: u32,
    },
    /// Revoke every certificate of a node and write a newer revocation list.
    Revoke {
        /// The CA directory.
        #[arg(long, value_name = "CADIR")]
        ca: PathBuf,
        /// The node id to revoke.
        #[arg(long)]
        node: NodeId,
    },
    /// Certificates this CA issued.
    List {
        /// The CA directory.
        #[arg(long, value_name = "CADIR")]
        ca: PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnrollCommand {
    /// Write this node's enrollment request, to be signed by county IT.
    Request {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Install the bundle county IT sent back (only while the node is stopped).
    Install {
        /// The bundle file.
        bundle: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CrlCommand {
    /// Install a newer revocation list; a running node drops revoked peers at once.
    Install {
        /// The list (crl.pem from the CA directory).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// Dial a peer and remember it.
    Add {
        /// The peer's `HOST:PORT`.
        #[arg(long)]
        addr: String,
    },
    /// Stop dialing a peer and forget it.
    Remove {
        /// The peer's `HOST:PORT`.
        #[arg(long)]
        addr: String,
    },
    /// Configured and connected peers with their state.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn parse_kind(s: &str) -> Result<FacilityKind, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node in the foreground until SIGINT or SIGTERM (logs to stderr; RUST_LOG).
    Run,
}

#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DocCommand {
    /// List documents.
    List {
        /// Only documents of this kind.
        #[arg(long)]
        kind: Option<DocKind>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one document as JSON with its heads.
    Show {
        /// Document id or a unique prefix (at least 4 characters).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Write a document's raw Automerge bytes to a file.
    Export {
        /// Document id or a unique prefix.
        id: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Store raw Automerge bytes from a file as a new document.
    Import {
        /// The file to read.
        file: PathBuf,
        /// The document kind.
        #[arg(long)]
        kind: DocKind,
        /// Facilities allowed to hold it, comma-separated (this facility is always added).
        #[arg(long, value_delimiter = ',', value_name = "CODE,...")]
        audience: Vec<FacilityCode>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NoteCommand {
    /// Post a new note.
    Add {
        /// Title.
        #[arg(long)]
        title: String,
        /// First entry.
        #[arg(long)]
        text: Option<String>,
        /// Facilities allowed to hold it, comma-separated (this facility is always added).
        #[arg(long, value_delimiter = ',', value_name = "CODE,...")]
        audience: Vec<FacilityCode>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Append an entry to a note.
    Append {
        /// Note id or a unique prefix.
        id: String,
        /// The entry.
        #[arg(long)]
        text: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ReferralCreateArgs {
    /// Receiving facility code (the county hospital for an upward referral).
    #[arg(long)]
    pub(crate) to: String,
    /// Receiving department.
    #[arg(long)]
    pub(crate) to_department: String,
    /// Sending department.
    #[arg(long)]
    pub(crate) from_department: String,
    /// up or down (default: from this facility's kind).
    #[arg(long, value_parser = parse_direction)]
    pub(crate) direction: Option<Direction>,
    /// Patient name.
    #[arg(long)]
    pub(crate) patient_name: String,
    /// M, F or U.
    #[arg(long)]
    pub(crate) sex: String,
    /// YYYY-MM-DD.
    #[arg(long)]
    pub(crate) birth_date: String,
    /// Resident identity card number (checked: GB 11643).
    #[arg(long)]
    pub(crate) id_number: Option<String>,
    /// Medical record number.
    #[arg(long)]
    pub(crate) record_number: Option<String>,
    /// Insurance card number.
    #[arg(long)]
    pub(crate) insurance_card: Option<String>,
    /// Known allergies.
    #[arg(long)]
    pub(crate) allergies: Option<String>,
    /// History and reason for transfer.
    #[arg(long)]
    pub(crate) reason: String,
    /// Working diagnosis, ICD-10 code (e.g. K35.800).
    #[arg(long)]
    pub(crate) icd10: String,
    /// Working diagnosis, text.
    #[arg(long)]
    pub(crate) diagnosis: String,
    /// routine or green-channel.
    #[arg(long, default_value = "routine", value_parser = parse_urgency)]
    pub(crate) urgency: Urgency,
    /// Treatment so far.
    #[arg(long)]
    pub(crate) treatment: String,
    /// Linked result document ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) results: Vec<String>,
    /// Downward: care and rehabilitation plan.
    #[arg(long)]
    pub(crate) care_plan: Option<String>,
    /// Downward: follow-up instructions.
    #[arg(long)]
    pub(crate) follow_up: Option<String>,
    /// Referring doctor.
    #[arg(long)]
    pub(crate) doctor: String,
    /// Referring doctor's phone.
    #[arg(long)]
    pub(crate) phone: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonFlag,
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    match s {
        "up" => Ok(Direction::Up),
        "down" => Ok(Direction::Down),
        _ => Err("use up or down".into()),
    }
}

fn parse_urgency(s: &str) -> Result<Urgency, String> {
    match s {
        "routine" => Ok(Urgency::Routine),
        "green-channel" => Ok(Urgency::GreenChannel),
        _ => Err("use routine or green-channel".into()),
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReferralCommand {
    /// Send a patient to another facility.
    Create(Box<ReferralCreateArgs>),
    /// Receiving facility: accept with an appointment slot.
    Accept {
        /// Referral id or unique prefix.
        id: String,
        /// Appointment slot, YYYY-MM-DDTHH:MM.
        #[arg(long)]
        slot: String,
        /// Receiving department.
        #[arg(long)]
        department: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Receiving facility: reject with a reason.
    Reject {
        /// Referral id or unique prefix.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Receiving facility: the patient arrived.
    Arrive {
        /// Referral id or unique prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Receiving facility: treatment complete.
    Complete {
        /// Referral id or unique prefix.
        id: String,
        /// Outcome (admitted, treated, discharged ...).
        #[arg(long)]
        outcome: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Sending facility: cancel before arrival.
    Cancel {
        /// Referral id or unique prefix.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Either side: add a note.
    Note {
        /// Referral id or unique prefix.
        id: String,
        /// The note.
        #[arg(long)]
        text: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Referrals, newest first.
    List {
        /// Only this status (requested, accepted, rejected, arrived, completed, cancelled).
        #[arg(long)]
        status: Option<Status>,
        /// Only up or down.
        #[arg(long, value_parser = parse_direction)]
        direction: Option<Direction>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One referral: request, acts, status, conflicts.
    Show {
        /// Referral id or unique prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Referrals whose offline acts contradict each other, with every act shown.
    Conflicts {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Export as HL7 FHIR R4 JSON (Bundle: Patient, ServiceRequest, Task) or as yilian JSON.
    Export {
        /// Referral id or unique prefix.
        id: String,
        /// fhir or json.
        #[arg(long, default_value = "fhir")]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Receiving facility or county hospital: settle a conflict by keeping one act.
    Resolve {
        /// Referral id or unique prefix.
        id: String,
        /// Id (or unique prefix) of the act to keep.
        #[arg(long)]
        keep: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    /// Patient name.
    #[arg(long)]
    pub(crate) patient_name: String,
    /// M, F or U.
    #[arg(long)]
    pub(crate) sex: String,
    /// YYYY-MM-DD.
    #[arg(long)]
    pub(crate) birth_date: String,
    /// Resident identity card number.
    #[arg(long)]
    pub(crate) id_number: Option<String>,
    /// Item code (WS/T 886 8-character code, LOINC, or local).
    #[arg(long)]
    pub(crate) item_code: String,
    /// ws-t-886, loinc or local.
    #[arg(long, default_value = "ws-t-886")]
    pub(crate) item_system: String,
    /// Item name.
    #[arg(long)]
    pub(crate) item_name: String,
    /// lab or imaging.
    #[arg(long)]
    pub(crate) class: ItemClass,
    /// Value.
    #[arg(long)]
    pub(crate) value: Option<String>,
    /// Unit.
    #[arg(long)]
    pub(crate) unit: Option<String>,
    /// Report text (imaging findings).
    #[arg(long)]
    pub(crate) text: Option<String>,
    /// Reference range.
    #[arg(long)]
    pub(crate) reference_range: Option<String>,
    /// Abnormal flag (H, L, A, N).
    #[arg(long)]
    pub(crate) abnormal: Option<String>,
    /// Specimen or exam time, YYYY-MM-DDTHH:MM.
    #[arg(long)]
    pub(crate) taken_at: String,
    /// Reporting clinician.
    #[arg(long)]
    pub(crate) clinician: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ResultCommand {
    /// Record a result performed at this facility.
    Add {
        #[command(flatten)]
        result: Box<ResultArgs>,
        /// Facilities allowed to hold it (default: every facility of the alliance, *).
        #[arg(long, value_delimiter = ',', value_name = "CODE,...")]
        audience: Vec<FacilityCode>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Record a corrected version; the old result is kept and marked superseded.
    Correct {
        /// The result corrected.
        id: String,
        #[command(flatten)]
        result: Box<ResultArgs>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Whether a result is recognised (certification on the test day, validity window), and why.
    Check {
        /// The result.
        id: String,
        /// Day of the check, YYYY-MM-DD (default today).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Record that a doctor re-tests instead of recognising, and why.
    Retest {
        /// The result.
        id: String,
        /// condition-changed, fast-changing, critical, emergency, forensic, patient-request,
        /// lab-failed-qa, too-old or other.
        #[arg(long)]
        reason: RetestReason,
        /// Free text (required for other).
        #[arg(long)]
        text: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One result.
    Show {
        /// The result.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Export as HL7 FHIR R4 JSON (Bundle: Patient, Observation, DiagnosticReport) or yilian JSON.
    Export {
        /// The result.
        id: String,
        /// fhir or json.
        #[arg(long, default_value = "fhir")]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every result, newest first.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum QcCommand {
    /// Record a facility's certification (county hospital or a node with the qc role).
    Add {
        /// Certificate number.
        #[arg(long)]
        number: String,
        /// Certified facility.
        #[arg(long)]
        facility: String,
        /// Item codes covered, comma-separated.
        #[arg(long, value_delimiter = ',')]
        items: Vec<String>,
        /// Item classes covered entirely (lab, imaging), comma-separated.
        #[arg(long, value_delimiter = ',')]
        classes: Vec<ItemClass>,
        /// Issuing body.
        #[arg(long)]
        issuer: String,
        /// province or city.
        #[arg(long)]
        level: String,
        /// First valid day, YYYY-MM-DD.
        #[arg(long)]
        valid_from: String,
        /// Last valid day, YYYY-MM-DD.
        #[arg(long)]
        valid_to: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Every certification known here.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum FacilityCommand {
    /// Every facility met through an authenticated peer (referral targets are checked against it).
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// HL7 FHIR R4 JSON.
    Fhir,
    /// yilian's own JSON (as `show --json`).
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SyncCommand {
    /// Block until this node and its peers have exchanged everything, showing progress.
    Wait {
        /// Only this peer (facility code or node id prefix); default: every configured peer.
        #[arg(long)]
        peer: Option<String>,
        /// Give up after this many seconds (exit code 6).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the demo's data directory instead of deleting it.
    #[arg(long)]
    pub(crate) keep: bool,
}
