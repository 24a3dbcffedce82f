//! Outreach event rules (`documents/outreach.rs`: event fields, `visits: {key: Visit}`,
//! `lectures: {key: Lecture}`).
//!
//! The host facility writes the event's fields (`host` and `township` must name the header's
//! parties). Visits and lectures are records added under fresh keys by devices of the host, of
//! the township visited, or of a county hospital (as the service allows), each changed only by
//! the device that wrote it; a visit names its facility in `by` and its node in `device`.

use super::{
    Deferred, NewFields, RecordOp, Records, RuleViolation, SignerClaims, at_root_key, author_field,
    bound, parties_misfit, require_author_fields,
};
use crate::trust::header::{DocFacts, Parties};
use crate::trust::shadow::Touch;

const VISITS: Records = Records {
    key: "visits",
    one: "a visit",
    list: false,
};

const LECTURES: Records = Records {
    key: "lectures",
    one: "a lecture",
    list: false,
};

pub(super) fn check(
    facts: &DocFacts,
    signer: &SignerClaims,
    genesis: bool,
    touches: &[Touch],
) -> Result<(), RuleViolation> {
    let Parties::Outreach { host, township } = &facts.parties else {
        return Err(parties_misfit(facts));
    };
    let host_only = |what: String| -> Result<(), RuleViolation> {
        if signer.is(host) {
            Ok(())
        } else {
            Err(RuleViolation::NotAllowed {
                what,
                allowed: format!("the host {host}"),
                signer: signer.name(),
            })
        }
    };
    let may_add = signer.is(host) || signer.is(township) || signer.is_county();
    let mut added_visits = Vec::new();
    let mut added_lectures = Vec::new();
    let mut fields = NewFields::default();
    let mut deferred = Deferred::default();
    for t in touches {
        let mut handled = false;
        for (records, added) in [
            (&VISITS, &mut added_visits),
            (&LECTURES, &mut added_lectures),
        ] {
            let op = records.classify(t, signer, genesis, added)?;
            handled = !matches!(op, RecordOp::Outside);
            match op {
                RecordOp::Outside => continue,
                RecordOp::Container => host_only(format!("make the event's `{}`", records.key))?,
                RecordOp::Added(_) => {
                    if !may_add {
                        return Err(RuleViolation::NotAllowed {
                            what: format!("add {} to this outreach event", records.one),
                            allowed: format!(
                                "the host {host}, the township {township} or a county hospital"
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
                    if records.key == VISITS.key {
                        deferred.check(author_field(t, rest, records.one, Some("device"), signer));
                    }
                }
            }
            break;
        }
        if handled {
            continue;
        }
        host_only(format!("write the outreach event's {}", t.path_text()))?;
        if at_root_key(t, "host") {
            deferred.check(bound(t, "the event's host", host.as_str()));
        }
        if at_root_key(t, "township") {
            deferred.check(bound(t, "the event's township", township.as_str()));
        }
    }
    deferred.finish()?;
    require_author_fields(&added_visits, &fields, "a visit", Some("device"), signer)
}
