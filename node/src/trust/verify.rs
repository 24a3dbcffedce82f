//! The verification pipeline for one document: which received changes may enter it, which may
//! not and why, and the proof of any equivocation.
//!
//! For a batch of received changes ([`verify_batch`]), each change goes through, in order:
//! 1. bytes: [`chunk::parse_change`] (one uncompressed, canonical change within the caps);
//! 2. signer: the actor's node ([`node_of_actor`]) must be known to the [`Resolver`] (else the
//!    change waits: retriable), not revoked, and its signature over (document, hash) must
//!    verify;
//! 3. equivocation: two validly signed changes with the same (actor, seq) are both refused
//!    (with everything that depends on them) and returned as [`Equivocation`] evidence; a
//!    change whose (actor, seq) the document already holds under another hash is refused the
//!    same way (part B then removes the held one too, so every node ends up alike);
//! 4. causality: the batch is put in causal order; a change whose dependency is neither held
//!    nor in the batch waits (retriable); one that depends on a refused change is refused;
//! 5. structure: [`Shadow::check`];
//! 6. rights: [`rules::check_change`] on the touches, with the signer's certificate claims.
//!
//! Accepted changes are added to the shadow and returned in causal order, ready to be applied
//! as one batch ([`apply_accepted`], under `catch_unwind`). If applying them fails, the caller
//! must throw away both the document copy and the shadow and rebuild them from storage.
//!
//! A whole document received on first sync ([`verify_whole`]) is loaded into a scratch copy
//! that is never adopted: missing dependencies refuse it, every change in it is verified as
//! above with a fresh shadow, and a new document is rebuilt from the accepted changes alone
//! (a crafted document chunk can disagree with its own changes).

use std::collections::{HashMap, HashSet};

use automerge::{
    ActorId, Automerge, Change, ChangeHash, LoadOptions, OnPartialLoad, ReadDoc, VerificationMode,
};

use super::chunk::{self, ChunkError};
use super::guard;
use super::header::{DocFacts, Header, HeaderError};
use super::rules::{self, RuleViolation, SignerClaims};
use super::shadow::{Shadow, ShadowError, causal_order};
use super::sign::{self, SigError, Signature};
use crate::identity::{node_id_of, node_of_actor};
use crate::ids::{DocId, NodeId};

/// What this node knows about a signer, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownSigner {
    /// The raw Ed25519 public key of its certificate.
    pub(crate) public_key: [u8; 32],
    /// What its certificate claims.
    pub(crate) claims: SignerClaims,
}

/// The answer of a [`Resolver`] about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignerLookup {
    /// Its certificate is held and chains to the alliance CA.
    Known(KnownSigner),
    /// No certificate held for it (yet).
    Unknown,
    /// Its certificate is on the installed revocation list.
    Revoked,
}

/// Finds a signer's public key and claims (part B implements it over the certificate table).
pub(crate) trait Resolver {
    /// What is known about `node`.
    fn lookup(&self, node: &NodeId) -> SignerLookup;
}

/// One received change: its chunk bytes and the signature that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// One change chunk.
    pub(crate) bytes: Vec<u8>,
    /// Its author's signature over (document, hash).
    pub(crate) sig: Signature,
}

