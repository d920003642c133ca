//! Warnings from deep inside the library (a folder of the artifacts directory that cannot be
//! read, a cache file that is not a regular file) for whoever runs it: the command line sets a
//! handler that prints them; without one they are dropped. Each distinct warning is told once
//! per process.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

type Handler = Box<dyn Fn(&str) + Send + Sync>;

static HANDLER: OnceLock<Handler> = OnceLock::new();
static TOLD: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Sets what is done with warnings (once; later calls are ignored).
pub fn set_handler(handler: impl Fn(&str) + Send + Sync + 'static) {
    let _ = HANDLER.set(Box::new(handler));
}

/// Tells a warning, unless the same one was told before.
pub fn warn(message: impl Into<String>) {
    let message = message.into();
    if let Ok(mut told) = TOLD.lock()
        && !told
            .get_or_insert_with(HashSet::new)
            .insert(message.clone())
    {
        return;
    }
    if let Some(handler) = HANDLER.get() {
        handler(&message);
    }
}
