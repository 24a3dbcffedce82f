//! Control protocol messages (version [`PROTOCOL_VERSION`]). Adding a request or response
//! variant at the end is compatible; changing one bumps the version.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::FacilityConfig;
use crate::documents::catalog::{CatalogEntry, ImportReport, StockRow};
use crate::documents::dispensing::{DispensingLine, DispensingReport, Summary};
use crate::documents::outreach::{LectureInput, Outreach, OutreachInput, VisitInput};
use crate::documents::referral::{
    ActInput, Derived, Direction, Referral, ReferralInput, Status, Urgency,
};
use crate::documents::result::{
    QcCert, QcInput, Recognition, ResultInput, RetestReason, TestResult,
};
use crate::documents::{DocInfo, DocKind};
use crate::identity::cert::Role;
use crate::ids::{DocId, FacilityCode, NodeId};
use crate::reports::{Report, ReportKind};
use crate::storage::StoreStats;
use crate::sync::PeerSyncStatus;
use crate::transport::{PeerIdentity, PeerStatus};

/// The control protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest control frame, in bytes (an import carries a whole document).
pub const MAX_FRAME: usize = crate::storage::MAX_DOC_BYTES + 64 * 1024;

/// How long a connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long one frame may take to arrive once it has started.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// What the operator asks of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Identity, uptime and store figures.
    Status,
    /// Documents, optionally of one kind.
    DocList {
        /// Only this kind.
        kind: Option<DocKind>,
        /// Also read each document's title (loads every document listed).
        titles: bool,
    },
    /// One document as JSON with its metadata.
    DocShow {
        /// A document id or unique prefix.
        id: String,
    },
    /// One document's raw Automerge bytes.
    DocExport {
        /// A document id or unique prefix.
        id: String,
    },
    /// Store raw Automerge bytes as a new document.
    DocImport {
        /// The bytes.
        bytes: Vec<u8>,
        /// Its kind.
        kind: DocKind,
        /// Who may hold it (this facility is always added).
        audience: Vec<FacilityCode>,
    },
    /// Create a note.
    NoteAdd {
        /// Title.
        title: String,
        /// First entry, if any.
        text: Option<String>,
        /// Who may hold it (this facility is always added).
        audience: Vec<FacilityCode>,
    },
    /// Append an entry to a note.
    NoteAppend {
        /// A note id or unique prefix.
        id: String,
        /// The entry.
        text: String,
    },
    /// Configured and connected peers.
    PeerList,
    /// Dial a peer (and remember it in the configuration).
    PeerAdd {
        /// `HOST:PORT`.
        addr: String,
    },
    /// Stop dialing a peer (and forget it).
    PeerRemove {
        /// `HOST:PORT`.
        addr: String,
    },
    /// Install a newer revocation list (PEM) and drop revoked peers.
    CrlInstall {
        /// The list, PEM.
        pem: String,
    },
    /// Create a referral from this facility.
    ReferralCreate {
        /// What the sender filled in.
        input: Box<ReferralInput>,
    },
    /// Record a decision on a referral.
    ReferralAct {
        /// Referral document id or unique prefix.
        id: String,
        /// The decision.
        act: ActInput,
    },
    /// Append a note to a referral.
    ReferralNote {
        /// Referral document id or unique prefix.
        id: String,
        /// The note.
        text: String,
    },
    /// Referrals, filtered.
    ReferralList {
        /// Only this status.
        status: Option<Status>,
        /// Only this direction.
        direction: Option<Direction>,
        /// Only referrals that need reconciliation.
        conflicts_only: bool,
    },
    /// One referral with its derived status.
    ReferralShow {
        /// Referral document id or unique prefix.
        id: String,
    },
    /// Record a result performed at this facility.
    ResultAdd {
        /// The result.
        input: Box<ResultInput>,
        /// Who may hold it; empty: every facility of the alliance.
        audience: Vec<FacilityCode>,
    },
    /// Record a corrected version of a result (the old one is kept and marked superseded).
    ResultCorrect {
        /// The result corrected.
        id: String,
        /// The corrected result.
        input: Box<ResultInput>,
    },
    /// Record a re-test decision with its reason.
    ResultRetest {
        /// The result not recognised.
        id: String,
        /// Coded reason.
        reason: RetestReason,
        /// Free text (required for `other`).
        text: Option<String>,
    },
    /// Whether a result is recognised on a day (default today), and why.
    ResultCheck {
        /// The result.
        id: String,
        /// `YYYY-MM-DD`.
        on: Option<String>,
    },
    /// One result.
    ResultShow {
        /// The result.
        id: String,
    },
    /// Every result.
    ResultList,
    /// Record a facility's quality-control certification (county hospital or `qc` role).
    QcAdd {
        /// The certification.
        input: Box<QcInput>,
    },
    /// Every certification.
    QcList,
    /// The facilities of the alliance this node has met.
    FacilityList,
    /// Import a catalog CSV file (pharmacy role); nothing is written when a row is rejected.
    CatalogImport {
        /// The file's bytes (UTF-8, UTF-8 with BOM, GBK or UTF-16).
        bytes: Vec<u8>,
        /// Report only; write nothing.
        dry_run: bool,
    },
    /// Catalog entries, filtered, with this facility's stock row.
    CatalogList {
        /// Only essential medicines.
        essential_only: bool,
        /// Only entries whose code, generic name or manufacturer contains this text.
        search: Option<String>,
        /// Include withdrawn entries.
        include_withdrawn: bool,
    },
    /// One entry with every facility's stock row.
    CatalogShow {
        /// Drug code.
        code: String,
    },
    /// Write this facility's stock row for a drug.
    StockSet {
        /// Drug code.
        code: String,
        /// The facility whose row it is (default: this one; any other is refused).
        facility: Option<FacilityCode>,
        /// Can be dispensed now.
        available: bool,
        /// Units on hand.
        quantity: Option<u64>,
    },
    /// Record one dispensing total for a month.
    DispensingAdd {
        /// The row.
        line: DispensingLine,
    },
    /// Import a dispensing CSV file; nothing is written when a row is rejected.
    DispensingImport {
        /// The file's bytes.
        bytes: Vec<u8>,
        /// Report only; write nothing.
        dry_run: bool,
    },
    /// Dispensing summaries held by this node.
    DispensingList {
        /// Only this month (`YYYY-MM`).
        period: Option<String>,
        /// Only this facility.
        facility: Option<FacilityCode>,
    },
    /// Create an outreach event hosted by this facility.
    OutreachCreate {
        /// The event.
        input: Box<OutreachInput>,
    },
    /// Log a visit at an event.
    OutreachVisit {
        /// Event id or unique prefix.
        id: String,
        /// The visit.
        input: Box<VisitInput>,
    },
    /// Log a lecture at an event.
    OutreachLecture {
        /// Event id or unique prefix.
        id: String,
        /// The lecture.
        input: Box<LectureInput>,
    },
    /// Outreach events.
    OutreachList,
    /// One outreach event with its visits.
    OutreachShow {
        /// Event id or unique prefix.
        id: String,
    },
    /// A report for a period.
    Report {
        /// Which.
        kind: ReportKind,
        /// First day, `YYYY-MM-DD`.
        from: String,
        /// Last day, `YYYY-MM-DD`.
        to: String,
        /// Only this facility.
        facility: Option<FacilityCode>,
    },
}

