//! Validation of a bare header chain from genesis (`powchain
//! verify-headers`): parent links and every header rule of
//! [`check_header`], with the chainwork, on a slice of headers.

use thiserror::Error;

use crate::consensus::pow::Work;
use crate::consensus::validation::{check_header, SliceView};
use crate::consensus::{BlockHeader, Params, Target};

/// Result of validating a header file.
#[derive(Debug, Clone)]
pub struct HeadersReport {
    /// Headers read.
    pub headers: usize,
    /// Height of the last header.
    pub tip_height: u32,
    /// Its hash.
    pub tip: String,
    /// Chainwork up to it.
    pub chainwork: Work,
}

/// A header that failed: its height and the error.
#[derive(Debug, Clone, Error)]
#[error("header at height {height} ({hash}) is invalid: {rule}: {message}")]
pub struct HeaderFailure {
    /// Height.
    pub height: u32,
    /// Hash.
    pub hash: String,
    /// Rule name (Core's reject reason).
    pub rule: &'static str,
    /// Detail.
    pub message: String,
}

/// Validates `headers` (from genesis) under `params` at node time
/// `now_secs`: genesis match, parent links, and [`check_header`] for each.
/// `progress` is called every 4096 headers.
///
/// # Errors
/// [`HeaderFailure`] for the first invalid header.
pub fn verify_header_chain(
    params: &Params,
    headers: &[BlockHeader],
    now_secs: u64,
    mut progress: impl FnMut(usize),
) -> Result<HeadersReport, HeaderFailure> {
    let first = headers.first().ok_or_else(|| HeaderFailure {
        height: 0,
        hash: String::new(),
        rule: "bad-genesis",
        message: "the file holds no headers".into(),
    })?;
    let gh = first.block_hash();
    if gh != params.genesis_hash {
        return Err(HeaderFailure {
            height: 0,
            hash: gh.to_string(),
            rule: "bad-genesis",
            message: format!("got {gh} but expected {}", params.genesis_hash),
        });
    }
    let mut chainwork = Target::from_compact(first.bits)
        .map(|t| t.to_work())
        .unwrap_or_default();
    let mut prev_hash = gh;
    for i in 1..headers.len() {
        let h = &headers[i];
        let fail = |e: crate::consensus::HeaderError| HeaderFailure {
            height: i as u32,
            hash: h.block_hash().to_string(),
            rule: e.rule(),
            message: e.to_string(),
        };
        if h.prev_blockhash != prev_hash {
            return Err(fail(crate::consensus::HeaderError::BadPrevBlock {
                got: h.prev_blockhash.to_string(),
                expected: prev_hash.to_string(),
            }));
        }
        let view = SliceView {
            headers: &headers[..i],
            base_height: 0,
        };
        let target = check_header(params, h, &view, now_secs).map_err(fail)?;
        chainwork = chainwork + target.to_work();
        prev_hash = h.block_hash();
        if i % 4096 == 0 {
            progress(i);
        }
    }
    Ok(HeadersReport {
        headers: headers.len(),
        tip_height: headers.len() as u32 - 1,
        tip: prev_hash.to_string(),
        chainwork,
    })
}