/// An accepted change with its signature.
#[derive(Debug, Clone)]
pub(crate) struct SignedChange {
    /// The change.
    pub(crate) change: Change,
    /// Its author's signature.
    pub(crate) sig: Signature,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Refusal {
    /// Unreadable, or bytes no honest node sends.
    #[error("{0}")]
    BadBytes(ChunkError),
    /// The author's certificate is not held yet: the change waits for it.
    #[error("signed by node {0}, whose certificate this node does not hold yet")]
    UnknownSigner(NodeId),
    /// The author's certificate is revoked.
    #[error("signed by node {0}, whose certificate is revoked")]
    SignerRevoked(NodeId),
    /// The certificate held for the author carries another node's key.
    #[error("the certificate held for node {0} carries another node's key")]
    SignerKeyMismatch(NodeId),
    /// The signature does not verify (tampered, or made for another document).
    #[error(transparent)]
    BadSignature(SigError),
    /// A change of a whole document came without a signature.
    #[error("no signature came with it")]
    Unsigned,
    /// Another validly signed change has the same author and sequence number.
    #[error("equivocation: change {other} has the same author ({actor}) and sequence number {seq}")]
    Equivocation {
        /// The actor.
        actor: ActorId,
        /// The sequence number.
        seq: u64,
        /// The other change.
        other: ChangeHash,
    },
    /// A dependency is not held and not in the batch: the change waits for it.
    #[error("it depends on change {0}, which this node does not hold yet")]
    MissingDependency(ChangeHash),
    /// A dependency was refused in this batch.
    #[error("it depends on change {hash}, which was refused")]
    DependsOnRefused {
        /// The refused dependency.
        hash: ChangeHash,
        /// Whether that refusal may resolve later (its author's certificate or dependency may
        /// still come).
        retriable: bool,
    },
    /// It does not fit the document's structure.
    #[error("{0}")]
    Structure(ShadowError),
    /// Its author may not write what it writes.
    #[error("{0}")]
    Rule(RuleViolation),
}

impl Refusal {
    /// Whether the change may be accepted later without changing (a certificate or a
    /// dependency that has not arrived yet).
    pub(crate) fn retriable(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownSigner(_)
                | Refusal::MissingDependency(_)
                | Refusal::DependsOnRefused {
                    retriable: true,
                    ..
                }
        )
    }
}

/// A refused change, with what the quarantine needs.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    /// Its hash, if its bytes were readable.
    pub(crate) hash: Option<ChangeHash>,
    /// Its author's node, if known.
    pub(crate) signer: Option<NodeId>,
    /// Why.
    pub(crate) reason: Refusal,
    /// The bytes as received (or as taken out of a whole document).
    pub(crate) bytes: Vec<u8>,
    /// The signature that came with it.
    pub(crate) sig: Option<Signature>,
}

/// One side of an equivocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvidenceChange {
    /// The change's hash.
    pub(crate) hash: ChangeHash,
    /// Its bytes and signature, when they came in this batch (a change the document already
    /// held is in storage).
    pub(crate) signed: Option<(Vec<u8>, Signature)>,
}

/// Proof of misbehaviour: two validly signed, different changes with the same author and
/// sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Equivocation {
    /// The document.
    pub(crate) doc: DocId,
    /// The actor.
    pub(crate) actor: ActorId,
    /// The sequence number.
    pub(crate) seq: u64,
    /// The change held first (by the document, or first in the batch).
    pub(crate) first: EvidenceChange,
    /// The other change.
    pub(crate) second: EvidenceChange,
}

/// What became of a batch.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Accepted, in causal order: apply them as one batch.
    pub(crate) accepted: Vec<SignedChange>,
    /// Already held (nothing to do; acknowledge them).
    pub(crate) known: Vec<ChangeHash>,
    /// Refused, each with its reason.
    pub(crate) refused: Vec<Refused>,
    /// Equivocations found.
    pub(crate) evidence: Vec<Equivocation>,
}

/// Why a document header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HeaderRefusal {
    /// Unusable as such.
    #[error(transparent)]
    Header(HeaderError),
    /// The creator's certificate is not held yet (retriable).
    #[error("created by node {0}, whose certificate this node does not hold yet")]
    UnknownCreator(NodeId),
    /// The creator's certificate is revoked.
    #[error("created by node {0}, whose certificate is revoked")]
    CreatorRevoked(NodeId),
    /// The certificate held for the creator carries another node's key.
    #[error("the certificate held for node {0} carries another node's key")]
    CreatorKeyMismatch(NodeId),
    /// The creator may not create this document.
    #[error("{0}")]
    Rule(RuleViolation),
}

/// Why a whole document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WholeError {
    /// Its header was refused.
    #[error("its header was refused: {0}")]
    Header(HeaderRefusal),
    /// Longer than any document a node stores.
    #[error("the document is {0} bytes, more than a document may have")]
    TooLarge(usize),
    /// Not exactly one document chunk.
    #[error("not a saved document: {0}")]
    NotADocument(String),
    /// Automerge could not load it.
    #[error("the document cannot be loaded: {0}")]
    Load(String),
    /// It refers to changes it does not contain.
    #[error("the document depends on {} change(s) it does not contain", .0.len())]
    MissingDependencies(Vec<ChangeHash>),
    /// Automerge panicked on it.
    #[error("loading the document crashed Automerge: {0}")]
    Panicked(String),
    /// The accepted changes could not be applied to a new document.
    #[error("the verified changes could not be rebuilt into a document: {0}")]
    Rebuild(String),
}

