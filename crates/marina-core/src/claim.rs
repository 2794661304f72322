//! A claim on one key of a shared set (an operation running here, a cluster
//! being evaluated, a primary being watched): taken only if no one holds it,
//! released when the claim drops — at the end of the work, on an error or in
//! a panic — never by code after an `.await`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::Marina;

/// Where a claim's set lives on `Marina`.
pub(crate) type SetOf = fn(&Marina) -> &Mutex<HashSet<String>>;

/// A held key; dropping it releases the key (then runs `on_release`).
pub(crate) struct Claim {
    app: Arc<Marina>,
    set: SetOf,
    key: String,
    on_release: Option<fn(&Marina)>,
}

impl Claim {
    /// The claim, unless someone holds `key` already.
    pub(crate) fn take(app: &Arc<Marina>, set: SetOf, key: &str) -> Option<Claim> {
        let fresh = set(app)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        fresh.then(|| Claim {
            app: app.clone(),
            set,
            key: key.to_string(),
            on_release: None,
        })
    }

    /// Runs `f` after the key is released.
    pub(crate) fn on_release(mut self, f: fn(&Marina)) -> Claim {
        self.on_release = Some(f);
        self
    }

    /// The control plane the claim was taken on.
    pub(crate) fn app(&self) -> &Arc<Marina> {
        &self.app
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        (self.set)(&self.app)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        if let Some(f) = self.on_release {
            f(&self.app);
        }
    }
}
