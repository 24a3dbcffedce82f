//! Repairing a document whose history forked under one actor id: two copies hold different
//! changes with the same (actor, seq), and Automerge refuses to merge them ("duplicate seq").
//!
//! yilian before issue 13 could write such changes: a node restored from a backup kept the
//! actor id of the backup, and an edit made before it learned of the restore took a sequence
//! number that the lost, newer history had already used. Every process now writes with an actor
//! id of its own (see `storage`), so new forks cannot arise; this module mends the old ones.
//!
//! Only the node whose actor id it is may repair (the actor id begins with its node id): it
//! takes the other copy's whole document and re-creates its own forked changes on top of it
//! under a fresh actor id of its own, with the same operations, messages and times. Local changes
//! that were built on the forked ones are rewritten to point at the re-created ones. The result
//! holds everything both copies held; the peers then receive the re-created changes as ordinary
//! new changes.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, SortedVec};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};

use crate::identity::{actor_id, node_of_actor, random_bytes};
use crate::ids::NodeId;

/// Why a forked document was not repaired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The two copies hold no conflicting changes.
    #[error("the two copies do not conflict")]
    NoFork,
    /// The conflicting changes are written under another node's actor id: only that node can
    /// repair them.
    #[error(
        "changes {seq} and later of actor {actor} differ between the two copies, and that actor is not this node's (only the node that wrote them can repair them)"
    )]
    NotOurs {
        /// The actor id, hex.
        actor: String,
        /// The first sequence number the copies disagree on.
        seq: u64,
    },
    /// Re-creating the changes failed.
    #[error("the forked changes could not be re-created: {0}")]
    Rewrite(String),
}

/// A repaired document.
#[derive(Debug)]
pub struct Repaired {
    /// Everything of the other copy, plus this node's changes (the forked ones re-created).
    pub doc: Automerge,
    /// How many changes were re-created under a fresh actor id.
    pub moved: usize,
    /// How many later changes were rewritten to point at them.
    pub rewritten: usize,
}

/// Merges `local` (this node's copy) into `remote` (the whole document of another copy),
/// re-creating under fresh actor ids every local change that collides with one of `remote`
/// under the same (actor, seq), when that actor is one of `node`'s. Neither input changes.
pub fn repair(local: &Automerge, remote: &Automerge, node: NodeId) -> Result<Repaired, ForkError> {
    let remote_changes = remote.get_changes(&[]);
    let remote_hashes: HashSet<ChangeHash> = remote_changes.iter().map(|c| c.hash()).collect();
    let mut remote_seq: HashMap<ActorId, u64> = HashMap::new();
    for c in &remote_changes {
        let s = remote_seq.entry(c.actor_id().clone()).or_default();
        *s = (*s).max(c.seq());
    }
    let local_only: Vec<Change> = local
        .get_changes(&[])
        .into_iter()
        .filter(|c| !remote_hashes.contains(&c.hash()))
        .collect();

    // Per forked actor: the first sequence number the copies disagree on.
    let mut forked: HashMap<ActorId, u64> = HashMap::new();
    for c in &local_only {
        if remote_seq.get(c.actor_id()).is_some_and(|s| *s >= c.seq()) {
            let first = forked.entry(c.actor_id().clone()).or_insert(c.seq());
            *first = (*first).min(c.seq());
        }
    }
    if forked.is_empty() {
        return Err(ForkError::NoFork);
    }
    for (actor, seq) in &forked {
        if node_of_actor(actor) != Some(node) {
            return Err(ForkError::NotOurs {
                actor: actor.to_hex_string(),
                seq: *seq,
            });
        }
    }
    // Operations of a forked actor from its first forked change on belong to the forked
    // changes (an actor's operation counters grow with its sequence numbers).
    let mut moved_from: HashMap<ActorId, (u64, ActorId)> = HashMap::new();
    for c in &local_only {
        if forked.get(c.actor_id()) == Some(&c.seq()) {
            let fresh = actor_id(node, random_bytes());
            moved_from.insert(c.actor_id().clone(), (c.start_op().get(), fresh));
        }
    }
    let remap = |id: &OpId| -> OpId {
        match moved_from.get(id.actor()) {
            Some((first, fresh)) if id.counter() >= *first => OpId(id.counter(), fresh.clone()),
            _ => id.clone(),
        }
    };

    let mut new_hash: HashMap<ChangeHash, ChangeHash> = HashMap::new();
    let mut next_seq: HashMap<ActorId, u64> = HashMap::new();
    let (mut moved, mut rewritten) = (0, 0);
    let mut out = Vec::with_capacity(local_only.len());
    for c in causal_order(local_only)? {
        let is_forked = forked
            .get(c.actor_id())
            .is_some_and(|first| c.seq() >= *first);
        if !is_forked && !c.deps().iter().any(|d| new_hash.contains_key(d)) {
            out.push(c);
            continue;
        }
        let mut e = c.decode();
        if is_forked {
            let Some((_, fresh)) = moved_from.get(c.actor_id()) else {
                return Err(ForkError::Rewrite(format!(
                    "no first forked change for actor {}",
                    c.actor_id()
                )));
            };
            let seq = next_seq.entry(fresh.clone()).or_insert(0);
            *seq += 1;
            e.actor_id = fresh.clone();
            e.seq = *seq;
            moved += 1;
        } else {
            rewritten += 1;
        }
        e.hash = None;
        e.author = None;
        e.deps = e
            .deps
            .iter()
            .map(|d| *new_hash.get(d).unwrap_or(d))
            .collect();
        for op in &mut e.operations {
            if let ObjectId::Id(id) = &op.obj {
                op.obj = ObjectId::Id(remap(id));
            }
            if let Key::Seq(ElementId::Id(id)) = &op.key {
                op.key = Key::Seq(ElementId::Id(remap(id)));
            }
            let pred: Vec<OpId> = op.pred.iter().map(&remap).collect();
            op.pred = SortedVec::from(pred);
        }
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Change::from(e)))
            .map_err(|p| ForkError::Rewrite(crate::storage::panic_text(&p)))?;
        new_hash.insert(c.hash(), encoded.hash());
        out.push(encoded);
    }

    let mut doc = remote.clone();
    for c in out {
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.apply_changes([c])))
                .map_err(|p| ForkError::Rewrite(crate::storage::panic_text(&p)))?;
        applied.map_err(|e| ForkError::Rewrite(e.to_string()))?;
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(ForkError::Rewrite(
            "the result misses changes it depends on".into(),
        ));
    }
    Ok(Repaired {
        doc,
        moved,
        rewritten,
    })
}