/// What the node answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Box<StatusReport>),
    /// Answer to [`Request::DocList`].
    Docs(Vec<ListedDoc>),
    /// Answer to [`Request::DocShow`]: metadata and the content as JSON text.
    Doc {
        /// Metadata.
        info: DocInfo,
        /// Content as JSON.
        json: String,
    },
    /// Answer to [`Request::DocExport`].
    Exported {
        /// Metadata.
        info: DocInfo,
        /// Raw Automerge bytes.
        bytes: Vec<u8>,
    },
    /// A write was durably stored.
    Written(DocInfo),
    /// Answer to [`Request::PeerList`], [`Request::PeerAdd`], [`Request::PeerRemove`].
    Peers(Vec<PeerStatus>),
    /// Answer to [`Request::CrlInstall`].
    CrlInstalled {
        /// The list's number.
        number: u64,
        /// Serials it revokes.
        revoked: usize,
        /// Live peers dropped because of it.
        dropped: Vec<PeerIdentity>,
    },
    /// A referral with its derived status.
    Referral(Box<ReferralView>),
    /// Referral summaries, and the referral documents that could not be read.
    Referrals {
        /// The referrals, newest first.
        list: Vec<ReferralSummary>,
        /// Documents of kind referral that are not readable referrals, with the reason.
        unreadable: Vec<Unreadable>,
    },
    /// A result.
    Result(Box<ResultView>),
    /// Results.
    Results(Vec<ResultView>),
    /// A recognition decision.
    Recognition {
        /// The result.
        result: Box<ResultView>,
        /// The decision.
        decision: Recognition,
        /// The day checked.
        on: String,
    },
    /// Certifications.
    QcCerts(Vec<(DocId, QcCert)>),
    /// Facilities met.
    Facilities(Vec<crate::storage::FacilityEntry>),
    /// What a catalog import did or would do.
    CatalogImported(Box<ImportReport>),
    /// Catalog entries.
    CatalogEntries(Vec<CatalogLine>),
    /// One entry with the stock rows of every facility.
    CatalogItem {
        /// The entry.
        entry: Box<CatalogEntry>,
        /// Stock rows by facility.
        stock: Vec<(String, StockRow)>,
    },
    /// What a dispensing import did or would do.
    DispensingImported(Box<DispensingReport>),
    /// Dispensing summaries.
    Dispensing(Vec<Summary>),
    /// An outreach event.
    Outreach(Box<OutreachView>),
    /// Outreach events.
    OutreachEvents(Vec<OutreachSummary>),
    /// A report.
    Report(Box<Report>),
    /// The request failed; nothing was changed.
    Error {
        /// Class of failure.
        kind: ErrorKind,
        /// What went wrong, for a person.
        message: String,
    },
}

