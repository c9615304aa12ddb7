//! The window r(l) of eq. (11), vectorized over an array of days (`stochmech.window`).

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// r(l) for every day of a 1-D int64 array (every day >= 1), as a float64 array.
#[pyfunction]
pub fn window_array<'py>(
    py: Python<'py>,
    days: PyReadonlyArray1<'py, i64>,
    gamma: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    stochmech_core::window::check_gamma(gamma).map_err(to_pyerr)?;
    let view = days.as_array();
    if let Some((index, &day)) = view.iter().enumerate().find(|(_, &d)| d < 1) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "day must be >= 1 (days are numbered from 1), got {day} at index {index}"
        )));
    }
    let out: Vec<f64> = view
        .iter()
        .map(|&d| stochmech_core::window::window(d as u64, gamma))
        .collect();
    Ok(out.into_pyarray(py))
}
