//! The structural verifier: checks a change against everything the document already holds,
//! without asking Automerge anything, and says what the change touches.
//!
//! Automerge 0.12 panics on, or silently corrupts a document with, changes that are well formed
//! but structurally hostile (research note `automerge-trust.md`, section 4): an unknown actor,
//! a sequence gap, an op on an object or element that does not exist, a pred at another key
//! (a "put x" that deletes "y"), a delete without pred, duplicate op ids, op counters near
//! `u32::MAX`. A [`Shadow`] keeps, per document, just enough to refuse all of them: every op's
//! object and slot (map key or list element), every object's type and parent, every change's
//! highest op counter and causal clock, and each actor's sequence. The checks depend only on the
//! change and its causal past, so every node decides the same way.
//!
//! Each accepted change yields its [`Touch`]es: for every op, the path from the root to the
//! slot it writes (list elements named by element id, whose actor is their creator), the
//! creator of every object along that path, the action with the scalar value put, and the
//! authors of the values it replaces. The write rules ([`super::rules`]) judge those.
//!
//! Only what Automerge's own transactions produce is accepted: `seq` follows the actor's last
//! one and the actor's previous change is a direct dependency; `start_op` is one more than the
//! highest op of the dependencies; ops make maps and lists, put non-counter scalars or delete;
//! inserts have no pred; deletes and list updates have at least one; every pred is a value
//! visible at the same object and slot in the change's causal past (or put earlier in the
//! change), and a put names every such value: a put that left one unnamed would win the
//! conflict against it and hide it without the rules ever seeing it replaced (a delete may name
//! some only, as Automerge does when it resolves a conflict in favour of the winner). A second
//! change with a known (actor, seq) and another hash is equivocation.
//!
//! Checking and adding are separate ([`Shadow::check`], [`Shadow::add`]) so a change that
//! passes the structure but fails the rules is never added: whatever depends on it is then
//! refused as depending on an unknown op.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::legacy as lg;
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ObjType, ScalarValue};

use super::guard;

/// Highest op counter accepted: far below `u32::MAX`, where Automerge panics (and where one
/// change would wedge every later local transaction on the document).
pub(crate) const MAX_OP_COUNTER: u64 = u32::MAX as u64 / 2;
/// Deepest nesting of objects accepted (yilian's documents nest 4 deep).
pub(crate) const MAX_DEPTH: usize = 32;

/// (op counter, actor index in [`Shadow::actors`]).
type OpKey = (u64, u32);
const ROOT: OpKey = (0, u32::MAX);

/// A list element, named by the id of the insert that created it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ElemId {
    /// Op counter of the insert.
    pub(crate) counter: u64,
    /// The actor that inserted it: the element's creator.
    pub(crate) creator: ActorId,
}

/// One step of a path from the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// A map key.
    Key(String),
    /// A list element.
    Elem(ElemId),
}

impl Step {
    /// The key, if this step is a map key.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Step::Key(k) => Some(k),
            Step::Elem(_) => None,
        }
    }
}

/// What an op does at its slot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Puts a scalar at a map key or over a list element.
    Put(ScalarValue),
    /// Puts a new map or list at a map key or over a list element.
    Make(ObjType),
    /// Inserts a new list element holding a scalar.
    Insert(ScalarValue),
    /// Inserts a new list element holding a new map or list.
    InsertMake(ObjType),
    /// Deletes the value at a map key or a list element.
    Delete,
}

impl Action {
    /// Whether the op creates a new list element.
    pub(crate) fn is_insert(&self) -> bool {
        matches!(self, Action::Insert(_) | Action::InsertMake(_))
    }
}

/// What one op of a change touches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Touch {
    /// Steps from the root to the slot written, the slot included.
    pub(crate) path: Vec<Step>,
    /// For each step, the creator (actor) of the object holding it: `None` for the root.
    /// `holders[i]` made the object in which `path[i]` is a key or element.
    pub(crate) holders: Vec<Option<ActorId>>,
    /// What the op does.
    pub(crate) action: Action,
    /// Authors (actors) of the values the op overwrites or deletes (its preds).
    pub(crate) replaces: Vec<ActorId>,
}

