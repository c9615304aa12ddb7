//! `stochmech._core.Ledger`: the bid ledger behind `stochmech.BidLedger`.
//!
//! Arrays come in as read-only numpy views (zero copy; non-contiguous input is an error the
//! Python wrapper never triggers, since it passes C-contiguous arrays) and batches run with
//! the GIL released.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use stochmech_core::{BidLedger, RecordOutput};

use crate::errors::to_pyerr;

fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    array: &'a numpy::PyReadonlyArray<'_, T, D>,
    what: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a C-contiguous array")))
}

/// Flags (and optional exact maxima) of a recorded batch.
type Recorded<'py> = (
    Bound<'py, PyArray2<bool>>,
    Option<Bound<'py, PyArray2<f64>>>,
    Option<Bound<'py, PyArray2<f64>>>,
);

/// Distinct profiles seen and their counts.
type ProfileCounts<'py> = (Bound<'py, PyArray2<u16>>, Bound<'py, PyArray1<u64>>);

/// The bid ledger of one market (see `stochmech.BidLedger` for the documented wrapper).
#[pyclass(module = "stochmech._core", name = "Ledger")]
#[derive(Clone)]
pub struct PyLedger {
    inner: BidLedger,
}

#[pymethods]
impl PyLedger {
    #[new]
    fn new(supertypes: PyReadonlyArray2<'_, f64>, gamma: f64) -> PyResult<Self> {
        let shape = supertypes.shape();
        let (n, k) = (shape[0], shape[1]);
        let theta = contiguous(&supertypes, "supertypes")?;
        let inner = BidLedger::new(theta, n, k, gamma).map_err(to_pyerr)?;
        Ok(Self { inner })
    }

    /// Restores a ledger from `to_bytes()`.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let inner = BidLedger::from_bytes(data).map_err(to_pyerr)?;
        Ok(Self { inner })
    }

    /// The complete state as versioned, checksummed bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.inner.to_bytes());
        PyBytes::new(py, &bytes)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cls = py.get_type::<PyLedger>();
        let from_bytes = cls.getattr("from_bytes")?;
        let args = PyTuple::new(py, [self.to_bytes(py)])?;
        PyTuple::new(py, [from_bytes.into_any(), args.into_any()])
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    /// Validates a batch without recording it.
    fn check_bids(&self, bids: PyReadonlyArray2<'_, i64>) -> PyResult<()> {
        let days = bids.shape()[0];
        self.inner
            .check_bids(contiguous(&bids, "bids")?, days)
            .map_err(to_pyerr)
    }

    /// Records a batch of days; returns (flags, marginal, joint) with the maxima only when
    /// `detail` is true.
    fn record<'py>(
        &mut self,
        py: Python<'py>,
        bids: PyReadonlyArray2<'py, i64>,
        detail: bool,
    ) -> PyResult<Recorded<'py>> {
        let shape = bids.shape();
        let (days, n) = (shape[0], shape[1]);
        if n != self.inner.n_players() {
            return Err(PyValueError::new_err(format!(
                "bids must have one column per player ({}), got {n}",
                self.inner.n_players()
            )));
        }
        let slice = contiguous(&bids, "bids")?;
        let cells = days * n;
        let inner = &mut self.inner;
        let (flags, detail) = py
            .detach(|| {
                let mut flags = vec![false; cells];
                let mut maxima = detail.then(|| (vec![0.0; cells], vec![0.0; cells]));
                let out = RecordOutput {
                    flags: &mut flags,
                    detail: maxima.as_mut().map(|(m, j)| (&mut m[..], &mut j[..])),
                };
                inner.record(slice, days, out).map(|()| (flags, maxima))
            })
            .map_err(to_pyerr)?;
        let flags = flags.into_pyarray(py).reshape([days, n])?;
        match detail {
            Some((m, j)) => Ok((
                flags,
                Some(m.into_pyarray(py).reshape([days, n])?),
                Some(j.into_pyarray(py).reshape([days, n])?),
            )),
            None => Ok((flags, None, None)),
        }
    }

    #[getter]
    fn day(&self) -> u64 {
        self.inner.day()
    }

    #[getter]
    fn n_players(&self) -> usize {
        self.inner.n_players()
    }

    #[getter]
    fn n_types(&self) -> usize {
        self.inner.n_types()
    }

    #[getter]
    fn gamma(&self) -> f64 {
        self.inner.gamma()
    }

    fn supertypes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let shape = [self.inner.n_players(), self.inner.n_types()];
        self.inner.supertypes().into_pyarray(py).reshape(shape)
    }

    fn marginal_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u64>>> {
        let shape = [self.inner.n_players(), self.inner.n_types()];
        self.inner.marginal_counts().into_pyarray(py).reshape(shape)
    }

    fn groups_seen(&self, py: Python<'_>) -> Vec<usize> {
        py.detach(|| self.inner.groups_seen())
    }

    fn joint_max<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        let inner = &mut self.inner;
        py.detach(|| inner.joint_max()).into_pyarray(py)
    }

    fn joint_at<'py>(
        &self,
        py: Python<'py>,
        profile: Vec<u16>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self
            .inner
            .joint_at(&profile)
            .map_err(to_pyerr)?
            .into_pyarray(py))
    }

    fn worst_profiles(
        &mut self,
        py: Python<'_>,
        player: usize,
        count: usize,
    ) -> PyResult<Vec<(Vec<u16>, f64)>> {
        let inner = &mut self.inner;
        let worst = py
            .detach(|| inner.worst_profiles(player, count))
            .map_err(to_pyerr)?;
        Ok(worst.into_iter().map(|w| (w.profile, w.value)).collect())
    }

    fn profile_counts<'py>(&self, py: Python<'py>) -> PyResult<ProfileCounts<'py>> {
        let n = self.inner.n_players();
        let (profiles, counts) = py.detach(|| self.inner.profile_counts());
        let rows = counts.len();
        Ok((
            profiles.into_pyarray(py).reshape([rows, n])?,
            counts.into_pyarray(py),
        ))
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }
}
