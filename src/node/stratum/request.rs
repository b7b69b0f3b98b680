//! A Stratum request line decoded (`parse_request`, `parse_submit`: the
//! pure decoders, fuzzed by `fuzz/fuzz_targets/stratum_line.rs`), and why
//! a request is refused ([`Reject`], Stratum's error codes).

use serde_json::Value;

use super::job::{parse_be32, parse_hex};

/// Why a share or request was refused: Stratum's error codes, as pools
/// answer them (20 other, 21 stale job, 22 duplicate, 23 low difficulty,
/// 24 unauthorized, 25 not subscribed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 20: anything else (bad parameters, ntime out of range...).
    Other,
    /// 21: the job is older than the tip (or than [`MAX_JOBS`] jobs).
    Stale,
    /// 21: a job id this connection was never given.
    UnknownJob,
    /// 22: this share was submitted already.
    Duplicate,
    /// 23: the hash does not meet the job's share target.
    LowDifficulty,
    /// 24: the worker did not authorize on this connection.
    Unauthorized,
    /// 25: no `mining.subscribe` yet.
    NotSubscribed,
}

impl Reject {
    /// Every reason, in code order (the `/metrics` labels).
    pub const ALL: [Reject; 7] = [
        Reject::Other,
        Reject::Stale,
        Reject::UnknownJob,
        Reject::Duplicate,
        Reject::LowDifficulty,
        Reject::Unauthorized,
        Reject::NotSubscribed,
    ];

    /// The Stratum error code.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            Reject::Other => 20,
            Reject::Stale | Reject::UnknownJob => 21,
            Reject::Duplicate => 22,
            Reject::LowDifficulty => 23,
            Reject::Unauthorized => 24,
            Reject::NotSubscribed => 25,
        }
    }

    /// The label in `status.stratum.rejected` and `/metrics`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Other => "other",
            Reject::Stale => "stale",
            Reject::UnknownJob => "unknown_job",
            Reject::Duplicate => "duplicate",
            Reject::LowDifficulty => "low_difficulty",
            Reject::Unauthorized => "unauthorized",
            Reject::NotSubscribed => "not_subscribed",
        }
    }
}

/// One request line: `{"id": ..., "method": "...", "params": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id the reply echoes (`null` when absent).
    pub id: Value,
    /// The method.
    pub method: String,
    /// The params (empty when absent or not an array).
    pub params: Vec<Value>,
}

/// Parses a request line (at most [`super::MAX_LINE`] bytes, as read).
///
/// # Errors
/// The id to answer with (`null` when the line is no JSON object) and
/// why: not JSON, not an object, or no string `method`.
pub fn parse_request(line: &str) -> Result<Request, (Value, &'static str)> {
    let Ok(Value::Object(mut req)) = serde_json::from_str::<Value>(line) else {
        return Err((Value::Null, "Parse error: not a JSON-RPC request"));
    };
    let id = req.remove("id").unwrap_or(Value::Null);
    let Some(Value::String(method)) = req.remove("method") else {
        return Err((id, "Invalid request: no method"));
    };
    let params = match req.remove("params") {
        Some(Value::Array(p)) => p,
        _ => Vec::new(),
    };
    Ok(Request { id, method, params })
}

/// `mining.submit`'s fields, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The worker name.
    pub worker: String,
    /// The job id, as sent.
    pub job_id: String,
    /// The miner's 4 extranonce bytes.
    pub extranonce2: [u8; 4],
    /// Header time, Unix seconds.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
}

pub(super) const SUBMIT_SHAPE: &str =
    "submit: [worker, job_id, extranonce2, ntime, nonce] expected";

/// Parses `mining.submit [worker, job_id, extranonce2, ntime, nonce]`
/// (extranonce2 8 hex digits; ntime and nonce 8 big-endian hex digits).
///
/// # Errors
/// What is wrong; a 6th parameter (BIP 310 version bits) is refused, as
/// version rolling is not on.
pub fn parse_submit(params: &[Value]) -> Result<Submit, &'static str> {
    let field = |i: usize| params.get(i).and_then(Value::as_str);
    let worker = field(0).ok_or(SUBMIT_SHAPE)?;
    let job_id = field(1).ok_or("submit: job_id must be a string")?;
    let extranonce2 = field(2)
        .and_then(parse_hex::<4>)
        .ok_or("extranonce2 must be 8 hex digits")?;
    let ntime = field(3)
        .and_then(parse_be32)
        .ok_or("ntime must be 8 hex digits")?;
    let nonce = field(4)
        .and_then(parse_be32)
        .ok_or("nonce must be 8 hex digits")?;
    if params.len() > 5 {
        return Err("version rolling is not on (mining.configure)");
    }
    Ok(Submit {
        worker: worker.to_string(),
        job_id: job_id.to_string(),
        extranonce2,
        ntime,
        nonce,
    })
}

/// A refusal with its message.
#[derive(Debug, Clone)]
pub(super) struct Refusal(pub(super) Reject, pub(super) String);

impl Refusal {
    pub(super) fn new(r: Reject, msg: impl Into<String>) -> Refusal {
        Refusal(r, msg.into())
    }
}