impl Touch {
    /// The path as text for messages: keys by name, elements as `[counter@actor-prefix]`.
    pub(crate) fn path_text(&self) -> String {
        let parts: Vec<String> = self
            .path
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.clone(),
                Step::Elem(e) => {
                    let hex = e.creator.to_hex_string();
                    format!("[{}@{}]", e.counter, &hex[..hex.len().min(8)])
                }
            })
            .collect();
        parts.join("/")
    }
}

/// Why a change does not fit the document's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ShadowError {
    /// The document already holds it.
    #[error("the document already holds change {0}")]
    AlreadyHave(ChangeHash),
    /// An author footer or other trailing bytes.
    #[error("the change carries extra bytes (an author footer)")]
    ExtraBytes,
    /// Another change with the same actor and sequence number is known.
    #[error("equivocation: change {other} already has sequence number {seq} of actor {actor}")]
    Equivocation {
        /// The actor.
        actor: ActorId,
        /// The sequence number.
        seq: u64,
        /// The change that holds it.
        other: ChangeHash,
    },
    /// A dependency is not known (yet).
    #[error("it depends on change {0}, which this node does not hold")]
    MissingDependency(ChangeHash),
    /// Dependencies repeated or out of order.
    #[error("its dependencies are not sorted and distinct")]
    UnsortedDependencies,
    /// The sequence number does not follow the actor's last one.
    #[error("sequence number {seq} does not follow the actor's last one, {last}")]
    SeqGap {
        /// The change's.
        seq: u64,
        /// The actor's last.
        last: u64,
    },
    /// The actor's previous change is not a direct dependency.
    #[error("it does not build on its author's previous change (sequence number {0})")]
    PreviousNotADependency(u64),
    /// Op counters do not start right after the dependencies'.
    #[error("its op counter starts at {start}, but its dependencies end at {}", expected - 1)]
    StartOp {
        /// The change's start.
        start: u64,
        /// One more than the highest op of its dependencies.
        expected: u64,
    },
    /// Op counters too large.
    #[error("its op counters reach {0}, far beyond what any document uses")]
    CounterTooLarge(u64),
    /// Refers to an actor the document does not know.
    #[error("op {op} refers to actor {actor}, unknown in this document")]
    UnknownActor {
        /// Index of the op in the change (`usize::MAX`: the change's actor table).
        op: usize,
        /// The actor.
        actor: ActorId,
    },
    /// Writes into an object that does not exist (in its causal past).
    #[error("op {op} writes into object {obj}, which does not exist in the change's causal past")]
    UnknownObject {
        /// Index of the op.
        op: usize,
        /// The object id.
        obj: String,
    },
    /// Writes into something that is not an object.
    #[error("op {op} writes into {obj}, which is a value, not an object")]
    NotAnObject {
        /// Index of the op.
        op: usize,
        /// The id.
        obj: String,
    },
    /// A map key on a list, an element or insert on a map.
    #[error("op {op} uses a key that does not fit a {typ}")]
    KeyKind {
        /// Index of the op.
        op: usize,
        /// The object's type.
        typ: String,
    },
    /// A list element that does not exist in that list (in its causal past).
    #[error("op {op} names a list element that does not exist in that list")]
    UnknownElement {
        /// Index of the op.
        op: usize,
    },
    /// An action yilian never writes.
    #[error("op {op} does something yilian never writes ({action})")]
    ActionNotAllowed {
        /// Index of the op.
        op: usize,
        /// The action.
        action: String,
    },
    /// An insert claiming to overwrite something.
    #[error("op {op} inserts but claims to overwrite earlier values")]
    InsertWithPred {
        /// Index of the op.
        op: usize,
    },
    /// A delete or list update that names nothing it replaces.
    #[error("op {op} deletes or updates without naming the value it replaces")]
    MissingPred {
        /// Index of the op.
        op: usize,
    },
    /// A pred that is not an earlier value at the same place.
    #[error("op {op} claims to replace {pred}, which is not an earlier value at the same place")]
    BadPred {
        /// Index of the op.
        op: usize,
        /// The pred.
        pred: String,
    },
    /// A put that does not replace every value visible at its place: it would win a conflict
    /// against the values it leaves unnamed and hide them.
    #[error("op {op} does not replace every value visible at its place: it would hide the others")]
    PartialPreds {
        /// Index of the op.
        op: usize,
    },
    /// Objects nested too deep.
    #[error("op {op} nests objects more than {MAX_DEPTH} deep")]
    TooDeep {
        /// Index of the op.
        op: usize,
    },
    /// A [`Checked`] from before the shadow last changed.
    #[error("the check is stale: the shadow changed since")]
    Stale,
    /// Automerge panicked decoding it.
    #[error("decoding the change crashed Automerge: {0}")]
    Panicked(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Key(String),
    Elem(OpKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct OpEntry {
    obj: OpKey,
    slot: Slot,
}

/// An object and a slot in it: where ops meet.
type Place = (OpKey, Slot);

#[derive(Clone, Debug)]
struct ObjEntry {
    typ: ObjType,
    parent: OpKey,
    slot: Slot,
    depth: usize,
}

#[derive(Clone, Debug)]
struct ChangeEntry {
    max_op: u64,
    /// Highest op counter per actor index in the change's causal past, itself included.
    clock: Arc<[u64]>,
}

/// The structural index of one document.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shadow {
    actors: Vec<ActorId>,
    actor_idx: HashMap<ActorId, u32>,
    last_seq: Vec<u64>,
    /// Every non-delete op: its object and slot.
    ops: HashMap<OpKey, OpEntry>,
    /// The ops that replaced or deleted each op (its successors).
    succ: HashMap<OpKey, Vec<OpKey>>,
    /// The non-delete ops at each place.
    places: HashMap<Place, Vec<OpKey>>,
    /// Every object (by the id of the op that made it).
    objs: HashMap<OpKey, ObjEntry>,
    changes: HashMap<ChangeHash, ChangeEntry>,
    by_seq: HashMap<(u32, u64), ChangeHash>,
    generation: u64,
}

/// A change that passed [`Shadow::check`], ready for [`Shadow::add`].
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    generation: u64,
    hash: ChangeHash,
    actor: ActorId,
    new_actor: bool,
    me: u32,
    seq: u64,
    max_op: u64,
    clock: Vec<u64>,
    ops: Vec<(OpKey, OpEntry)>,
    objs: Vec<(OpKey, ObjEntry)>,
    /// (replaced op, op replacing it)
    succ: Vec<(OpKey, OpKey)>,
    touches: Vec<Touch>,
}

