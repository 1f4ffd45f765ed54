//! Org contexts kept between executions: loading one reads ~10 tables (the org, its
//! parents, variables, integrations, mapping, directory, forms), which would otherwise be
//! paid by every webhook and every execution start.
//!
//! Each entry is one tenant's (keyed by the name or id it was asked for) and is tagged with
//! the store's configuration generation at the time it was read; the database raises that
//! number on every configuration change by any process, so an entry is used only while
//! nothing it was made of can have changed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::org::OrgContext;

/// At most this many contexts are kept (beyond, the cache starts again empty).
const MAX_ORGS: usize = 4096;

#[derive(Default)]
pub(crate) struct OrgCache {
    entries: HashMap<String, (i64, Arc<OrgContext>)>,
}

impl OrgCache {
    /// The context of `org` when it was loaded at `generation`.
    pub(crate) fn get(&self, org: &str, generation: i64) -> Option<Arc<OrgContext>> {
        match self.entries.get(org) {
            Some((g, ctx)) if *g == generation => Some(ctx.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&mut self, org: &str, generation: i64, ctx: Arc<OrgContext>) {
        // Entries of older generations are of no use any more.
        self.entries.retain(|_, (g, _)| *g == generation);
        if self.entries.len() >= MAX_ORGS {
            self.entries.clear();
        }
        self.entries.insert(org.to_string(), (generation, ctx));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}
