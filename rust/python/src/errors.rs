//! The one mapping from core errors to Python exceptions.

use pyo3::exceptions::PyValueError;
use pyo3::PyErr;
use stochmech_core::CoreError;

/// Every core error is a bad input or a bad saved state: both are `ValueError` in Python.
pub fn to_pyerr(err: CoreError) -> PyErr {
    PyValueError::new_err(err.to_string())
}