/// The changes ordered so that each comes after those of its dependencies that are among them.
fn causal_order(changes: Vec<Change>) -> Result<Vec<Change>, ForkError> {
    let hashes: HashSet<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
    let mut pending: Vec<Change> = changes;
    let mut done: HashSet<ChangeHash> = HashSet::new();
    let mut out = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for c in pending {
            if c.deps()
                .iter()
                .all(|d| !hashes.contains(d) || done.contains(d))
            {
                done.insert(c.hash());
                out.push(c);
            } else {
                rest.push(c);
            }
        }
        if rest.len() == before {
            return Err(ForkError::Rewrite(
                "the changes depend on each other".into(),
            ));
        }
        pending = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};

    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    fn entries(doc: &Automerge) -> Vec<String> {
        let json = crate::documents::to_json(doc);
        json["entries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn push(doc: &mut Automerge, text: &str) {
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let list = match tx.get(ROOT, "entries")? {
                Some((_, id)) => id,
                None => tx.put_object(ROOT, "entries", ObjType::List)?,
            };
            let n = tx.length(&list);
            tx.insert(&list, n, text)?;
            Ok(())
        })
        .unwrap();
    }

    /// A document both copies share, then each copy's own history under the same actor id.
    fn forked(owner: NodeId) -> (Automerge, Automerge, ActorId) {
        let reused = actor_id(owner, [9; 8]);
        let mut base = Automerge::new().with_actor(actor_id(owner, [1; 8]));
        push(&mut base, "shared");
        // The copy that went on (what the county holds): two edits under `reused`.
        let mut remote = base.fork().with_actor(reused.clone());
        push(&mut remote, "lost 1");
        push(&mut remote, "lost 2");
        // The restored copy: one edit under the same actor, then a later process's edit on top.
        let mut local = base.fork().with_actor(reused.clone());
        push(&mut local, "forked");
        local.set_actor(actor_id(owner, [3; 8]));
        push(&mut local, "after the fork");
        (local, remote, reused)
    }

    #[test]
    fn the_owner_recreates_its_forked_changes_and_keeps_everything() {
        let (local, remote, _) = forked(node(7));
        let mut check = remote.clone();
        assert!(
            check.merge(&mut local.clone()).is_err(),
            "the copies should refuse to merge"
        );
        let r = repair(&local, &remote, node(7)).unwrap();
        assert_eq!((r.moved, r.rewritten), (1, 1));
        let mut e = entries(&r.doc);
        e.sort();
        assert_eq!(
            e,
            ["after the fork", "forked", "lost 1", "lost 2", "shared"]
        );
        // The other copy takes the repaired one as ordinary new changes.
        let mut county = remote.clone();
        county.merge(&mut r.doc.clone()).unwrap();
        assert_eq!(county.get_heads(), r.doc.get_heads());
        // Every change of the result has a distinct (actor, seq).
        let mut seen = HashSet::new();
        for c in r.doc.get_changes(&[]) {
            assert!(seen.insert((c.actor_id().clone(), c.seq())));
        }
    }

    #[test]
    fn another_nodes_fork_is_left_to_that_node() {
        let (local, remote, reused) = forked(node(7));
        assert_eq!(
            repair(&local, &remote, node(8)).unwrap_err(),
            ForkError::NotOurs {
                actor: reused.to_hex_string(),
                seq: 1
            }
        );
    }

    #[test]
    fn copies_that_do_not_conflict_are_not_a_fork() {
        let (local, _, _) = forked(node(7));
        let mut ahead = local.fork().with_actor(actor_id(node(7), [4; 8]));
        push(&mut ahead, "more");
        assert_eq!(
            repair(&ahead, &local, node(7)).unwrap_err(),
            ForkError::NoFork
        );
    }
}
