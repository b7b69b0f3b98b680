//! The closed forms the simulator is checked against, and the interval
//! estimates it reports.

/// Wilson's score interval at 95% for `successes` out of `trials`:
/// `[lo, hi]`. Unlike the normal approximation it stays inside [0, 1] and
/// is usable at 0 or `trials` successes.
#[must_use]
pub fn wilson95(successes: u64, trials: u64) -> [f64; 2] {
    if trials == 0 {
        return [0.0, 1.0];
    }
    let z = 1.959_963_984_540_054_f64;
    let n = trials as f64;
    let p = successes as f64 / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Mean and 95% interval (normal approximation, 1.96 standard errors) of
/// samples: `(mean, [lo, hi])`.
#[must_use]
pub fn mean_ci95(samples: &[f64]) -> (f64, [f64; 2]) {
    let n = samples.len();
    if n == 0 {
        return (0.0, [0.0, 0.0]);
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, [mean, mean]);
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = 1.96 * (var / n as f64).sqrt();
    (mean, [mean - half, mean + half])
}

/// Nakamoto 2008 §11: the attacker's probability of ever catching up from
/// `z` blocks behind, with his progress while the merchant waits taken as
/// Poisson with mean λ = z·q/p:
/// `1 − Σ_{k=0..z} e^{−λ} λ^k / k! · (1 − (q/p)^{z−k})`; 1 when q ≥ p.
#[must_use]
pub fn nakamoto(q: f64, z: u32) -> f64 {
    let p = 1.0 - q;
    if q >= p {
        return 1.0;
    }
    let lambda = f64::from(z) * (q / p);
    let mut sum = 1.0;
    let mut poisson = (-lambda).exp();
    for k in 0..=z {
        if k > 0 {
            poisson *= lambda / f64::from(k);
        }
        sum -= poisson * (1.0 - (q / p).powi((z - k) as i32));
    }
    sum.clamp(0.0, 1.0)
}

/// Rosenfeld 2014, "Analysis of Hashrate-Based Double Spending", eq. (1)
/// with one block pre-mined: the attacker's blocks while the merchant
/// waits for `z` confirmations are negative-binomial, so
/// `r = 1 − Σ_{m=0..z} C(m+z−1, m) (p^z q^m − q^z p^m)`; 1 when q ≥ p or
/// z = 0.
#[must_use]
pub fn rosenfeld(q: f64, z: u32) -> f64 {
    let p = 1.0 - q;
    if q >= p || z == 0 {
        return 1.0;
    }
    let mut sum = 0.0;
    // C(m+z−1, m), built up term by term.
    let mut c = 1.0;
    for m in 0..=z {
        if m > 0 {
            c *= f64::from(m + z - 1) / f64::from(m);
        }
        sum += c * (p.powi(z as i32) * q.powi(m as i32) - q.powi(z as i32) * p.powi(m as i32));
    }
    (1.0 - sum).clamp(0.0, 1.0)
}

/// Eyal & Sirer 2014, eq. (8): the relative revenue of a selfish pool with
/// hashrate share `alpha` whose block wins a tie at a share `gamma` of the
/// honest miners:
/// `[α(1−α)²(4α+γ(1−2α)) − α³] / [1 − α(1 + (2−α)α)]`.
#[must_use]
pub fn eyal_sirer(alpha: f64, gamma: f64) -> f64 {
    let a = alpha;
    let num = a * (1.0 - a).powi(2) * (4.0 * a + gamma * (1.0 - 2.0 * a)) - a.powi(3);
    let den = 1.0 - a * (1.0 + (2.0 - a) * a);
    num / den
}

/// Eyal & Sirer's threshold: selfish mining pays above
/// `α > (1 − γ) / (3 − 2γ)`.
#[must_use]
pub fn selfish_threshold(gamma: f64) -> f64 {
    (1.0 - gamma) / (3.0 - 2.0 * gamma)
}

/// The textbook stale rate for a propagation delay `delay` and a block
/// interval `block_time` (same unit): `1 − e^{−d/T}`, the chance that
/// another block is found while one propagates.
#[must_use]
pub fn stale_rate_model(delay: f64, block_time: f64) -> f64 {
    1.0 - (-delay / block_time).exp()
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
#[must_use]
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nakamoto_matches_his_table() {
        // Nakamoto 2008 §11, q = 0.1 and q = 0.3.
        for (z, p) in [
            (0, 1.0),
            (1, 0.204_587_3),
            (2, 0.050_977_9),
            (5, 0.000_913_7),
            (10, 0.000_001_2),
        ] {
            assert!(
                (nakamoto(0.1, z) - p).abs() < 5e-8,
                "z={z}: {}",
                nakamoto(0.1, z)
            );
        }
        for (z, p) in [(5, 0.177_352_3), (10, 0.041_660_5), (50, 0.000_000_6)] {
            assert!(
                (nakamoto(0.3, z) - p).abs() < 5e-8,
                "z={z}: {}",
                nakamoto(0.3, z)
            );
        }
    }

    #[test]
    fn rosenfeld_matches_his_table() {
        // z = 1 and 2 by hand: 1 − (p − q) and 0.056 at q = 0.1.
        assert!((rosenfeld(0.1, 1) - 0.2).abs() < 1e-12);
        assert!((rosenfeld(0.1, 2) - 0.056).abs() < 1e-12);
        // Against the sum it comes from: the attacker's blocks while the
        // merchant waits are NB(z, q) = C(m+z−1, m) p^z q^m; with the
        // pre-mined block he is z − m behind and catches up with
        // probability (q/p)^(z−m) (certainly when m ≥ z).
        for q in [0.1f64, 0.25, 0.4] {
            let p = 1.0 - q;
            for z in 1..12u32 {
                let mut r = 0.0;
                let mut c = 1.0;
                for m in 0..400u32 {
                    if m > 0 {
                        c *= f64::from(m + z - 1) / f64::from(m);
                    }
                    let pm = c * p.powi(z as i32) * q.powi(m as i32);
                    r += pm
                        * if m >= z {
                            1.0
                        } else {
                            (q / p).powi((z - m) as i32)
                        };
                }
                assert!((rosenfeld(q, z) - r).abs() < 1e-9, "q={q} z={z}");
            }
        }
        assert_eq!(rosenfeld(0.5, 3), 1.0);
        assert_eq!(rosenfeld(0.2, 0), 1.0);
    }

    #[test]
    fn eyal_sirer_revenue_and_threshold() {
        // At the threshold the pool earns exactly its share.
        for gamma in [0.0, 0.5] {
            let t = selfish_threshold(gamma);
            assert!((eyal_sirer(t, gamma) - t).abs() < 1e-12, "{gamma}");
        }
        assert!((selfish_threshold(0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((selfish_threshold(0.5) - 0.25).abs() < 1e-12);
        assert_eq!(selfish_threshold(1.0), 0.0);
        // Below it, less than its share; above, more.
        assert!(eyal_sirer(0.2, 0.0) < 0.2);
        assert!(eyal_sirer(0.4, 0.0) > 0.4);
    }

    #[test]
    fn intervals_and_quantiles() {
        let [lo, hi] = wilson95(50, 100);
        assert!(lo < 0.5 && hi > 0.5 && lo > 0.39 && hi < 0.61);
        assert_eq!(wilson95(0, 10)[0], 0.0);
        let (m, [lo, hi]) = mean_ci95(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && lo < 2.0 && hi > 2.0);
        let s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(quantile(&s, 0.5), 5);
        assert_eq!(quantile(&s, 0.99), 10);
        assert!((stale_rate_model(6.0, 600.0) - 0.00995).abs() < 1e-4);
    }
}