impl Checked {
    /// What the change touches, op by op.
    pub(crate) fn touches(&self) -> &[Touch] {
        &self.touches
    }

    /// The change's hash.
    pub(crate) fn hash(&self) -> ChangeHash {
        self.hash
    }
}

/// One op of the change being checked.
struct NewOp {
    id: OpKey,
    entry: OpEntry,
    made: Option<(ObjType, usize)>,
    delete: bool,
}

/// Orders changes so every change comes after its dependencies among them (dependencies
/// outside the set are ignored). Keeps the given order where it already is causal; ties and
/// anything in a dependency cycle (impossible with real hashes) keep their input order, cycles
/// last.
pub(crate) fn causal_order(changes: &[Change]) -> Vec<usize> {
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    let mut waiting = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        for d in c.deps() {
            if let Some(&j) = index.get(d)
                && j != i
            {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..changes.len()).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(changes.len());
    while let Some(i) = ready.pop_first() {
        out.push(i);
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.insert(k);
            }
        }
    }
    if out.len() < changes.len() {
        let placed: std::collections::HashSet<usize> = out.iter().copied().collect();
        out.extend((0..changes.len()).filter(|i| !placed.contains(i)));
    }
    out
}

fn op_text(id: &lg::OpId) -> String {
    format!("{}@{}", id.counter(), id.actor())
}

