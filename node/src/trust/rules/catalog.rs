//! Catalog, stock and dispensing rules (`documents/catalog.rs`, `documents/dispensing.rs`):
//! well-known documents of records under root keys.
//!
//! The catalog is written only by nodes with the `pharmacy` role; an entry's `updated_by`
//! names the signer's facility. A facility's stock document and its monthly dispensing
//! summaries are written only by that facility (named in the well-known name); their root
//! `facility` (and a summary's `period`) must match the name.

use super::{Deferred, RuleViolation, SignerClaims, at_root_key, bound, parties_misfit};
use crate::identity::cert::Role;
use crate::trust::header::{DocFacts, Parties, WellKnownName};
use crate::trust::shadow::{Step, Touch};

pub(super) fn check_catalog(signer: &SignerClaims, touches: &[Touch]) -> Result<(), RuleViolation> {
    let mut deferred = Deferred::default();
    for t in touches {
        if !signer.has_role(Role::Pharmacy) {
            return Err(RuleViolation::NotAllowed {
                what: format!("edit the drug catalog ({})", t.path_text()),
                allowed: "a node with the pharmacy role".into(),
                signer: signer.name(),
            });
        }
        if t.path.len() == 2 && matches!(&t.path[1], Step::Key(k) if k == "updated_by") {
            deferred.check(bound(
                t,
                "a catalog entry's `updated_by`",
                signer.facility.as_str(),
            ));
        }
    }
    deferred.finish()
}

fn owner_only(
    facts: &DocFacts,
    signer: &SignerClaims,
    touches: &[Touch],
    what: &str,
) -> Result<(), RuleViolation> {
    let Parties::Owner { facility } = &facts.parties else {
        return Err(parties_misfit(facts));
    };
    let mut deferred = Deferred::default();
    for t in touches {
        if !signer.is(facility) {
            return Err(RuleViolation::NotAllowed {
                what: format!("write {facility}'s {what} ({})", t.path_text()),
                allowed: format!("{facility} itself"),
                signer: signer.name(),
            });
        }
        if at_root_key(t, "facility") {
            deferred.check(bound(
                t,
                &format!("the {what}'s facility"),
                facility.as_str(),
            ));
        }
    }
    deferred.finish()
}

pub(super) fn check_stock(
    facts: &DocFacts,
    signer: &SignerClaims,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    owner_only(facts, signer, touches, "stock rows")
}

pub(super) fn check_dispensing(
    facts: &DocFacts,
    signer: &SignerClaims,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    owner_only(facts, signer, touches, "dispensing summary")?;
    let mut deferred = Deferred::default();
    if let Some(WellKnownName::Dispensing { period, .. }) = &facts.well_known {
        for t in touches.iter().filter(|t| at_root_key(t, "period")) {
            deferred.check(bound(t, "the dispensing summary's period", period));
        }
    }
    deferred.finish()
}
