//! The detection window r(l) of eq. (11) and the scaled threshold l * r(l) used by the ledger.
//!
//! r(l) = sqrt( ln(2 l^(1+gamma)) / (2 l) ). It is not monotone for small l (r(2) > r(1)),
//! but l * r(l) = sqrt( l ln(2 l^(1+gamma)) / 2 ) is increasing in l, which is what the
//! ledger's pruning of rarely seen profile groups relies on.

use crate::error::{CoreError, CoreResult};

/// Checks that gamma is a finite positive number, as eq. (11) requires.
pub fn check_gamma(gamma: f64) -> CoreResult<()> {
    if gamma.is_finite() && gamma > 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidArgument(format!(
            "gamma must be a finite number > 0 (eq. 11), got {gamma}"
        )))
    }
}

/// The window r(l) exactly as eq. (11) writes it (with equality), for day `l >= 1`.
#[inline]
pub fn window(l: u64, gamma: f64) -> f64 {
    let lf = l as f64;
    ((2.0 * lf.powf(1.0 + gamma)).ln() / (2.0 * lf)).sqrt()
}

/// A cheap evaluation of l * r(l), accurate to a few ulps; only used with a safety band.
#[inline]
pub fn scaled_threshold_fast(l: u64, one_plus_gamma: f64) -> f64 {
    let lf = l as f64;
    (0.5 * lf * (std::f64::consts::LN_2 + one_plus_gamma * lf.ln())).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_matches_formula_and_tends_to_zero() {
        let r1 = window(1, 0.5);
        assert!((r1 - (2f64.ln() / 2.0).sqrt()).abs() < 1e-15);
        assert!(
            window(2, 0.5) > window(1, 0.5),
            "r is not monotone for small l"
        );
        assert!((window(1_000_000, 0.5) - 0.003_272_339_607_796_4).abs() < 1e-15);
        assert!(window(1_000_000_000, 0.5) < window(1_000_000, 0.5));
    }

    #[test]
    fn scaled_threshold_is_increasing_and_close_to_exact() {
        let mut prev = 0.0;
        for l in 1..20_000u64 {
            let t = scaled_threshold_fast(l, 1.5);
            let exact = l as f64 * window(l, 0.5);
            assert!((t - exact).abs() <= 1e-12 * exact, "l={l}");
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn gamma_is_validated() {
        assert!(check_gamma(0.5).is_ok());
        assert!(check_gamma(0.0).is_err());
        assert!(check_gamma(f64::NAN).is_err());
        assert!(check_gamma(f64::INFINITY).is_err());
    }
}
