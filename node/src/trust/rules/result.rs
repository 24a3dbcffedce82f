//! Result and quality-control certification rules (`documents/result.rs`).
//!
//! A result is written by its performing facility (the header's `performer`, which its
//! `facility` field must name); corrections are new result documents by the performer. The only
//! later writes by others are re-test records inserted into `retests` by facilities holding the
//! result (`result retest` on another facility's result), each changed only by its author and
//! naming its facility in `by`. A QC certification is written by a county hospital or a node
//! with the `qc` role.

use super::{
    Deferred, NewFields, RecordOp, Records, RuleViolation, SignerClaims, at_root_key,
    audience_text, author_field, bound, parties_misfit, require_author_fields,
};
use crate::identity::cert::Role;
use crate::trust::header::{DocFacts, Parties};
use crate::trust::shadow::Touch;

const RETESTS: Records = Records {
    key: "retests",
    one: "a re-test record",
    list: true,
};

pub(super) fn check_result(
    facts: &DocFacts,
    signer: &SignerClaims,
    genesis: bool,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    let Parties::Result { performer } = &facts.parties else {
        return Err(parties_misfit(facts));
    };
    let performer_only = |what: String| -> Result<(), RuleViolation> {
        if signer.is(performer) {
            Ok(())
        } else {
            Err(RuleViolation::NotAllowed {
                what,
                allowed: format!("the performing facility {performer}"),
                signer: signer.name(),
            })
        }
    };
    let mut added = Vec::new();
    let mut fields = NewFields::default();
    let mut deferred = Deferred::default();
    for t in touches {
        match RETESTS.classify(t, signer, genesis, &mut added)? {
            RecordOp::Container => performer_only("make the result's list of re-tests".into())?,
            RecordOp::Added(_) => {
                if !facts.audience.contains(&signer.facility) {
                    return Err(RuleViolation::NotAllowed {
                        what: "record a re-test of this result".into(),
                        allowed: format!(
                            "a facility holding it {}",
                            audience_text(&facts.audience)
                        ),
                        signer: signer.name(),
                    });
                }
            }
            RecordOp::Changed => {}
            RecordOp::Field { record, rest, new } => {
                if new {
                    fields.note(record, rest, t);
                }
                deferred.check(author_field(t, rest, "a re-test record", None, signer));
            }
            RecordOp::Outside => {
                performer_only(format!("write the result's {}", t.path_text()))?;
                if at_root_key(t, "facility") {
                    deferred.check(bound(
                        t,
                        "the result's performing facility",
                        performer.as_str(),
                    ));
                }
            }
        }
    }
    deferred.finish()?;
    require_author_fields(&added, &fields, "a re-test record", None, signer)
}

pub(super) fn check_qc(signer: &SignerClaims, touches: &[Touch]) -> Result<(), RuleViolation> {
    if touches.is_empty() || signer.is_county() || signer.has_role(Role::Qc) {
        return Ok(());
    }
    Err(RuleViolation::NotAllowed {
        what: format!(
            "write a quality-control certification ({})",
            touches[0].path_text()
        ),
        allowed: "a county hospital or a node with the qc role".into(),
        signer: signer.name(),
    })
}
