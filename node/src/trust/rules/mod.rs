//! Who may write what, per document kind: pure functions of the verified header
//! ([`DocFacts`]), the signer's certificate claims ([`SignerClaims`]) and the touches of one
//! change ([`Touch`], from the [`super::shadow::Shadow`]). They depend on nothing else — never
//! on the receiver's clock or configuration — so every node, relays included, decides the same
//! way for the same change. [`check_creation`] says who may create a document of a kind with
//! given parties (the signed header); [`check_change`] judges one change.
//!
//! The rules follow the rights table of the trust design (`trust-design.md` §5) adapted to the
//! schemas in `documents/`:
//!
//! | kind | part | who may write |
//! | --- | --- | --- |
//! | referral | everything outside `acts` and `notes` (`schema`, `request`) | the sending facility; `request.from.facility` / `request.to.facility` must name the header's parties |
//! | referral | `acts`: a new act | either party or a county hospital; its `kind` by role: receiver accept, reject, arrive, complete, resolve; sender cancel; a county hospital resolve |
//! | referral | `notes`: a new note | either party or a county hospital |
//! | result | everything outside `retests` | the performing facility; `facility` must name it |
//! | result | `retests`: a new re-test | any facility of the audience |
//! | qc-cert | everything | a county hospital or a node with role `qc` |
//! | catalog | everything | a node with role `pharmacy`; an entry's `updated_by` names the signer's facility |
//! | stock | everything | the owning facility (from the well-known name); `facility` must name it |
//! | dispensing | everything | the owning facility; `facility` and `period` must match the name |
//! | outreach | everything outside `visits` and `lectures` | the host; `host` / `township` must name the header's parties |
//! | outreach | `visits`, `lectures`: a new record | the host, the township visited, or a county hospital |
//! | note | everything outside `entries` | the owning (creating) facility |
//! | note | `entries`: a new entry | any facility of the audience |
//!
//! Common to every list or map of records (acts, notes, re-tests, visits, lectures, entries):
//! a record is a map added by its author; once added it is changed (or removed) only by the
//! node that wrote it; the container itself is made only by the document's first change (the
//! `genesis` the signed header names) and never replaced or deleted, since a second container
//! winning the conflict would hide every record in the first. The first change is the creator's. A record's `by` (and `node`/`device`) fields
//! must name its author's facility (and node), so nobody can write in another's name. The
//! revocation list is not a document: it is signed by the alliance CA and checked elsewhere.
//!
//! Versioning: [`RULES_VERSION`] names this set of rules. Nodes on different versions can
//! disagree about a change (one applies what another quarantines); part B records the version
//! beside each verdict.

mod catalog;
mod note;
mod outreach;
mod referral;
mod result;

use std::collections::HashMap;

use automerge::{ActorId, ChangeHash, ScalarValue};

use super::header::{DocFacts, DocHeader, Parties};
use super::shadow::{Action, Step, Touch};
use crate::config::FacilityKind;
use crate::documents::DocKind;
use crate::identity::cert::{IdentityClaims, Role};
use crate::identity::node_of_actor;
use crate::ids::{FacilityCode, NodeId};

/// The version of these rules.
pub(crate) const RULES_VERSION: u32 = 1;

/// What the signer's certificate says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignerClaims {
    /// The node.
    pub(crate) node: NodeId,
    /// Its facility.
    pub(crate) facility: FacilityCode,
    /// The facility's kind.
    pub(crate) kind: FacilityKind,
    /// Roles granted by the alliance CA.
    pub(crate) roles: Vec<Role>,
}

impl SignerClaims {
    /// The claims of a node certificate.
    pub(crate) fn from_identity(c: &IdentityClaims) -> SignerClaims {
        SignerClaims {
            node: c.node,
            facility: c.facility.clone(),
            kind: c.kind,
            roles: c.roles.clone(),
        }
    }

    fn has_role(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }

    fn is_county(&self) -> bool {
        self.kind == FacilityKind::CountyHospital
    }

    fn is(&self, f: &FacilityCode) -> bool {
        &self.facility == f
    }

    /// Whether `actor` is one of this node's actor ids.
    fn wrote(&self, actor: &ActorId) -> bool {
        node_of_actor(actor) == Some(self.node)
    }

    fn name(&self) -> String {
        self.facility.to_string()
    }
}

