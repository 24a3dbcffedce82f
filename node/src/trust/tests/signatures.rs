//! Signatures and headers: tampering, replay into another document, a widened audience or a
//! changed kind, well-known names, creation rights, legacy attestations, encodings.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ROOT};

use super::*;
use crate::documents::{catalog, dispensing};
use crate::trust::header::{HeaderError, WellKnown, WellKnownName};
use crate::trust::rules::RuleViolation;
use crate::trust::sign::{self, SigError, verify_legacy};
use crate::trust::verify::HeaderRefusal;

fn referral_header(a: &Alliance, doc: DocId) -> Header {
    signed_header(
        &a.tc,
        doc,
        DocKind::Referral,
        &["TC-01", "CH-01"],
        Parties::Referral {
            from: a.tc.code(),
            to: a.ch.code(),
        },
        SOME_GENESIS,
    )
}

fn one_change(n: &Node) -> Change {
    let mut doc = n.doc();
    let ((), c) = edit(&mut doc, |d| {
        d.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "flu season"))
            .unwrap();
    });
    c.into_iter().next().unwrap()
}

#[test]
fn a_signer_from_the_node_key_signs_what_its_public_key_verifies() {
    let key = NodeKey::generate().unwrap();
    let s = Signer::from_pkcs8(&key.key_pair().serialize_der()).unwrap();
    assert_eq!(s.node_id(), key.node_id());
    assert_eq!(s.public_key().as_slice(), key.public_key());
    assert!(!format!("{s:?}").contains(&format!("{:?}", s.public_key())));
    assert!(matches!(
        Signer::from_pkcs8(b"not a key"),
        Err(SigError::BadKey(_))
    ));
    // A key read back from the node's key file signs the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    key.write_new(&path).unwrap();
    let loaded = NodeKey::load(&path).unwrap();
    let again = Signer::from_pkcs8(&loaded.key_pair().serialize_der()).unwrap();
    let (doc, h) = (DocId::random(), ChangeHash([3; 32]));
    let sig = again.sign_change(&doc, &h);
    assert!(sign::verify_change(s.node_id(), &s.public_key(), &doc, &h, &sig).is_ok());
}

#[test]
fn a_tampered_signature_is_refused() {
    let a = Alliance::new();
    let doc = DocId::random();
    let c = one_change(&a.tc);
    let mut inc = a.tc.incoming(&doc, &c);
    inc.sig[10] ^= 1;
    let facts = permissive(doc);
    let v = verify(&a, &facts, &mut Shadow::new(), vec![inc]);
    assert_eq!(
        only_refusal(&v),
        &Refusal::BadSignature(SigError::BadSignature { signer: a.tc.id() })
    );
    // Signed by the right key it passes the signature check.
    let mut a = a;
    a.tc.claims.roles.push(Role::Pharmacy);
    let v = verify(
        &a,
        &facts,
        &mut Shadow::new(),
        vec![a.tc.incoming(&doc, &c)],
    );
    assert_eq!(accepted(&v), vec![c.hash()]);
}

#[test]
fn a_valid_signature_replayed_into_another_document_is_refused() {
    let mut a = Alliance::new();
    a.tc.claims.roles.push(Role::Pharmacy);
    let (d1, d2) = (DocId::random(), DocId::random());
    let c = one_change(&a.tc);
    let inc = a.tc.incoming(&d1, &c);
    let v = verify(&a, &permissive(d2), &mut Shadow::new(), vec![inc.clone()]);
    assert!(matches!(only_refusal(&v), Refusal::BadSignature(_)));
    let v = verify(&a, &permissive(d1), &mut Shadow::new(), vec![inc]);
    assert_eq!(accepted(&v), vec![c.hash()]);
}