/// A whole document, verified and rebuilt.
#[derive(Debug)]
pub(crate) struct WholeVerdict {
    /// What its header establishes.
    pub(crate) facts: DocFacts,
    /// A new document holding only the accepted changes (its actor is random: set your own).
    pub(crate) doc: Automerge,
    /// Its shadow, to verify later increments against.
    pub(crate) shadow: Shadow,
    /// Accepted, known, refused, evidence.
    pub(crate) verdict: Verdict,
}

/// Verifies a document header for document `doc`: its own checks, the creator's certificate
/// and signature, and whether the creator may create it (for a signed header); the name and id
/// (for a well-known one).
pub(crate) fn verify_header<R: Resolver + ?Sized>(
    header: &Header,
    doc: &DocId,
    resolver: &R,
) -> Result<DocFacts, HeaderRefusal> {
    match header {
        Header::WellKnown(w) => w.verify(doc).map_err(HeaderRefusal::Header),
        Header::Signed(s) => {
            let creator = s.header.creator;
            let known = match resolver.lookup(&creator) {
                SignerLookup::Known(k) => k,
                SignerLookup::Unknown => return Err(HeaderRefusal::UnknownCreator(creator)),
                SignerLookup::Revoked => return Err(HeaderRefusal::CreatorRevoked(creator)),
            };
            if node_id_of(&known.public_key) != creator || known.claims.node != creator {
                return Err(HeaderRefusal::CreatorKeyMismatch(creator));
            }
            s.check(doc, &known.public_key)
                .map_err(HeaderRefusal::Header)?;
            rules::check_creation(&s.header, &known.claims).map_err(HeaderRefusal::Rule)?;
            Ok(s.facts())
        }
    }
}

/// Verifies received changes for the document `facts` describes, against its `shadow`
/// (accepted changes are added to it).
pub(crate) fn verify_batch<R: Resolver + ?Sized>(
    facts: &DocFacts,
    shadow: &mut Shadow,
    resolver: &R,
    batch: Vec<Incoming>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut parsed = Vec::with_capacity(batch.len());
    for inc in batch {
        match chunk::parse_change(&inc.bytes) {
            Ok(c) => parsed.push((c, inc.sig)),
            Err(e) => verdict.refused.push(Refused {
                hash: None,
                signer: None,
                reason: Refusal::BadBytes(e),
                bytes: inc.bytes,
                sig: Some(inc.sig),
            }),
        }
    }
    screen(facts, shadow, resolver, parsed, &mut verdict);
    verdict
}

/// A candidate: parsed, signature verified.
struct Candidate {
    change: Change,
    sig: Signature,
    claims: SignerClaims,
}

fn refused_of(change: &Change, sig: Option<Signature>, reason: Refusal) -> Refused {
    Refused {
        hash: Some(change.hash()),
        signer: node_of_actor(change.actor_id()),
        reason,
        bytes: change.raw_bytes().to_vec(),
        sig,
    }
}

