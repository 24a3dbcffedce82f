//! Note rules (`documents/note.rs`: `{ schema, title, entries: [ { at, by, text } ] }`).
//!
//! The owning facility (the creator's, named in the header) writes the title and the other
//! fixed fields. Entries are records inserted into `entries` by any facility holding the note,
//! each changed only by its author and naming its facility in `by`.

use super::{
    Deferred, NewFields, RecordOp, Records, RuleViolation, SignerClaims, audience_text,
    author_field, parties_misfit, require_author_fields,
};
use crate::trust::header::{DocFacts, Parties};
use crate::trust::shadow::Touch;

const ENTRIES: Records = Records {
    key: "entries",
    one: "an entry",
    list: true,
};

pub(super) fn check(
    facts: &DocFacts,
    signer: &SignerClaims,
    genesis: bool,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    let Parties::Owner { facility } = &facts.parties else {
        return Err(parties_misfit(facts));
    };
    let owner_only = |what: String| -> Result<(), RuleViolation> {
        if signer.is(facility) {
            Ok(())
        } else {
            Err(RuleViolation::NotAllowed {
                what,
                allowed: format!("its author {facility}"),
                signer: signer.name(),
            })
        }
    };
    let mut added = Vec::new();
    let mut fields = NewFields::default();
    let mut deferred = Deferred::default();
    for t in touches {
        match ENTRIES.classify(t, signer, genesis, &mut added)? {
            RecordOp::Container => owner_only("make the note's list of entries".into())?,
            RecordOp::Added(_) => {
                if !facts.audience.contains(&signer.facility) {
                    return Err(RuleViolation::NotAllowed {
                        what: "add an entry to this note".into(),
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
                deferred.check(author_field(t, rest, "an entry", None, signer));
            }
            RecordOp::Outside => owner_only(format!("write the note's {}", t.path_text()))?,
        }
    }
    deferred.finish()?;
    require_author_fields(&added, &fields, "an entry", None, signer)
}
