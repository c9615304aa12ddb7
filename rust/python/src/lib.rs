//! Thin PyO3 bindings: `stochmech._core`. Python-facing wrappers live in `python/stochmech`.

use pyo3::prelude::*;

mod errors;
mod ledger;
mod window_array;
use errors::to_pyerr;

/// Window r(l) of eq. (11) for day `l >= 1`.
#[pyfunction]
fn window(l: u64, gamma: f64) -> PyResult<f64> {
    stochmech_core::window::check_gamma(gamma).map_err(to_pyerr)?;
    if l == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "day l must be >= 1 (days are numbered from 1)",
        ));
    }
    Ok(stochmech_core::window::window(l, gamma))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(window, m)?)?;
    m.add_class::<ledger::PyLedger>()?;
    m.add_function(wrap_pyfunction!(window_array::window_array, m)?)?;
    Ok(())
}