/// A change or header the rules refuse, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum RuleViolation {
    /// The signer may not write this.
    #[error("only {allowed} may {what}; {signer} signed it")]
    NotAllowed {
        /// What was attempted ("accept this referral").
        what: String,
        /// Who may ("the receiving facility CH-01").
        allowed: String,
        /// The signer's facility.
        signer: String,
    },
    /// A record written by another node.
    #[error(
        "{what} was written by another node ({creator}); {signer} may not change it: a record is changed only by its author"
    )]
    OthersRecord {
        /// Which record.
        what: String,
        /// Its author (node id, or "unknown").
        creator: String,
        /// The signer's facility.
        signer: String,
    },
    /// A field that must hold a given value holds another.
    #[error("{field} must be {expected}, not {got}")]
    WrongValue {
        /// Which field.
        field: String,
        /// What it must be.
        expected: String,
        /// What the change writes.
        got: String,
    },
    /// Something no honest writer produces (a record that is not a map, a container replaced,
    /// a new act without a kind, parties that do not fit the kind).
    #[error("{0}")]
    Malformed(String),
}

/// Whether `creator` may create the document `header` states (kind, audience, parties).
pub(crate) fn check_creation(
    header: &DocHeader,
    creator: &SignerClaims,
) -> Result<(), RuleViolation> {
    let me = &creator.facility;
    let not_allowed = |what: String, allowed: String| RuleViolation::NotAllowed {
        what,
        allowed,
        signer: creator.name(),
    };
    let audience = &header.audience;
    let exactly = |codes: &[&FacilityCode]| {
        audience.0.len() == codes.len() && codes.iter().all(|c| audience.0.contains(*c))
    };
    match (header.kind, &header.parties) {
        (DocKind::Referral, Parties::Referral { from, to }) => {
            if from != me {
                return Err(not_allowed(
                    format!("create a referral sent by {from}"),
                    format!("the sending facility {from}"),
                ));
            }
            if from == to {
                return Err(RuleViolation::Malformed(format!(
                    "a referral from {from} to itself"
                )));
            }
            if !exactly(&[from, to]) {
                return Err(RuleViolation::Malformed(format!(
                    "a referral from {from} to {to} is held by exactly those two facilities, not {}",
                    audience_text(audience)
                )));
            }
        }
        (DocKind::Result, Parties::Result { performer }) => {
            if performer != me {
                return Err(not_allowed(
                    format!("record a result performed by {performer}"),
                    format!("the performing facility {performer}"),
                ));
            }
            if !audience.contains(performer) {
                return Err(RuleViolation::Malformed(format!(
                    "a result is held by its performing facility {performer}, which is not in its audience {}",
                    audience_text(audience)
                )));
            }
        }
        (DocKind::QcCert, Parties::None) => {
            if !(creator.is_county() || creator.has_role(Role::Qc)) {
                return Err(not_allowed(
                    "record a quality-control certification".into(),
                    "a county hospital or a node with the qc role".into(),
                ));
            }
            if !exactly(&[&FacilityCode::everyone()]) {
                return Err(RuleViolation::Malformed(format!(
                    "a quality-control certification is held by every facility (*), not {}",
                    audience_text(audience)
                )));
            }
        }
        (DocKind::Outreach, Parties::Outreach { host, township }) => {
            if host != me {
                return Err(not_allowed(
                    format!("create an outreach event hosted by {host}"),
                    format!("the host {host}"),
                ));
            }
            if host == township {
                return Err(RuleViolation::Malformed(format!(
                    "an outreach event hosted by {host} visiting itself"
                )));
            }
            if !exactly(&[host, township]) {
                return Err(RuleViolation::Malformed(format!(
                    "an outreach event of {host} in {township} is held by exactly those two facilities, not {}",
                    audience_text(audience)
                )));
            }
        }
        (DocKind::Note, Parties::Owner { facility }) => {
            if facility != me {
                return Err(not_allowed(
                    format!("create a note owned by {facility}"),
                    format!("{facility} itself"),
                ));
            }
            if !audience.contains(facility) {
                return Err(RuleViolation::Malformed(format!(
                    "a note of {facility} is held by it, but its audience is {}",
                    audience_text(audience)
                )));
            }
        }
        (DocKind::Catalog | DocKind::Stock | DocKind::Dispensing, _) => {
            return Err(RuleViolation::Malformed(format!(
                "a {} document is well-known (named, not created by one node)",
                header.kind
            )));
        }
        (kind, parties) => {
            return Err(RuleViolation::Malformed(format!(
                "the parties {parties:?} do not fit a {kind} document"
            )));
        }
    }
    Ok(())
}

