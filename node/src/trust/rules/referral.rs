//! Referral rules (`documents/referral.rs`: `{ schema, request, acts: [Act], notes: [Note] }`).
//!
//! The sending facility writes everything outside `acts` and `notes`. An act is a record
//! inserted into `acts` by either party or a county hospital; what it decides (`kind`) depends
//! on the author's role: the receiver accepts, rejects, records arrival and completion; the
//! sender cancels; the receiver or a county hospital resolves a conflict (as `make_act` allows).
//! A note is a record inserted into `notes` by either party or a county hospital. Acts and notes
//! are changed only by their author and name it in `by` (acts also in `node`).

use autosurgeon::Hydrate;

use super::{
    Deferred, NewFields, RecordOp, Records, RuleViolation, SignerClaims, at_keys, author_field,
    bound, parties_misfit, require_author_fields, shown, text_of,
};
use crate::documents::referral::ActKind;
use crate::ids::FacilityCode;
use crate::trust::header::{DocFacts, Parties};
use crate::trust::shadow::{Action, Step, Touch};

const ACTS: Records = Records {
    key: "acts",
    one: "an act",
    list: true,
};

const NOTES: Records = Records {
    key: "notes",
    one: "a note",
    list: true,
};

/// Who may make an act of `kind` on a referral from `from` to `to`.
fn act_allowed(kind: ActKind, from: &FacilityCode, to: &FacilityCode, s: &SignerClaims) -> bool {
    match kind {
        ActKind::Accept | ActKind::Reject | ActKind::Arrive | ActKind::Complete => s.is(to),
        ActKind::Cancel => s.is(from),
        ActKind::Resolve => s.is(to) || s.is_county(),
    }
}

fn act_allowed_text(kind: ActKind, from: &FacilityCode, to: &FacilityCode) -> String {
    match kind {
        ActKind::Accept | ActKind::Reject | ActKind::Arrive | ActKind::Complete => {
            format!("the receiving facility {to}")
        }
        ActKind::Cancel => format!("the sending facility {from}"),
        ActKind::Resolve => format!("the receiving facility {to} or a county hospital"),
    }
}

fn act_kind(
    t: &Touch,
    from: &FacilityCode,
    to: &FacilityCode,
    s: &SignerClaims,
) -> Result<(), RuleViolation> {
    let Action::Put(v) = &t.action else {
        return Err(RuleViolation::Malformed(
            "an act's `kind` is a text written with the act; it is never deleted or made an object"
                .into(),
        ));
    };
    let kind = text_of(v)
        .and_then(|k| ActKind::hydrate_string(k).ok())
        .ok_or_else(|| RuleViolation::Malformed(format!("{:?} is not a kind of act", shown(v))))?;
    if !act_allowed(kind, from, to, s) {
        return Err(RuleViolation::NotAllowed {
            what: format!("{} this referral", kind.as_str()),
            allowed: act_allowed_text(kind, from, to),
            signer: s.name(),
        });
    }
    Ok(())
}

pub(super) fn check(
    facts: &DocFacts,
    signer: &SignerClaims,
    genesis: bool,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    let Parties::Referral { from, to } = &facts.parties else {
        return Err(parties_misfit(facts));
    };
    let party_or_county = signer.is(from) || signer.is(to) || signer.is_county();
    let sender_only = |what: String| -> Result<(), RuleViolation> {
        if signer.is(from) {
            Ok(())
        } else {
            Err(RuleViolation::NotAllowed {
                what,
                allowed: format!("the sending facility {from}"),
                signer: signer.name(),
            })
        }
    };
    let mut added_acts = Vec::new();
    let mut added_notes = Vec::new();
    let mut fields = NewFields::default();
    let mut deferred = Deferred::default();
    for t in touches {
        match ACTS.classify(t, signer, genesis, &mut added_acts)? {
            RecordOp::Outside => {}
            RecordOp::Container => {
                sender_only("make the referral's list of acts".into())?;
                continue;
            }
            RecordOp::Added(_) => {
                if !party_or_county {
                    return Err(RuleViolation::NotAllowed {
                        what: "record an act on this referral".into(),
                        allowed: format!("its parties {from} and {to} or a county hospital"),
                        signer: signer.name(),
                    });
                }
                continue;
            }
            RecordOp::Changed => continue,
            RecordOp::Field { record, rest, new } => {
                if new {
                    fields.note(record, rest, t);
                }
                deferred.check(author_field(t, rest, "an act", Some("node"), signer));
                if matches!(rest, [Step::Key(k)] if k == "kind") {
                    act_kind(t, from, to, signer)?;
                }
                continue;
            }
        }
        match NOTES.classify(t, signer, genesis, &mut added_notes)? {
            RecordOp::Outside => {}
            RecordOp::Container => {
                sender_only("make the referral's list of notes".into())?;
                continue;
            }
            RecordOp::Added(_) => {
                if !party_or_county {
                    return Err(RuleViolation::NotAllowed {
                        what: "add a note to this referral".into(),
                        allowed: format!("its parties {from} and {to} or a county hospital"),
                        signer: signer.name(),
                    });
                }
                continue;
            }
            RecordOp::Changed => continue,
            RecordOp::Field { record, rest, new } => {
                if new {
                    fields.note(record, rest, t);
                }
                deferred.check(author_field(t, rest, "a note", None, signer));
                continue;
            }
        }
        // The sender's section: `schema`, `request` and anything else outside the records.
        sender_only(format!("write the referral's {}", t.path_text()))?;
        if at_keys(t, &["request", "from", "facility"]) {
            deferred.check(bound(t, "the referral's sending facility", from.as_str()));
        }
        if at_keys(t, &["request", "to", "facility"]) {
            deferred.check(bound(t, "the referral's receiving facility", to.as_str()));
        }
    }
    for r in &added_acts {
        if fields.get(r, "kind").is_none() {
            return Err(RuleViolation::Malformed(
                "a new act must say what was decided: it has no `kind`".into(),
            ));
        }
    }
    deferred.finish()?;
    require_author_fields(&added_acts, &fields, "an act", Some("node"), signer)?;
    require_author_fields(&added_notes, &fields, "a note", None, signer)
}