impl Shadow {
    /// An empty shadow (an empty document).
    pub(crate) fn new() -> Shadow {
        Shadow::default()
    }

    /// The shadow of a document from its changes (any order in which dependencies come first
    /// is fine; others are sorted). Fails on the first change that does not fit, naming it.
    pub(crate) fn from_changes(changes: &[Change]) -> Result<Shadow, (ChangeHash, ShadowError)> {
        let mut s = Shadow::new();
        for i in causal_order(changes) {
            let c = &changes[i];
            if s.contains(&c.hash()) {
                continue;
            }
            let checked = s.check(c).map_err(|e| (c.hash(), e))?;
            s.add(checked).map_err(|e| (c.hash(), e))?;
        }
        Ok(s)
    }

    /// Whether the document holds change `h`.
    pub(crate) fn contains(&self, h: &ChangeHash) -> bool {
        self.changes.contains_key(h)
    }

    /// How many changes the document holds.
    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether the document holds no change.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The change holding (actor, seq), if any.
    pub(crate) fn hash_at(&self, actor: &ActorId, seq: u64) -> Option<ChangeHash> {
        let i = self.actor_idx.get(actor)?;
        self.by_seq.get(&(*i, seq)).copied()
    }

    /// The actor's last sequence number (0 if unknown).
    pub(crate) fn last_seq(&self, actor: &ActorId) -> u64 {
        self.actor_idx
            .get(actor)
            .map_or(0, |i| self.last_seq[*i as usize])
    }

    /// Checks a change against the document without changing anything.
    pub(crate) fn check(&self, c: &Change) -> Result<Checked, ShadowError> {
        if self.changes.contains_key(&c.hash()) {
            return Err(ShadowError::AlreadyHave(c.hash()));
        }
        let e = guard(|| c.decode()).map_err(|p| ShadowError::Panicked(p.0))?;
        self.check_decoded(c, &e)
    }

    /// Adds a change that passed [`Shadow::check`] on this very state.
    pub(crate) fn add(&mut self, k: Checked) -> Result<(), ShadowError> {
        if k.generation != self.generation {
            return Err(ShadowError::Stale);
        }
        if k.new_actor {
            self.actors.push(k.actor.clone());
            self.actor_idx.insert(k.actor, k.me);
            self.last_seq.push(0);
        }
        for (id, entry) in k.ops {
            self.places
                .entry((entry.obj, entry.slot.clone()))
                .or_default()
                .push(id);
            self.ops.insert(id, entry);
        }
        for (op, by) in k.succ {
            self.succ.entry(op).or_default().push(by);
        }
        for (id, obj) in k.objs {
            self.objs.insert(id, obj);
        }
        self.last_seq[k.me as usize] = k.seq;
        self.by_seq.insert((k.me, k.seq), k.hash);
        self.changes.insert(
            k.hash,
            ChangeEntry {
                max_op: k.max_op,
                clock: k.clock.into(),
            },
        );
        self.generation += 1;
        Ok(())
    }

    /// Checks and adds in one step; nothing is added on error.
    pub(crate) fn check_and_add(&mut self, c: &Change) -> Result<Vec<Touch>, ShadowError> {
        let k = self.check(c)?;
        let touches = k.touches.clone();
        self.add(k)?;
        Ok(touches)
    }