/// Whether `signer` may make the change `hash`, with these touches, to the document `facts`
/// describes.
pub(crate) fn check_change(
    facts: &DocFacts,
    signer: &SignerClaims,
    hash: &ChangeHash,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    let genesis = facts.genesis == Some(*hash);
    if genesis && facts.creator != Some(signer.node) {
        return Err(RuleViolation::NotAllowed {
            what: "make the document's first change".into(),
            allowed: format!(
                "its creator (node {})",
                facts
                    .creator
                    .map_or_else(|| "unknown".into(), |n| n.to_string())
            ),
            signer: signer.name(),
        });
    }
    match facts.kind {
        DocKind::Referral => referral::check(facts, signer, genesis, touches),
        DocKind::Result => result::check_result(facts, signer, genesis, touches),
        DocKind::QcCert => result::check_qc(signer, touches),
        DocKind::Catalog => catalog::check_catalog(signer, touches),
        DocKind::Stock => catalog::check_stock(facts, signer, touches),
        DocKind::Dispensing => catalog::check_dispensing(facts, signer, touches),
        DocKind::Outreach => outreach::check(facts, signer, genesis, touches),
        DocKind::Note => note::check(facts, signer, genesis, touches),
    }
}

fn audience_text(a: &crate::documents::Audience) -> String {
    let codes: Vec<&str> = a.iter().map(|c| c.as_str()).collect();
    format!("{{{}}}", codes.join(", "))
}

fn parties_misfit(facts: &DocFacts) -> RuleViolation {
    RuleViolation::Malformed(format!(
        "the header's parties {:?} do not fit a {} document",
        facts.parties, facts.kind
    ))
}

/// The text of a string scalar, for messages and comparisons.
fn text_of(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

fn shown(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Wrong values in fields are reported only when nothing worse is found in the change: "only
/// the receiving facility may accept" says more than "the act's `by` is wrong".
#[derive(Default)]
struct Deferred(Option<RuleViolation>);

impl Deferred {
    fn check(&mut self, r: Result<(), RuleViolation>) {
        if self.0.is_none()
            && let Err(e) = r
        {
            self.0 = Some(e);
        }
    }

    fn finish(self) -> Result<(), RuleViolation> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Requires that a write of a field bound to `expected` puts exactly that text. Deleting it is
/// left alone: it cannot put a false name, and Automerge resolves a conflict at a key by
/// deleting the losing values when the winner is put again, which an honest writer does.
fn bound(t: &Touch, field: &str, expected: &str) -> Result<(), RuleViolation> {
    let got = match &t.action {
        Action::Put(v) => {
            if text_of(v) == Some(expected) {
                return Ok(());
            }
            shown(v)
        }
        Action::Delete => return Ok(()),
        Action::Make(_) | Action::InsertMake(_) => "an object".into(),
        Action::Insert(v) => shown(v),
    };
    Err(RuleViolation::WrongValue {
        field: field.into(),
        expected: expected.into(),
        got,
    })
}

/// Whether the touch writes the root key `key` itself.
fn at_root_key(t: &Touch, key: &str) -> bool {
    t.path.len() == 1 && t.path[0].key() == Some(key)
}

/// Whether the touch writes exactly the field at `keys` (map keys from the root).
fn at_keys(t: &Touch, keys: &[&str]) -> bool {
    t.path.len() == keys.len() && t.path.iter().zip(keys).all(|(s, k)| s.key() == Some(*k))
}

/// A list or map of records directly under the root.
pub(super) struct Records {
    /// Its root key.
    key: &'static str,
    /// One record, in words ("an act").
    one: &'static str,
    /// Whether it is a list (else a map under random keys).
    list: bool,
}

/// How a touch relates to a container of records.
enum RecordOp<'t> {
    /// Not under this container.
    Outside,
    /// The container slot itself (made at creation).
    Container,
    /// A new record (map) added by the signer at this slot.
    Added(&'t Step),
    /// The record slot of an existing record, changed by its author.
    Changed,
    /// A field inside a record, written by the record's author (`new`: the record is added in
    /// this same change).
    Field {
        record: &'t Step,
        rest: &'t [Step],
        new: bool,
    },
}

impl Records {
    /// Classifies `t`, refusing what no signer may do to records (making the container
    /// outside the document's first change, replacing it, a record that is not a map, changing
    /// another node's record). `added` collects the records this change adds; `genesis` says
    /// whether this change is the document's first.
    fn classify<'t>(
        &self,
        t: &'t Touch,
        signer: &SignerClaims,
        genesis: bool,
        added: &mut Vec<&'t Step>,
    ) -> Result<RecordOp<'t>, RuleViolation> {
        if t.path.first().and_then(Step::key) != Some(self.key) {
            return Ok(RecordOp::Outside);
        }
        if t.path.len() == 1 {
            let expected = if self.list {
                automerge::ObjType::List
            } else {
                automerge::ObjType::Map
            };
            return match &t.action {
                Action::Make(typ) if *typ == expected && t.replaces.is_empty() && genesis => {
                    Ok(RecordOp::Container)
                }
                _ => Err(RuleViolation::Malformed(format!(
                    "`{}` is made once, by the document's first change; making, replacing or deleting it later would hide or drop every record in it",
                    self.key
                ))),
            };
        }
        let record = &t.path[1];
        let others = |creator: Option<&ActorId>| RuleViolation::OthersRecord {
            what: format!("{} ({})", self.one, t.path_text()),
            creator: creator
                .and_then(node_of_actor)
                .map_or_else(|| "unknown".into(), |n| n.to_string()),
            signer: signer.name(),
        };
        if t.path.len() == 2 {
            let new_map = match (&t.action, record) {
                (Action::InsertMake(automerge::ObjType::Map), Step::Elem(_)) => self.list,
                (Action::Make(automerge::ObjType::Map), Step::Key(_)) => {
                    !self.list && t.replaces.is_empty()
                }
                _ => false,
            };
            if new_map {
                added.push(record);
                return Ok(RecordOp::Added(record));
            }
            if t.action.is_insert()
                || matches!(t.action, Action::Make(_) | Action::Put(_)) && t.replaces.is_empty()
            {
                return Err(RuleViolation::Malformed(format!(
                    "{} must be a record (a map) added on its own, not {:?}",
                    self.one, t.action
                )));
            }
            // Overwriting or deleting an existing record: its author only.
            if let Step::Elem(e) = record
                && !signer.wrote(&e.creator)
            {
                return Err(others(Some(&e.creator)));
            }
            if let Some(a) = t.replaces.iter().find(|a| !signer.wrote(a)) {
                return Err(others(Some(a)));
            }
            return Ok(RecordOp::Changed);
        }
        // Inside a record: the record's object (and, in a list, its element) must be the
        // signer's, also for a record added by this very change (then it is, by construction).
        let new = added.contains(&record);
        let creator = t.holders.get(2).and_then(Option::as_ref);
        if !creator.is_some_and(|c| signer.wrote(c)) {
            return Err(others(creator));
        }
        if let Step::Elem(e) = record
            && !signer.wrote(&e.creator)
        {
            return Err(others(Some(&e.creator)));
        }
        Ok(RecordOp::Field {
            record,
            rest: &t.path[2..],
            new,
        })
    }
}

/// Fields put into records added by this change, by record: (field, value).
#[derive(Default)]
struct NewFields<'t>(HashMap<&'t Step, Vec<(&'t str, &'t ScalarValue)>>);