/// Classes of failure, so the CLI can choose an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request named something that does not exist.
    NotFound,
    /// The request's content was invalid.
    InvalidInput,
    /// The store failed (disk full, I/O); nothing was stored.
    Storage,
    /// The message itself was malformed, too large or of another version.
    Protocol,
    /// The node is shutting down.
    Unavailable,
}

/// Answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// yilian version of the node.
    pub version: String,
    /// The node id.
    pub node_id: NodeId,
    /// The facility it serves.
    pub facility: FacilityConfig,
    /// Seconds since the node started; `None` when read offline from the files.
    pub uptime_secs: Option<u64>,
    /// Store figures.
    pub store: StoreStats,
    /// The node's certificate; `None` until the node is enrolled.
    pub identity: Option<IdentityReport>,
    /// Networking.
    pub network: NetworkReport,
}

/// The node's certificate, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityReport {
    /// The alliance.
    pub alliance: String,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Certificate serial (hex).
    pub serial: String,
    /// Valid from (seconds since the Unix epoch).
    pub not_before: i64,
    /// Valid until (seconds since the Unix epoch).
    pub not_after: i64,
    /// Whole days left (negative once expired).
    pub expires_in_days: i64,
    /// A warning for the operator (expiry soon, expired, clock suspicious).
    pub warning: Option<String>,
}

/// Networking, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Whether the node is on the network.
    pub enabled: bool,
    /// Why not, if not.
    pub disabled_reason: Option<String>,
    /// The bound UDP address.
    pub listen: Option<std::net::SocketAddr>,
    /// Peers.
    pub peers: Vec<PeerStatus>,
    /// Sync figures per peer.
    pub sync: Vec<PeerSyncStatus>,
}

