//! Tests of the trust module: hostile changes from the research note, honest documents built
//! by the real document code, signatures and headers, property tests, and a cost measurement.
//!
//! Nodes are real: a fresh Ed25519 node key each, signing through [`Signer::from_pkcs8`] with
//! the key's PKCS#8 document, writing under a yilian actor id (node id + incarnation).

mod chunks;
mod cost;
mod honest;
mod hostile;
mod props;
mod signatures;
mod whole;

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash};

use super::header::{DocFacts, DocHeader, Header, Parties};
use super::rules::SignerClaims;
use super::shadow::Shadow;
use super::sign::Signer;
use super::verify::{
    Incoming, KnownSigner, Refusal, Resolver, SignerLookup, Verdict, verify_batch, verify_header,
};
use crate::config::FacilityKind;
use crate::documents::{Audience, DocKind};
use crate::identity::cert::Role;
use crate::identity::{NodeKey, actor_id};
use crate::ids::{DocId, FacilityCode, NodeId};

/// A node of the test alliance: its key, claims and actor id.
pub(super) struct Node {
    pub(super) signer: Signer,
    pub(super) claims: SignerClaims,
    pub(super) actor: ActorId,
}

impl Node {
    pub(super) fn new(facility: &str, kind: FacilityKind, roles: &[Role]) -> Node {
        let key = NodeKey::generate().unwrap();
        let signer = Signer::from_pkcs8(&key.key_pair().serialize_der()).unwrap();
        assert_eq!(signer.node_id(), key.node_id());
        let node = key.node_id();
        Node {
            claims: SignerClaims {
                node,
                facility: facility.parse().unwrap(),
                kind,
                roles: roles.to_vec(),
            },
            actor: actor_id(node, crate::identity::random_bytes()),
            signer,
        }
    }

    pub(super) fn id(&self) -> NodeId {
        self.claims.node
    }

    pub(super) fn code(&self) -> FacilityCode {
        self.claims.facility.clone()
    }

    /// A fresh document written under this node's actor id.
    pub(super) fn doc(&self) -> Automerge {
        Automerge::new().with_actor(self.actor.clone())
    }

    /// A copy of `doc` written under this node's actor id.
    pub(super) fn fork(&self, doc: &Automerge) -> Automerge {
        doc.fork().with_actor(self.actor.clone())
    }

    /// This change, signed for document `doc`, as received.
    pub(super) fn incoming(&self, doc: &DocId, c: &Change) -> Incoming {
        Incoming {
            bytes: c.raw_bytes().to_vec(),
            sig: self.signer.sign_change(doc, &c.hash()),
        }
    }

    /// The same claims under another facility, kind and roles (same node).
    pub(super) fn claims_as(
        &self,
        facility: &str,
        kind: FacilityKind,
        roles: &[Role],
    ) -> SignerClaims {
        SignerClaims {
            node: self.id(),
            facility: facility.parse().unwrap(),
            kind,
            roles: roles.to_vec(),
        }
    }
}

/// The test alliance.
pub(super) struct Alliance {
    /// TC-01, a township center.
    pub(super) tc: Node,
    /// A second device of TC-01.
    pub(super) tc_b: Node,
    /// TC-02, another township center.
    pub(super) tc2: Node,
    /// CH-01, the county hospital.
    pub(super) ch: Node,
    /// The county pharmacy: a CH-01 node with the pharmacy role.
    pub(super) pharm: Node,
    /// Who is revoked.
    pub(super) revoked: HashSet<NodeId>,
    /// Who is unknown (certificate not held).
    pub(super) hidden: HashSet<NodeId>,
}

impl Alliance {
    pub(super) fn new() -> Alliance {
        Alliance {
            tc: Node::new("TC-01", FacilityKind::TownshipCenter, &[]),
            tc_b: Node::new("TC-01", FacilityKind::TownshipCenter, &[]),
            tc2: Node::new("TC-02", FacilityKind::TownshipCenter, &[]),
            ch: Node::new("CH-01", FacilityKind::CountyHospital, &[]),
            pharm: Node::new("CH-01", FacilityKind::CountyHospital, &[Role::Pharmacy]),
            revoked: HashSet::new(),
            hidden: HashSet::new(),
        }
    }

