//! Core's conversions and parameter readers for the RPC methods: chain
//! names, tip statuses, difficulty, network hashrate, and the typed
//! parameter checks with Core's error codes.

use serde_json::Value;

use super::{code, RpcError};
use crate::chain::ChainStore;
use crate::consensus::{BlockHash, CompactTarget, Network, Target};

/// Core's chain names (`CChainParams::GetChainTypeString`).
pub(super) fn chain_name(n: Network) -> &'static str {
    match n {
        Network::Mainnet => "main",
        Network::Testnet => "test",
        Network::Regtest => "regtest",
    }
}

pub(super) fn target_hex(bits: CompactTarget) -> String {
    Target::from_compact(bits).map_or_else(|_| "0".repeat(64), |t| t.to_hex())
}

/// Core's `GetDifficulty`: the target of bits `1d00ffff` over this one,
/// computed on the compact form as Core does (`src/rpc/blockchain.cpp`).
#[must_use]
pub fn difficulty(bits: CompactTarget) -> f64 {
    let bits = bits.to_consensus();
    let mantissa = bits & 0x00ff_ffff;
    if mantissa == 0 {
        return 0.0;
    }
    let mut shift = (bits >> 24) & 0xff;
    let mut d = f64::from(0x0000_ffffu32) / f64::from(mantissa);
    while shift < 29 {
        d *= 256.0;
        shift += 1;
    }
    while shift > 29 {
        d /= 256.0;
        shift -= 1;
    }
    d
}

/// powchain's version as Core encodes its own (`CLIENT_VERSION`:
/// major·10000 + minor·100 + patch).
pub(super) fn client_version() -> u64 {
    let v: Vec<u64> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    v.first().copied().unwrap_or(0) * 10_000
        + v.get(1).copied().unwrap_or(0) * 100
        + v.get(2).copied().unwrap_or(0)
}

/// Core's `GetNetworkHashPS`: the work of the last `n` blocks up to
/// `height` (the tip by default) over the time they spanned; `n <= 0`
/// means since the last difficulty change, which powchain's networks do
/// not mark, so 120 blocks are used.
pub(super) fn network_hash_ps(chain: &ChainStore, n: i64, height: Option<u32>) -> f64 {
    let top = height.unwrap_or_else(|| chain.height());
    let n = if n <= 0 {
        120
    } else {
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let bottom = top.saturating_sub(n);
    let (Some(hi), Some(lo)) = (chain.info_at_height(top), chain.info_at_height(bottom)) else {
        return 0.0;
    };
    if top == bottom {
        return 0.0;
    }
    let mut tmin = hi.header.time;
    let mut tmax = hi.header.time;
    for h in bottom..=top {
        if let Some(i) = chain.info_at_height(h) {
            tmin = tmin.min(i.header.time);
            tmax = tmax.max(i.header.time);
        }
    }
    if tmax == tmin {
        return 0.0;
    }
    let work = hi.chainwork.to_f64() - lo.chainwork.to_f64();
    work / f64::from(tmax - tmin)
}

pub(super) fn block_not_found() -> RpcError {
    RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Block not found")
}

pub(super) fn type_error(name: &str, want: &str) -> RpcError {
    RpcError::new(
        code::TYPE,
        format!("{name}: JSON value is not of expected type {want}"),
    )
}

pub(super) fn missing(name: &str) -> RpcError {
    RpcError::new(code::MISC, format!("missing required argument {name}"))
}

pub(super) fn req_i64(p: &[Value], i: usize, name: &str) -> Result<i64, RpcError> {
    match p.get(i) {
        None | Some(Value::Null) => Err(missing(name)),
        Some(v) => v.as_i64().ok_or_else(|| type_error(name, "number")),
    }
}

pub(super) fn req_u32(p: &[Value], i: usize, name: &str) -> Result<u32, RpcError> {
    let v = req_i64(p, i, name)?;
    u32::try_from(v)
        .map_err(|_| RpcError::new(code::INVALID_PARAMETER, format!("{name}: out of range")))
}

pub(super) fn opt_u64(p: &[Value], i: usize, name: &str) -> Result<u64, RpcError> {
    match p.get(i) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            RpcError::new(
                code::INVALID_PARAMETER,
                format!("{name}: a non-negative number"),
            )
        }),
    }
}

pub(super) fn opt_bool(p: &[Value], i: usize, name: &str) -> Result<Option<bool>, RpcError> {
    match p.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
        Some(_) => Err(type_error(name, "bool")),
    }
}

pub(super) fn req_str<'a>(p: &'a [Value], i: usize, name: &str) -> Result<&'a str, RpcError> {
    match p.get(i) {
        None | Some(Value::Null) => Err(missing(name)),
        Some(v) => v.as_str().ok_or_else(|| type_error(name, "string")),
    }
}

/// A block hash parameter: 64 hex digits (Core's `ParseHashV`: -8 for a
/// wrong length or a non-hex character).
pub(super) fn req_hash(p: &[Value], i: usize, name: &str) -> Result<BlockHash, RpcError> {
    let s = req_str(p, i, name)?;
    if s.len() != 64 {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            format!(
                "{name} must be of length 64 (not {}, for '{}')",
                s.len(),
                s.chars().take(80).collect::<String>()
            ),
        ));
    }
    BlockHash::from_hex(s).map_err(|_| {
        RpcError::new(
            code::INVALID_PARAMETER,
            format!("{name} must be hexadecimal string (not '{s}')"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_matches_core() {
        // Bits 1d00ffff is difficulty 1; Core's regtest pow limit 207fffff
        // prints 4.656542373906925e-10.
        assert_eq!(difficulty(CompactTarget::from_consensus(0x1d00_ffff)), 1.0);
        let d = difficulty(CompactTarget::from_consensus(0x207f_ffff));
        assert!((d - 4.656_542_373_906_925e-10).abs() < 1e-22, "{d}");
        // Block 32256's bits 1d00d86a: 1.18290947.
        let d = difficulty(CompactTarget::from_consensus(0x1d00_d86a));
        assert!((d - 1.182_899_534_312_841_6).abs() < 1e-9, "{d}");
    }
}