/// Steps 2 to 6 for parsed changes; `verdict` may already hold refusals (whose dependents are
/// then refused too).
fn screen<R: Resolver + ?Sized>(
    facts: &DocFacts,
    shadow: &mut Shadow,
    resolver: &R,
    parsed: Vec<(Change, Signature)>,
    verdict: &mut Verdict,
) {
    let doc = &facts.doc;
    // Signer and signature.
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (change, sig) in parsed {
        let hash = change.hash();
        if shadow.contains(&hash) || !seen.insert(hash) {
            if !verdict.known.contains(&hash) {
                verdict.known.push(hash);
            }
            continue;
        }
        let Some(node) = node_of_actor(change.actor_id()) else {
            let len = change.actor_id().to_bytes().len();
            verdict.refused.push(refused_of(
                &change,
                Some(sig),
                Refusal::BadBytes(ChunkError::ActorLength { len }),
            ));
            continue;
        };
        let known = match resolver.lookup(&node) {
            SignerLookup::Known(k) => k,
            SignerLookup::Unknown => {
                verdict
                    .refused
                    .push(refused_of(&change, Some(sig), Refusal::UnknownSigner(node)));
                continue;
            }
            SignerLookup::Revoked => {
                verdict
                    .refused
                    .push(refused_of(&change, Some(sig), Refusal::SignerRevoked(node)));
                continue;
            }
        };
        if node_id_of(&known.public_key) != node || known.claims.node != node {
            verdict.refused.push(refused_of(
                &change,
                Some(sig),
                Refusal::SignerKeyMismatch(node),
            ));
            continue;
        }
        if let Err(e) = sign::verify_change(node, &known.public_key, doc, &hash, &sig) {
            verdict
                .refused
                .push(refused_of(&change, Some(sig), Refusal::BadSignature(e)));
            continue;
        }
        candidates.push(Candidate {
            change,
            sig,
            claims: known.claims,
        });
    }

    // Equivocation, against the document and within the batch.
    let mut equivocating: HashSet<usize> = HashSet::new();
    let mut first_at: HashMap<(ActorId, u64), usize> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let (actor, seq) = (c.change.actor_id().clone(), c.change.seq());
        let hash = c.change.hash();
        let signed = |k: &Candidate| Some((k.change.raw_bytes().to_vec(), k.sig));
        if let Some(held) = shadow.hash_at(&actor, seq) {
            equivocating.insert(i);
            verdict.evidence.push(Equivocation {
                doc: *doc,
                actor,
                seq,
                first: EvidenceChange {
                    hash: held,
                    signed: None,
                },
                second: EvidenceChange {
                    hash,
                    signed: signed(c),
                },
            });
            continue;
        }
        match first_at.get(&(actor.clone(), seq)) {
            Some(&j) => {
                equivocating.insert(i);
                equivocating.insert(j);
                let f = &candidates[j];
                verdict.evidence.push(Equivocation {
                    doc: *doc,
                    actor,
                    seq,
                    first: EvidenceChange {
                        hash: f.change.hash(),
                        signed: signed(f),
                    },
                    second: EvidenceChange {
                        hash,
                        signed: signed(c),
                    },
                });
            }
            None => {
                first_at.insert((actor, seq), i);
            }
        }
    }

    // Refusals so far, by hash: their dependents are refused too.
    let mut refused_hashes: HashMap<ChangeHash, bool> = verdict
        .refused
        .iter()
        .filter_map(|r| r.hash.map(|h| (h, r.reason.retriable())))
        .collect();
    let mut remaining = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.into_iter().enumerate() {
        if equivocating.contains(&i) {
            let other = verdict
                .evidence
                .iter()
                .find_map(|e| {
                    if e.second.hash == c.change.hash() {
                        Some(e.first.hash)
                    } else if e.first.hash == c.change.hash() {
                        Some(e.second.hash)
                    } else {
                        None
                    }
                })
                .unwrap_or(c.change.hash());
            refused_hashes.insert(c.change.hash(), false);
            verdict.refused.push(refused_of(
                &c.change,
                Some(c.sig),
                Refusal::Equivocation {
                    actor: c.change.actor_id().clone(),
                    seq: c.change.seq(),
                    other,
                },
            ));
        } else {
            remaining.push(c);
        }
    }

    // Causal order, then structure and rights.
    let changes: Vec<Change> = remaining.iter().map(|c| c.change.clone()).collect();
    let order = causal_order(&changes);
    let mut slots: Vec<Option<Candidate>> = remaining.into_iter().map(Some).collect();
    for i in order {
        let Some(c) = slots[i].take() else { continue };
        let hash = c.change.hash();
        let waiting = c.change.deps().iter().find_map(|d| {
            if shadow.contains(d) {
                None
            } else if let Some(&retriable) = refused_hashes.get(d) {
                Some(Refusal::DependsOnRefused {
                    hash: *d,
                    retriable,
                })
            } else {
                Some(Refusal::MissingDependency(*d))
            }
        });
        let outcome = match waiting {
            Some(r) => Err(r),
            None => shadow
                .check(&c.change)
                .map_err(Refusal::Structure)
                .and_then(|k| {
                    rules::check_change(facts, &c.claims, &k.hash(), k.touches())
                        .map(|()| k)
                        .map_err(Refusal::Rule)
                }),
        };
        match outcome.and_then(|k| shadow.add(k).map_err(Refusal::Structure)) {
            Ok(()) => verdict.accepted.push(SignedChange {
                change: c.change,
                sig: c.sig,
            }),
            Err(reason) => {
                refused_hashes.insert(hash, reason.retriable());
                verdict
                    .refused
                    .push(refused_of(&c.change, Some(c.sig), reason));
            }
        }
    }
}

