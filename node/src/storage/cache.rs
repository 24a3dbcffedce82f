//! The bounded cache of loaded documents. A loaded Automerge document costs ~18 KiB of heap,
//! so a node with 100,000 documents keeps only the most recently used ones in memory.

use std::num::NonZeroUsize;

use automerge::Automerge;
use lru::LruCache;

use crate::ids::DocId;

/// Loaded documents, least recently used evicted first.
pub(crate) struct DocCache {
    docs: LruCache<DocId, Automerge>,
    hits: u64,
    misses: u64,
}

impl DocCache {
    pub(crate) fn new(capacity: usize) -> DocCache {
        DocCache {
            docs: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn get_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        let found = self.docs.get_mut(id);
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    pub(crate) fn contains(&self, id: &DocId) -> bool {
        self.docs.contains(id)
    }

    pub(crate) fn insert(&mut self, id: DocId, doc: Automerge) -> &mut Automerge {
        self.docs.get_or_insert_mut(id, || doc)
    }

    pub(crate) fn replace(&mut self, id: DocId, doc: Automerge) {
        self.docs.put(id, doc);
    }

    pub(crate) fn evict(&mut self, id: &DocId) {
        self.docs.pop(id);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.docs.cap().get()
    }

    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(crate) fn hits_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}