#[test]
fn a_header_whose_audience_was_widened_or_kind_changed_is_refused() {
    let a = Alliance::new();
    let doc = DocId::random();
    let h = referral_header(&a, doc);
    assert_eq!(
        verify_header(&h, &doc, &a).unwrap().parties,
        Parties::Referral {
            from: a.tc.code(),
            to: a.ch.code()
        }
    );
    let Header::Signed(s) = &h else {
        unreachable!()
    };
    let mut widened = s.clone();
    widened.header.audience.insert("TC-02".parse().unwrap());
    assert!(matches!(
        verify_header(&Header::Signed(widened), &doc, &a),
        Err(HeaderRefusal::Header(HeaderError::BadSignature(_)))
    ));
    let mut everyone = s.clone();
    everyone.header.audience.insert(FacilityCode::everyone());
    assert!(matches!(
        verify_header(&Header::Signed(everyone), &doc, &a),
        Err(HeaderRefusal::Header(HeaderError::BadSignature(_)))
    ));
    let mut kind = s.clone();
    kind.header.kind = DocKind::Note;
    assert!(matches!(
        verify_header(&Header::Signed(kind), &doc, &a),
        Err(HeaderRefusal::Header(HeaderError::BadSignature(_)))
    ));
    let mut parties = s.clone();
    parties.header.parties = Parties::Referral {
        from: a.tc.code(),
        to: a.tc2.code(),
    };
    assert!(matches!(
        verify_header(&Header::Signed(parties), &doc, &a),
        Err(HeaderRefusal::Header(HeaderError::BadSignature(_)))
    ));
    // Onto another document.
    let other = DocId::random();
    assert_eq!(
        verify_header(&h, &other, &a),
        Err(HeaderRefusal::Header(HeaderError::WrongDocument {
            header: doc,
            doc: other
        }))
    );
}

#[test]
fn a_header_is_created_only_by_who_may_create_that_document() {
    let mut a = Alliance::new();
    let doc = DocId::random();
    // TC-01 cannot create a referral sent by CH-01.
    let h = signed_header(
        &a.tc,
        doc,
        DocKind::Referral,
        &["TC-01", "CH-01"],
        Parties::Referral {
            from: a.ch.code(),
            to: a.tc.code(),
        },
        SOME_GENESIS,
    );
    let e = verify_header(&h, &doc, &a).unwrap_err();
    assert!(matches!(
        e,
        HeaderRefusal::Rule(RuleViolation::NotAllowed { .. })
    ));
    assert!(
        e.to_string().contains("only the sending facility CH-01"),
        "{e}"
    );
    // A referral held by a third facility.
    let h = signed_header(
        &a.tc,
        doc,
        DocKind::Referral,
        &["TC-01", "CH-01", "TC-02"],
        Parties::Referral {
            from: a.tc.code(),
            to: a.ch.code(),
        },
        SOME_GENESIS,
    );
    assert!(matches!(
        verify_header(&h, &doc, &a),
        Err(HeaderRefusal::Rule(RuleViolation::Malformed(_)))
    ));
    // A result performed by another facility.
    let h = signed_header(
        &a.tc,
        doc,
        DocKind::Result,
        &["*"],
        Parties::Result {
            performer: a.ch.code(),
        },
        SOME_GENESIS,
    );
    assert!(matches!(
        verify_header(&h, &doc, &a),
        Err(HeaderRefusal::Rule(RuleViolation::NotAllowed { .. }))
    ));
    // QC certifications: the county hospital, or the qc role.
    let qc = |n: &Node| signed_header(n, doc, DocKind::QcCert, &["*"], Parties::None, SOME_GENESIS);
    assert!(verify_header(&qc(&a.ch), &doc, &a).is_ok());
    assert!(matches!(
        verify_header(&qc(&a.tc), &doc, &a),
        Err(HeaderRefusal::Rule(RuleViolation::NotAllowed { .. }))
    ));
    a.tc.claims.roles.push(Role::Qc);
    assert!(verify_header(&qc(&a.tc), &doc, &a).is_ok());
    // Parties that do not fit the kind.
    let h = signed_header(
        &a.tc,
        doc,
        DocKind::Note,
        &["TC-01"],
        Parties::None,
        SOME_GENESIS,
    );
    assert!(matches!(
        verify_header(&h, &doc, &a),
        Err(HeaderRefusal::Rule(RuleViolation::Malformed(_)))
    ));
    // Well-known kinds are never created with a signed header.
    let h = signed_header(
        &a.tc,
        doc,
        DocKind::Stock,
        &["*"],
        Parties::Owner {
            facility: a.tc.code(),
        },
        SOME_GENESIS,
    );
    assert_eq!(
        verify_header(&h, &doc, &a),
        Err(HeaderRefusal::Header(HeaderError::WellKnownKind(
            DocKind::Stock
        )))
    );
    // An unknown creator waits.
    a.hidden.insert(a.tc.id());
    assert_eq!(
        verify_header(&referral_header(&a, doc), &doc, &a),
        Err(HeaderRefusal::UnknownCreator(a.tc.id()))
    );
}