/// Verifies a whole document received on first sync: `bytes` is its `save()`, `sigs` the
/// signature of each of its changes, `header` its header, `doc` the id it was sent under.
/// Returns a new document rebuilt from the accepted changes, never the received one.
pub(crate) fn verify_whole<R: Resolver + ?Sized>(
    doc: &DocId,
    bytes: &[u8],
    sigs: &[(ChangeHash, Signature)],
    header: &Header,
    resolver: &R,
) -> Result<WholeVerdict, WholeError> {
    let facts = verify_header(header, doc, resolver).map_err(WholeError::Header)?;
    if bytes.len() > chunk::MAX_CHANGE_BYTES {
        return Err(WholeError::TooLarge(bytes.len()));
    }
    let chunks = chunk::split_chunks(bytes).map_err(|e| WholeError::NotADocument(e.to_string()))?;
    match chunks.as_slice() {
        [c] if c.kind == chunk::CHUNK_DOCUMENT => {}
        [] => return Err(WholeError::NotADocument("no bytes".into())),
        [c] => {
            return Err(WholeError::NotADocument(
                ChunkError::WrongType { got: c.kind }.to_string(),
            ));
        }
        more => {
            return Err(WholeError::NotADocument(format!(
                "{} chunks where one document was expected",
                more.len()
            )));
        }
    }
    let scratch = guard(|| {
        Automerge::load_with_options(
            bytes,
            LoadOptions::new()
                .on_partial_load(OnPartialLoad::Error)
                .verification_mode(VerificationMode::Check),
        )
    })
    .map_err(|p| WholeError::Panicked(p.0))?
    .map_err(|e| WholeError::Load(e.to_string()))?;
    let (missing, changes) = guard(|| (scratch.get_missing_deps(&[]), scratch.get_changes(&[])))
        .map_err(|p| WholeError::Panicked(p.0))?;
    if !missing.is_empty() {
        return Err(WholeError::MissingDependencies(missing));
    }
    drop(scratch);

    let sig_of: HashMap<ChangeHash, Signature> = sigs.iter().copied().collect();
    let mut verdict = Verdict::default();
    let mut parsed = Vec::with_capacity(changes.len());
    for c in changes {
        let sig = sig_of.get(&c.hash()).copied();
        if let Err(e) = chunk::check_caps(&c) {
            verdict
                .refused
                .push(refused_of(&c, sig, Refusal::BadBytes(e)));
            continue;
        }
        match sig {
            Some(sig) => parsed.push((c, sig)),
            None => verdict
                .refused
                .push(refused_of(&c, None, Refusal::Unsigned)),
        }
    }
    let mut shadow = Shadow::new();
    screen(&facts, &mut shadow, resolver, parsed, &mut verdict);

    let mut rebuilt = Automerge::new();
    let accepted: Vec<Change> = verdict.accepted.iter().map(|s| s.change.clone()).collect();
    match guard(|| rebuilt.apply_changes(accepted)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(WholeError::Rebuild(e.to_string())),
        Err(p) => return Err(WholeError::Rebuild(p.to_string())),
    }
    Ok(WholeVerdict {
        facts,
        doc: rebuilt,
        shadow,
        verdict,
    })
}

/// Why accepted changes could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ApplyError {
    /// Automerge refused them (the document is unchanged).
    #[error("Automerge refused the verified changes: {0}")]
    Refused(String),
    /// Automerge panicked: the document copy must be thrown away.
    #[error(
        "applying the verified changes crashed Automerge: {0}; discard this copy of the document"
    )]
    Panicked(String),
}

/// Applies accepted changes as one batch, under `catch_unwind`. On `Panicked` the document
/// (and its shadow) must be thrown away and reloaded from storage.
pub(crate) fn apply_accepted(
    doc: &mut Automerge,
    accepted: &[SignedChange],
) -> Result<(), ApplyError> {
    let changes: Vec<Change> = accepted.iter().map(|s| s.change.clone()).collect();
    match guard(|| doc.apply_changes(changes)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApplyError::Refused(e.to_string())),
        Err(p) => Err(ApplyError::Panicked(p.0)),
    }
}