impl<'t> NewFields<'t> {
    fn note(&mut self, record: &'t Step, rest: &'t [Step], t: &'t Touch) {
        if let ([Step::Key(k)], Action::Put(v)) = (rest, &t.action) {
            self.0.entry(record).or_default().push((k.as_str(), v));
        }
    }

    fn get(&self, record: &Step, field: &str) -> Option<&'t ScalarValue> {
        self.0
            .get(record)?
            .iter()
            .rev()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| *v)
    }
}

/// Requires every record added by this change to carry `by` = the signer's facility (and, when
/// given, the node field = the signer's node id).
fn require_author_fields(
    added: &[&Step],
    fields: &NewFields<'_>,
    one: &str,
    node_field: Option<&str>,
    signer: &SignerClaims,
) -> Result<(), RuleViolation> {
    for r in added {
        match fields.get(r, "by").and_then(text_of) {
            Some(by) if by == signer.facility.as_str() => {}
            got => {
                return Err(RuleViolation::WrongValue {
                    field: format!("the `by` of {one}"),
                    expected: format!("the signer's facility {}", signer.facility),
                    got: got.map_or_else(|| "missing".into(), str::to_string),
                });
            }
        }
        if let Some(f) = node_field {
            let node = signer.node.to_string();
            match fields.get(r, f).and_then(text_of) {
                Some(n) if n == node => {}
                got => {
                    return Err(RuleViolation::WrongValue {
                        field: format!("the `{f}` of {one}"),
                        expected: format!("the signer's node {node}"),
                        got: got.map_or_else(|| "missing".into(), str::to_string),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Checks a write of an author field (`by`, `node`, `device`) inside a record: it may only
/// ever name the author.
fn author_field(
    t: &Touch,
    rest: &[Step],
    one: &str,
    node_field: Option<&str>,
    signer: &SignerClaims,
) -> Result<(), RuleViolation> {
    match rest {
        [Step::Key(k)] if k == "by" => {
            bound(t, &format!("the `by` of {one}"), signer.facility.as_str())
        }
        [Step::Key(k)] if Some(k.as_str()) == node_field => {
            bound(t, &format!("the `{k}` of {one}"), &signer.node.to_string())
        }
        _ => Ok(()),
    }
}