#[test]
fn well_known_names_are_the_ones_the_documents_use() {
    let tc: FacilityCode = "TC-01".parse().unwrap();
    assert_eq!(WellKnown::catalog().doc_id(), catalog::catalog_id());
    assert_eq!(WellKnown::stock(&tc).doc_id(), catalog::stock_id("TC-01"));
    assert_eq!(
        WellKnown::dispensing(&tc, "2026-06").doc_id(),
        dispensing::summary_id("TC-01", "2026-06")
    );
    let f = WellKnown::dispensing(&tc, "2026-06")
        .verify(&dispensing::summary_id("TC-01", "2026-06"))
        .unwrap();
    assert_eq!(f.kind, DocKind::Dispensing);
    assert_eq!(
        f.parties,
        Parties::Owner {
            facility: tc.clone()
        }
    );
    assert!(f.audience.contains(&"TC-09".parse().unwrap()));
    assert_eq!(
        f.well_known,
        Some(WellKnownName::Dispensing {
            facility: tc.clone(),
            period: "2026-06".into()
        })
    );
    let s = WellKnown::stock(&tc)
        .verify(&catalog::stock_id("TC-01"))
        .unwrap();
    assert_eq!(
        (s.kind, s.parties),
        (DocKind::Stock, Parties::Owner { facility: tc })
    );
}

#[test]
fn a_well_known_header_with_a_wrong_name_is_refused() {
    let a = Alliance::new();
    let stock = catalog::stock_id("TC-01");
    // Another facility's name for TC-01's stock document: it would make TC-02 its owner.
    let wrong = Header::WellKnown(WellKnown::stock(&"TC-02".parse().unwrap()));
    assert!(matches!(
        verify_header(&wrong, &stock, &a),
        Err(HeaderRefusal::Header(HeaderError::NameMismatch { .. }))
    ));
    for name in [
        "yilian/stock/v1/tc-01",
        "yilian/stock/v1/*",
        "yilian/stock/v1/",
        "yilian/dispensing/v1/TC-01/2026-6",
        "yilian/dispensing/v1/TC-01/2026-13",
        "yilian/dispensing/v1/TC-01",
        "yilian/catalog/v2",
        "anything",
    ] {
        let h = Header::WellKnown(WellKnown { name: name.into() });
        assert!(
            matches!(
                verify_header(&h, &DocId::derived(name), &a),
                Err(HeaderRefusal::Header(HeaderError::BadName(_)))
            ),
            "{name}"
        );
    }
}

#[test]
fn headers_round_trip_and_refuse_unknown_encodings() {
    let a = Alliance::new();
    let doc = DocId::random();
    for h in [
        referral_header(&a, doc),
        Header::WellKnown(WellKnown::catalog()),
    ] {
        let bytes = h.encode().unwrap();
        assert_eq!(Header::decode(&bytes).unwrap(), h);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(Header::decode(&newer), Err(HeaderError::UnknownFormat(2)));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Header::decode(&trailing),
            Err(HeaderError::Decode(_))
        ));
        assert!(matches!(
            Header::decode(&bytes[..bytes.len() - 1]),
            Err(HeaderError::Decode(_))
        ));
    }
    assert!(matches!(Header::decode(&[]), Err(HeaderError::Decode(_))));
    // Round-tripped, the signature still verifies.
    let h = Header::decode(&referral_header(&a, doc).encode().unwrap()).unwrap();
    assert!(verify_header(&h, &doc, &a).is_ok());
}

#[test]
fn legacy_attestations_bind_the_document_and_the_set_of_heads() {
    let a = Alliance::new();
    let doc = DocId::random();
    let h1 = one_change(&a.tc).hash();
    let h2 = one_change(&a.tc2).hash();
    let sig = a.ch.signer.sign_legacy(&doc, &[h1, h2]);
    let pk = a.ch.signer.public_key();
    assert!(verify_legacy(a.ch.id(), &pk, &doc, &[h2, h1, h2], &sig).is_ok());
    assert!(verify_legacy(a.ch.id(), &pk, &doc, &[h1], &sig).is_err());
    assert!(verify_legacy(a.ch.id(), &pk, &DocId::random(), &[h1, h2], &sig).is_err());
    // Domain separation: a change signature over the same bytes is not an attestation.
    let change_sig = a.ch.signer.sign_change(&doc, &h1);
    assert!(verify_legacy(a.ch.id(), &pk, &doc, &[h1], &change_sig).is_err());
    assert!(sign::change_message(&doc, &h1).starts_with(b"yilian/change/v1\0"));
    assert_eq!(sign::change_message(&doc, &h1).len(), 17 + 16 + 32);
}
