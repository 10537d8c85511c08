//! Publishing in two phases, so a sink's files are delivered exactly once.
//!
//! A sink publishes what it staged inside `writer.commit`. If that made the
//! files visible at once, a process killed between the commit and the
//! saving of the source's state would leave files whose rows the next run
//! reads again: duplicates. So publishes made during a commit are held
//! back: the commit hands them to the pipeline as a [`PendingPublish`],
//! which records them as committed in the same store transaction that
//! saves the state, and only then publishes them. A run killed before that
//! transaction discards them (their rows are read again); one killed after
//! it has them published by the next run ([`ObjectStore::publish_orphan`]).

use std::sync::Arc;

use sluice_codec::{ObjectStore, Staged};

use crate::capability::Journal;

/// A finished object waiting to be published, with the token the journal
/// knows it by.
pub(crate) struct StagedObject {
    pub(crate) object: Box<dyn Staged>,
    /// The token recorded when writing started (none without a journal).
    pub(crate) token: Option<String>,
}

/// One object a commit published, not yet visible.
pub struct Publication {
    /// Its path in the grant.
    pub path: String,
    /// The token its journal record has (from when writing started).
    pub token: Option<String>,
    /// What [`ObjectStore::publish_orphan`] needs to publish it if this
    /// process dies first.
    pub publish_token: Option<String>,
    object: Box<dyn Staged>,
}

/// What one commit published: to record with the state, then publish.
pub struct PendingPublish {
    /// The store the objects are in, for the journal.
    pub location: String,
    journal: Option<Journal>,
    items: Vec<Publication>,
    /// Set once the state the objects belong to is saved: from then on
    /// they are never discarded, only published (now, or by a later run).
    committed: bool,
}

impl std::fmt::Debug for PendingPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPublish")
            .field("location", &self.location)
            .field("objects", &self.items.len())
            .finish()
    }
}

impl PendingPublish {
    pub(crate) fn new(
        store: Option<&Arc<dyn ObjectStore>>,
        journal: Option<Journal>,
        staged: Vec<(String, StagedObject)>,
    ) -> PendingPublish {
        PendingPublish {
            location: store.map(|s| s.location()).unwrap_or_default(),
            journal,
            items: staged
                .into_iter()
                .map(|(path, s)| Publication {
                    publish_token: s.object.staging_token(),
                    object: s.object,
                    token: s.token,
                    path,
                })
                .collect(),
            committed: false,
        }
    }

    /// The state these objects belong to is saved: if they are not
    /// published now, a later run publishes them, so nothing may discard
    /// them any more (not even a panic unwinding past them).
    pub fn mark_committed(&mut self) {
        self.committed = true;
    }

    /// Nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The objects, for the journal: path, token, publish token.
    pub fn publications(&self) -> impl Iterator<Item = &Publication> {
        self.items.iter()
    }

    /// Make every object visible, then forget its journal record. When
    /// one fails, the rest are left as they are (staged, recorded as
    /// committed) for the next run to publish: they belong to saved state.
    ///
    /// # Errors
    /// The first object that could not be published.
    pub fn publish(mut self) -> Result<(), String> {
        let mut items = std::mem::take(&mut self.items).into_iter();
        while let Some(mut item) = items.next() {
            if let Err(e) = item.object.publish() {
                // Not dropped: dropping discards, and these are committed.
                item.object.keep();
                for rest in items {
                    rest.object.keep();
                }
                return Err(format!("{}: {}", item.path, e.message));
            }
            self.settle(item.token.as_deref());
        }
        Ok(())
    }

    /// Discard every object (the commit's state could not be saved): their
    /// rows are read again next time.
    pub fn discard(self) {
        // Dropping does it.
    }

    fn settle(&self, token: Option<&str>) {
        if let (Some(journal), Some(token)) = (&self.journal, token) {
            journal.0.settled(&self.location, token);
        }
    }
}

impl Drop for PendingPublish {
    fn drop(&mut self) {
        for item in std::mem::take(&mut self.items) {
            if self.committed {
                // Recorded as committed: left for the next run to publish.
                item.object.keep();
            } else {
                drop(item.object);
                self.settle(item.token.as_deref());
            }
        }
    }
}
