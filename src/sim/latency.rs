//! How long a message takes on a simulated link: [`LatencyModel`].

use rand::Rng;

use crate::value::{self, ValueError};

/// How a link's one-way latency is drawn (once per link, when it is made).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LatencyModel {
    /// Every link the same, ms.
    Fixed(u64),
    /// Uniform between two figures, ms.
    Uniform(u64, u64),
    /// Log-normal with this median (ms) and shape σ.
    LogNormal {
        /// median, ms
        median_ms: f64,
        /// σ of the underlying normal
        sigma: f64,
    },
    /// Fitted to Bitcoin's measured propagation (see
    /// [`LatencyModel::BITCOIN`]).
    Bitcoin,
}

/// Median of a node's access delay under [`LatencyModel::Bitcoin`], ms.
pub const BITCOIN_ACCESS_MEDIAN_MS: f64 = 100.0;

/// σ of a node's access delay under [`LatencyModel::Bitcoin`].
pub const BITCOIN_ACCESS_SIGMA: f64 = 2.65;

impl LatencyModel {
    /// `bitcoin`: block propagation as Fechner et al. measured it on
    /// Bitcoin in 2021 (ACM SAC 2022: median ~454 ms, mean ~4.1 s, 5% of
    /// nodes after 15 s). Its long tail is slow *nodes*, not slow links, so
    /// each node draws an access delay once — log-normal, median
    /// [`BITCOIN_ACCESS_MEDIAN_MS`], σ [`BITCOIN_ACCESS_SIGMA`] — paid by
    /// every message it receives, on top of a per-link latency uniform in
    /// 20–80 ms. The parameters were fitted by running `sim network` on
    /// 1,000 nodes of degree 8; the README gives what they produce.
    pub const BITCOIN: LatencyModel = LatencyModel::Bitcoin;

    /// One draw of a link's latency, ms (for [`LatencyModel::Bitcoin`], the
    /// link part only).
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match *self {
            LatencyModel::Bitcoin => rng.random_range(20..=80),
            LatencyModel::Fixed(ms) => ms,
            LatencyModel::Uniform(lo, hi) => rng.random_range(lo.min(hi)..=hi.max(lo)),
            LatencyModel::LogNormal { median_ms, sigma } => {
                // Box–Muller from two uniforms in (0, 1].
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let ms = median_ms * (sigma * z).exp();
                ms.clamp(0.0, 600_000.0).round() as u64
            }
        }
    }
}

impl std::str::FromStr for LatencyModel {
    type Err = ValueError;

    /// `fixed:MS`, `uniform:LO-HI` or `bitcoin`.
    fn from_str(s: &str) -> Result<LatencyModel, ValueError> {
        const FORMS: &str = "fixed:MS, uniform:LO-HI or bitcoin";
        if s == "bitcoin" {
            return Ok(LatencyModel::BITCOIN);
        }
        if let Some(ms) = s.strip_prefix("fixed:") {
            return value::int(ms).map(LatencyModel::Fixed);
        }
        if let Some(r) = s.strip_prefix("uniform:") {
            let (lo, hi) = r
                .split_once('-')
                .ok_or_else(|| ValueError::form(s, FORMS))?;
            let (lo, hi): (u64, u64) = (value::int(lo)?, value::int(hi)?);
            if lo > hi {
                return Err(ValueError::range(s, "uniform:LO-HI needs LO <= HI"));
            }
            return Ok(LatencyModel::Uniform(lo, hi));
        }
        Err(ValueError::form(s, FORMS))
    }
}
