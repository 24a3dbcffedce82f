//! Documents made of records under root keys (the drug catalog, a facility's stock rows, a
//! dispensing summary). Such documents have well-known ids ([`crate::ids::DocId::derived`]), so
//! two nodes may create the same one independently: keeping every record directly under the
//! root (never inside a shared container created at creation) lets their histories merge
//! record by record instead of one creation hiding the other.

use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, Value};
use autosurgeon::{Hydrate, Reconcile};

/// Writes records (and root scalars) in one Automerge transaction: all or nothing.
pub fn put_all<'a, T: Reconcile + 'a>(
    doc: &mut Automerge,
    scalars: &[(&str, ScalarValue)],
    records: impl IntoIterator<Item = (&'a str, &'a T)>,
) -> Result<(), String> {
    doc.transact::<_, _, autosurgeon::ReconcileError>(|tx| {
        use automerge::transaction::Transactable;
        for (k, v) in scalars {
            let same = matches!(
                tx.get(automerge::ROOT, *k)?,
                Some((Value::Scalar(cur), _)) if cur.as_ref() == v
            );
            if !same {
                tx.put(automerge::ROOT, *k, v.clone())?;
            }
        }
        for (key, value) in records {
            autosurgeon::reconcile_prop(tx, automerge::ROOT, key, value)?;
        }
        Ok(())
    })
    .map(|_| ())
    .map_err(|f| f.error.to_string())
}

/// Every record (a map under a root key), hydrated; keys whose record cannot be read are
/// returned as errors so a caller can name them instead of dropping them silently.
pub fn records<T: Hydrate>(doc: &Automerge) -> Vec<(String, Result<T, String>)> {
    doc.keys(automerge::ROOT)
        .filter(|k| {
            matches!(
                doc.get(automerge::ROOT, k.as_str()),
                Ok(Some((Value::Object(ObjType::Map), _)))
            )
        })
        .map(|k| {
            let r = autosurgeon::hydrate_prop(doc, &automerge::ROOT, k.as_str())
                .map_err(|e| e.to_string());
            (k, r)
        })
        .collect()
}

/// One record, if present.
pub fn record<T: Hydrate>(doc: &Automerge, key: &str) -> Result<Option<T>, String> {
    match doc.get(automerge::ROOT, key) {
        Ok(Some((Value::Object(ObjType::Map), _))) => {
            autosurgeon::hydrate_prop(doc, &automerge::ROOT, key)
                .map(Some)
                .map_err(|e| format!("record {key}: {e}"))
        }
        _ => Ok(None),
    }
}

/// A root text scalar, if present.
pub fn scalar_str(doc: &Automerge, key: &str) -> Option<String> {
    match doc.get(automerge::ROOT, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
    struct Rec {
        n: u64,
        s: String,
    }

    #[test]
    fn independently_created_documents_merge_record_by_record() {
        let mut a = Automerge::new();
        let mut b = Automerge::new();
        let r1 = Rec {
            n: 1,
            s: "a".into(),
        };
        let r2 = Rec {
            n: 2,
            s: "b".into(),
        };
        put_all(&mut a, &[("facility", "TC-01".into())], [("k1", &r1)]).unwrap();
        put_all(&mut b, &[("facility", "TC-01".into())], [("k2", &r2)]).unwrap();
        a.merge(&mut b).unwrap();
        let got: Vec<(String, Rec)> = records(&a)
            .into_iter()
            .map(|(k, r)| (k, r.unwrap()))
            .collect();
        assert_eq!(got, vec![("k1".into(), r1), ("k2".into(), r2.clone())]);
        assert_eq!(scalar_str(&a, "facility").as_deref(), Some("TC-01"));
        assert_eq!(record::<Rec>(&a, "k2").unwrap(), Some(r2));
        assert_eq!(record::<Rec>(&a, "facility").unwrap(), None);
        // Rewriting the same scalar adds no change.
        let heads = a.get_heads();
        put_all::<Rec>(&mut a, &[("facility", "TC-01".into())], []).unwrap();
        assert_eq!(a.get_heads(), heads);
    }
}
