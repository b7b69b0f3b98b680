//! The one wall clock the drivers read (the protocol core never does: it
//! gets the time with every input).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds: what the node driver hands the core with
/// each input, and what the observer stamps its records with.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