/// A referral as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralView {
    /// Document metadata.
    pub info: DocInfo,
    /// The referral.
    pub referral: Referral,
    /// Its derived status and conflicts.
    pub derived: Derived,
}

/// A result as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultView {
    /// Document metadata.
    pub info: DocInfo,
    /// The result.
    pub result: TestResult,
    /// The correction that supersedes it, if any.
    pub superseded_by: Option<DocId>,
}

/// One line of a referral list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralSummary {
    /// Document id.
    pub id: DocId,
    /// Referral number.
    pub number: String,
    /// Up or down.
    pub direction: Direction,
    /// Sending facility.
    pub from: String,
    /// Receiving facility.
    pub to: String,
    /// Patient name (shown to operators, never logged).
    pub patient: String,
    /// Routine or green channel.
    pub urgency: Urgency,
    /// Derived status.
    pub status: Status,
    /// Appointment slot, if accepted.
    pub slot: Option<String>,
    /// Contradictory acts wait for reconciliation.
    pub needs_reconciliation: bool,
    /// Created (ms since the Unix epoch).
    pub created_ms: u64,
    /// Last changed on this node (ms since the Unix epoch).
    pub updated_ms: u64,
}

/// A document in a list: its metadata and, when asked for, its title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedDoc {
    /// Metadata.
    pub info: DocInfo,
    /// What people call it (see [`crate::documents::title`]); None when not asked for or
    /// when its kind has none.
    pub title: Option<String>,
}

/// A document that could not be read as its kind says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The document.
    pub id: DocId,
    /// Why.
    pub reason: String,
}

/// A catalog entry with this facility's stock row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogLine {
    /// The entry.
    pub entry: CatalogEntry,
    /// This facility's stock row, if written.
    pub stock: Option<StockRow>,
}

/// An outreach event as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutreachView {
    /// Document metadata.
    pub info: DocInfo,
    /// The event.
    pub event: Outreach,
    /// The key of the record just added, if any.
    pub added: Option<String>,
}

/// One line of an outreach list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutreachSummary {
    /// Document id.
    pub id: DocId,
    /// Event number.
    pub number: String,
    /// Title.
    pub title: String,
    /// Host facility.
    pub host: String,
    /// Township visited.
    pub township: String,
    /// First day.
    pub start: String,
    /// Last day.
    pub end: String,
    /// Visits logged.
    pub visits: usize,
    /// Lectures logged.
    pub lectures: usize,
    /// Visits a day expected.
    pub target_per_day: u32,
}

/// Encodes a message with its version prefix.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = PROTOCOL_VERSION.to_be_bytes().to_vec();
    // Serialising our own message types into a Vec cannot fail.
    out.extend(postcard::to_allocvec(msg).unwrap_or_default());
    out
}

/// Decodes a message, checking its version prefix. The error names what was wrong.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> Result<T, String> {
    let Some((v, body)) = frame.split_first_chunk::<2>() else {
        return Err(format!(
            "message of {} bytes is too short to carry a version",
            frame.len()
        ));
    };
    let v = u16::from_be_bytes(*v);
    if v != PROTOCOL_VERSION {
        return Err(format!(
            "control protocol version {v} is not supported (this build speaks {PROTOCOL_VERSION})"
        ));
    }
    postcard::from_bytes(body).map_err(|e| format!("malformed message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bad_frames_are_named() {
        let req = Request::NoteAppend {
            id: "abcd".into(),
            text: "入院".into(),
        };
        assert_eq!(decode::<Request>(&encode(&req)).unwrap(), req);
        assert!(decode::<Request>(&[0]).unwrap_err().contains("too short"));
        let mut other = encode(&req);
        other[1] = 9;
        assert!(decode::<Request>(&other).unwrap_err().contains("version 9"));
        assert!(
            decode::<Request>(&[0, 1, 250, 250, 250])
                .unwrap_err()
                .contains("malformed")
        );
    }
}