    fn check_decoded(&self, c: &Change, e: &ExpandedChange) -> Result<Checked, ShadowError> {
        let hash = c.hash();
        if !c.extra_bytes().is_empty() || e.author.is_some() {
            return Err(ShadowError::ExtraBytes);
        }
        let actor = c.actor_id();
        let (me, new_actor) = match self.actor_idx.get(actor) {
            Some(i) => (*i, false),
            None => (self.actors.len() as u32, true),
        };
        if new_actor && self.actors.len() >= (u32::MAX - 1) as usize {
            return Err(ShadowError::UnknownActor {
                op: usize::MAX,
                actor: actor.clone(),
            });
        }
        let seq = c.seq();
        if !new_actor && let Some(other) = self.by_seq.get(&(me, seq)) {
            return Err(ShadowError::Equivocation {
                actor: actor.clone(),
                seq,
                other: *other,
            });
        }

        // Dependencies: present, sorted, distinct; the causal clock is their union.
        let n_actors = self.actors.len() + usize::from(new_actor);
        let mut clock = vec![0u64; n_actors];
        let mut dep_max = 0u64;
        let deps = c.deps();
        if deps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ShadowError::UnsortedDependencies);
        }
        for d in deps {
            let dc = self
                .changes
                .get(d)
                .ok_or(ShadowError::MissingDependency(*d))?;
            dep_max = dep_max.max(dc.max_op);
            for (i, v) in dc.clock.iter().enumerate() {
                clock[i] = clock[i].max(*v);
            }
        }

        // Sequence: the next one of this actor, building on its previous change.
        let last = if new_actor {
            0
        } else {
            self.last_seq[me as usize]
        };
        if seq != last + 1 {
            return Err(ShadowError::SeqGap { seq, last });
        }
        if seq > 1 {
            let prev = self.by_seq.get(&(me, seq - 1));
            if !prev.is_some_and(|p| deps.contains(p)) {
                return Err(ShadowError::PreviousNotADependency(seq - 1));
            }
        }

        // Op counters: right after the dependencies', far from overflow.
        let start = c.start_op().get();
        if start != dep_max + 1 {
            return Err(ShadowError::StartOp {
                start,
                expected: dep_max + 1,
            });
        }
        let n_ops = e.operations.len() as u64;
        let max_op = start + n_ops - 1;
        if max_op > MAX_OP_COUNTER {
            return Err(ShadowError::CounterTooLarge(max_op));
        }

        let key_of = |id: &lg::OpId, op: usize| -> Result<OpKey, ShadowError> {
            if id.actor() == actor {
                return Ok((id.counter(), me));
            }
            match self.actor_idx.get(id.actor()) {
                Some(i) => Ok((id.counter(), *i)),
                None => Err(ShadowError::UnknownActor {
                    op,
                    actor: id.actor().clone(),
                }),
            }
        };
        for a in c.other_actor_ids() {
            if a != actor && !self.actor_idx.contains_key(a) {
                return Err(ShadowError::UnknownActor {
                    op: usize::MAX,
                    actor: a.clone(),
                });
            }
        }
        let in_past =
            |k: &OpKey| -> bool { k.0 >= 1 && clock.get(k.1 as usize).is_some_and(|m| k.0 <= *m) };

        let mut new_ops: Vec<NewOp> = Vec::with_capacity(e.operations.len());
        // Non-delete ops of this change at each place, and the ops this change replaced so far.
        let mut local_places: HashMap<Place, Vec<OpKey>> = HashMap::new();
        let mut replaced_here: std::collections::HashSet<OpKey> = Default::default();
        let mut succ_links: Vec<(OpKey, OpKey)> = Vec::new();
        // op key -> index in new_ops, for non-delete ops of this change
        let mut local: HashMap<OpKey, usize> = HashMap::new();
        let mut replaced: Vec<Vec<ActorId>> = Vec::with_capacity(e.operations.len());
        let mut actions: Vec<Action> = Vec::with_capacity(e.operations.len());

        for (i, op) in e.operations.iter().enumerate() {
            let id: OpKey = (start + i as u64, me);
            // The object written into, its type and depth.
            let (obj, typ, depth) = match &op.obj {
                lg::ObjectId::Root => (ROOT, ObjType::Map, 0),
                lg::ObjectId::Id(o) => {
                    let k = key_of(o, i)?;
                    let not_object = || ShadowError::NotAnObject {
                        op: i,
                        obj: op_text(o),
                    };
                    if let Some(j) = local.get(&k) {
                        let (t, d) = new_ops[*j].made.ok_or_else(not_object)?;
                        (k, t, d)
                    } else if in_past(&k) {
                        match self.objs.get(&k) {
                            Some(ob) => (k, ob.typ, ob.depth),
                            None if self.ops.contains_key(&k) => return Err(not_object()),
                            None => {
                                return Err(ShadowError::UnknownObject {
                                    op: i,
                                    obj: op_text(o),
                                });
                            }
                        }
                    } else {
                        return Err(ShadowError::UnknownObject {
                            op: i,
                            obj: op_text(o),
                        });
                    }
                }
            };
            // An element of list `obj`: an insert op into it, in the causal past or earlier here.
            let elem_ok = |k: &OpKey, new_ops: &[NewOp]| -> bool {
                if let Some(j) = local.get(k) {
                    let o = &new_ops[*j].entry;
                    return o.obj == obj && o.slot == Slot::Elem(*k);
                }
                in_past(k)
                    && self
                        .ops
                        .get(k)
                        .is_some_and(|o| o.obj == obj && o.slot == Slot::Elem(*k))
            };
            let key_kind = || ShadowError::KeyKind {
                op: i,
                typ: format!("{typ:?}").to_lowercase(),
            };
            let slot = match (&op.key, typ, op.insert) {
                (lg::Key::Map(k), ObjType::Map, false) => Slot::Key(k.to_string()),
                (lg::Key::Seq(el), ObjType::List, true) => {
                    if let lg::ElementId::Id(after) = el {
                        let k = key_of(after, i)?;
                        if !elem_ok(&k, &new_ops) {
                            return Err(ShadowError::UnknownElement { op: i });
                        }
                    }
                    Slot::Elem(id)
                }
                (lg::Key::Seq(lg::ElementId::Id(el)), ObjType::List, false) => {
                    let k = key_of(el, i)?;
                    if !elem_ok(&k, &new_ops) {
                        return Err(ShadowError::UnknownElement { op: i });
                    }
                    Slot::Elem(k)
                }
                _ => return Err(key_kind()),
            };
            // Only what yilian writes.
            let action = match (&op.action, op.insert) {
                (lg::OpType::Make(t @ (ObjType::Map | ObjType::List)), true) => {
                    Action::InsertMake(*t)
                }
                (lg::OpType::Make(t @ (ObjType::Map | ObjType::List)), false) => Action::Make(*t),
                (lg::OpType::Put(v), ins)
                    if !matches!(v, ScalarValue::Counter(_) | ScalarValue::Unknown { .. }) =>
                {
                    if ins {
                        Action::Insert(v.clone())
                    } else {
                        Action::Put(v.clone())
                    }
                }
                (lg::OpType::Delete, false) => Action::Delete,
                (other, ins) => {
                    return Err(ShadowError::ActionNotAllowed {
                        op: i,
                        action: format!("{other:?}{}", if ins { " (insert)" } else { "" })
                            .chars()
                            .take(80)
                            .collect(),
                    });
                }
            };
            let made = match &action {
                Action::Make(t) | Action::InsertMake(t) => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(ShadowError::TooDeep { op: i });
                    }
                    Some((*t, depth + 1))
                }
                _ => None,
            };
            // Preds: what the op replaces, at the same object and slot, in the causal past
            // (or earlier in this change), never a delete.
            if op.insert && !op.pred.is_empty() {
                return Err(ShadowError::InsertWithPred { op: i });
            }
            let needs_pred =
                matches!(action, Action::Delete) || (typ == ObjType::List && !op.insert);
            if needs_pred && op.pred.is_empty() {
                return Err(ShadowError::MissingPred { op: i });
            }
            // The values visible at this place in the change's causal past, as the change
            // saw them (minus what its earlier ops replaced).
            let place: Place = (obj, slot.clone());
            let mut visible: Vec<OpKey> = self
                .places
                .get(&place)
                .into_iter()
                .flatten()
                .filter(|o| {
                    in_past(o)
                        && !replaced_here.contains(o)
                        && !self.succ.get(o).is_some_and(|ss| ss.iter().any(&in_past))
                })
                .copied()
                .collect();
            visible.extend(
                local_places
                    .get(&place)
                    .into_iter()
                    .flatten()
                    .filter(|o| !replaced_here.contains(o)),
            );
            let mut replaces = Vec::with_capacity(op.pred.len());
            let mut seen_preds: Vec<OpKey> = Vec::with_capacity(op.pred.len());
            for p in op.pred.iter() {
                let pk = key_of(p, i)?;
                if seen_preds.contains(&pk) || !visible.contains(&pk) {
                    return Err(ShadowError::BadPred {
                        op: i,
                        pred: op_text(p),
                    });
                }
                seen_preds.push(pk);
                replaces.push(p.actor().clone());
            }
            if !matches!(action, Action::Delete)
                && !op.insert
                && visible.iter().any(|v| !seen_preds.contains(v))
            {
                return Err(ShadowError::PartialPreds { op: i });
            }
            for p in &seen_preds {
                replaced_here.insert(*p);
                succ_links.push((*p, id));
            }
            let delete = matches!(action, Action::Delete);
            if !delete {
                local.insert(id, new_ops.len());
                local_places.entry(place).or_default().push(id);
            }
            new_ops.push(NewOp {
                id,
                entry: OpEntry { obj, slot },
                made,
                delete,
            });
            replaced.push(replaces);
            actions.push(action);
        }

        // Paths, now that every object this change makes is known.
        let actor_at = |idx: u32| -> ActorId {
            if idx == me {
                actor.clone()
            } else {
                self.actors[idx as usize].clone()
            }
        };
        let step_of = |s: &Slot| match s {
            Slot::Key(k) => Step::Key(k.clone()),
            Slot::Elem((ctr, a)) => Step::Elem(ElemId {
                counter: *ctr,
                creator: actor_at(*a),
            }),
        };
        let holder = |o: OpKey| (o != ROOT).then(|| actor_at(o.1));
        let mut cache: HashMap<OpKey, Vec<(Step, Option<ActorId>)>> = HashMap::new();
        let mut touches = Vec::with_capacity(new_ops.len());
        for ((n, action), replaces) in new_ops.iter().zip(actions).zip(replaced) {
            let mut steps = match cache.get(&n.entry.obj) {
                Some(s) => s.clone(),
                None => {
                    let mut up = Vec::new();
                    let mut cur = n.entry.obj;
                    while cur != ROOT {
                        let (parent, slot) = match local.get(&cur) {
                            Some(j) => (new_ops[*j].entry.obj, &new_ops[*j].entry.slot),
                            None => match self.objs.get(&cur) {
                                Some(o) => (o.parent, &o.slot),
                                // Unreachable: every object was checked above.
                                None => break,
                            },
                        };
                        up.push((step_of(slot), holder(parent)));
                        cur = parent;
                        if up.len() > MAX_DEPTH {
                            break;
                        }
                    }
                    up.reverse();
                    cache.insert(n.entry.obj, up.clone());
                    up
                }
            };
            steps.push((step_of(&n.entry.slot), holder(n.entry.obj)));
            let (path, holders) = steps.into_iter().unzip();
            touches.push(Touch {
                path,
                holders,
                action,
                replaces,
            });
        }

        clock[me as usize] = clock[me as usize].max(max_op);
        let mut ops = Vec::with_capacity(new_ops.len());
        let mut objs = Vec::new();
        for n in new_ops {
            if n.delete {
                continue;
            }
            if let Some((typ, depth)) = n.made {
                objs.push((
                    n.id,
                    ObjEntry {
                        typ,
                        parent: n.entry.obj,
                        slot: n.entry.slot.clone(),
                        depth,
                    },
                ));
            }
            ops.push((n.id, n.entry));
        }
        Ok(Checked {
            generation: self.generation,
            hash,
            actor: actor.clone(),
            new_actor,
            me,
            seq,
            max_op,
            clock,
            ops,
            objs,
            succ: succ_links,
            touches,
        })
    }
}