    pub(super) fn nodes(&self) -> [&Node; 5] {
        [&self.tc, &self.tc_b, &self.tc2, &self.ch, &self.pharm]
    }

    /// The node whose actor wrote `c`.
    pub(super) fn author(&self, c: &Change) -> &Node {
        let node = crate::identity::node_of_actor(c.actor_id()).expect("a yilian actor");
        self.nodes()
            .into_iter()
            .find(|n| n.id() == node)
            .expect("a node of the alliance")
    }

    /// Every change signed by its author for `doc`.
    pub(super) fn signed(&self, doc: &DocId, changes: &[Change]) -> Vec<Incoming> {
        changes
            .iter()
            .map(|c| self.author(c).incoming(doc, c))
            .collect()
    }
}

impl Resolver for Alliance {
    fn lookup(&self, node: &NodeId) -> SignerLookup {
        if self.hidden.contains(node) {
            return SignerLookup::Unknown;
        }
        if self.revoked.contains(node) {
            return SignerLookup::Revoked;
        }
        self.nodes()
            .into_iter()
            .find(|n| n.id() == *node)
            .map_or(SignerLookup::Unknown, |n| {
                SignerLookup::Known(KnownSigner {
                    public_key: n.signer.public_key(),
                    claims: n.claims.clone(),
                })
            })
    }
}

/// Runs `f` on `doc` and returns the changes it made (one per commit).
pub(super) fn edit<T>(
    doc: &mut Automerge,
    f: impl FnOnce(&mut Automerge) -> T,
) -> (T, Vec<Change>) {
    let before = doc.get_heads();
    let out = f(doc);
    let new = doc.get_changes(&before);
    (out, new)
}

/// Applies `changes` to `doc` (an honest sync).
pub(super) fn sync(doc: &mut Automerge, changes: &[Change]) {
    doc.apply_changes(changes.to_vec()).unwrap();
}

/// A genesis hash for headers whose document has no changes in the test.
pub(super) const SOME_GENESIS: ChangeHash = ChangeHash([7; 32]);

/// A signed header for a created document whose first change is `genesis`.
pub(super) fn signed_header(
    creator: &Node,
    doc: DocId,
    kind: DocKind,
    audience: &[&str],
    parties: Parties,
    genesis: ChangeHash,
) -> Header {
    let header = DocHeader::new(
        doc,
        kind,
        Audience::new(audience.iter().map(|a| a.parse().unwrap())),
        parties,
        1_795_000_000_000,
        creator.id(),
        genesis,
    );
    Header::Signed(creator.signer.sign_header(header).unwrap())
}

/// The facts of a header, verified.
pub(super) fn facts(a: &Alliance, header: &Header, doc: &DocId) -> DocFacts {
    verify_header(header, doc, a).unwrap()
}

/// Facts under which everything is allowed to a pharmacy node: for structural tests.
pub(super) fn permissive(doc: DocId) -> DocFacts {
    DocFacts {
        doc,
        kind: DocKind::Catalog,
        audience: Audience::new([FacilityCode::everyone()]),
        parties: Parties::None,
        well_known: None,
        creator: None,
        genesis: None,
    }
}

/// Verifies `incoming` against `shadow`.
pub(super) fn verify(
    a: &Alliance,
    facts: &DocFacts,
    shadow: &mut Shadow,
    incoming: Vec<Incoming>,
) -> Verdict {
    verify_batch(facts, shadow, a, incoming)
}

/// The single refusal of a verdict that accepted nothing.
pub(super) fn only_refusal(v: &Verdict) -> &Refusal {
    assert!(
        v.accepted.is_empty(),
        "accepted {:?}",
        v.accepted
            .iter()
            .map(|s| s.change.hash())
            .collect::<Vec<_>>()
    );
    assert_eq!(v.refused.len(), 1, "{:?}", v.refused);
    &v.refused[0].reason
}

/// Hashes of the accepted changes.
pub(super) fn accepted(v: &Verdict) -> Vec<ChangeHash> {
    v.accepted.iter().map(|s| s.change.hash()).collect()
}

/// Reasons of the refused changes, by hash.
pub(super) fn reasons(v: &Verdict) -> HashMap<Option<ChangeHash>, Refusal> {
    v.refused
        .iter()
        .map(|r| (r.hash, r.reason.clone()))
        .collect()
}
