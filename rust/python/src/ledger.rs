//! `stochmech._core.Ledger`: the bid ledger behind `stochmech.BidLedger`.
//!
//! The ledger sits behind a mutex inside a frozen class, so any mix of calls from several
//! threads is serialized: each call takes the lock with the GIL released (no deadlock with
//! the GIL), works, and drops the lock before touching Python objects again. `record` copies
//! its bids while holding the GIL (a consistent snapshot, even if another thread writes to the
//! array), validates the whole batch and then records it under one lock: a call that raises
//! has recorded nothing.

use std::sync::{Mutex, MutexGuard};

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use stochmech_core::ledger::digits::{out_of_range, OutOfRange};
use stochmech_core::{BidLedger, CompactBids, RecordOutput};

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
type ProfileCounts<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray1<u64>>);

/// The bid ledger of one market (see `stochmech.BidLedger` for the documented wrapper).
#[pyclass(module = "stochmech._core", name = "Ledger", frozen)]
pub struct PyLedger {
    inner: Mutex<BidLedger>,
    /// Each player's K_i (fixed for the ledger's life, so read without the lock).
    ks: Vec<usize>,
}

impl PyLedger {
    fn wrap(inner: BidLedger) -> Self {
        Self {
            ks: inner.type_counts().to_vec(),
            inner: Mutex::new(inner),
        }
    }

    /// The batch as compact digits, converted and range-checked under the GIL (a consistent
    /// snapshot even if another thread writes to the array); `Err` holds where the first bid
    /// out of range is, for the caller to name its day under the lock.
    fn compact(
        &self,
        bids: &PyReadonlyArray2<'_, i64>,
    ) -> PyResult<Result<CompactBids, OutOfRange>> {
        let n = bids.shape()[1];
        if n != self.ks.len() {
            return Err(PyValueError::new_err(format!(
                "bids must have one column per player ({}), got {n}",
                self.ks.len()
            )));
        }
        Ok(CompactBids::from_i64(contiguous(bids, "bids")?, &self.ks))
    }

    fn lock(&self) -> PyResult<MutexGuard<'_, BidLedger>> {
        self.inner.lock().map_err(|_| {
            PyRuntimeError::new_err(
                "the ledger is unusable after an internal error in another call",
            )
        })
    }

    /// Runs `f` on the ledger under its lock, with the GIL released while waiting and working.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut BidLedger) -> R + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut guard = self.lock()?;
            Ok(f(&mut guard))
        })
    }
}

#[pymethods]
impl PyLedger {
    /// `supertypes`: every player's pmf, concatenated; `types`: each player's K_i; `wide`:
    /// force the layout used for long profiles (for tests).
    #[new]
    #[pyo3(signature = (supertypes, types, gamma, wide = false))]
    fn new(
        py: Python<'_>,
        supertypes: PyReadonlyArray1<'_, f64>,
        types: Vec<usize>,
        gamma: f64,
        wide: bool,
    ) -> PyResult<Self> {
        let theta = contiguous(&supertypes, "supertypes")?.to_vec();
        let inner = py
            .detach(|| {
                if wide {
                    BidLedger::with_types_wide(&theta, &types, gamma)
                } else {
                    BidLedger::with_types(&theta, &types, gamma)
                }
            })
            .map_err(to_pyerr)?;
        Ok(Self::wrap(inner))
    }

    /// Restores a ledger from `to_bytes()`.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let data = data.to_vec();
        let inner = py
            .detach(|| BidLedger::from_bytes(&data))
            .map_err(to_pyerr)?;
        Ok(Self::wrap(inner))
    }

    /// The complete state as versioned, checksummed bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.with(py, |l| l.to_bytes())?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cls = py.get_type::<PyLedger>();
        let from_bytes = cls.getattr("from_bytes")?;
        let args = PyTuple::new(py, [self.to_bytes(py)?])?;
        PyTuple::new(py, [from_bytes.into_any(), args.into_any()])
    }

    fn __copy__(&self, py: Python<'_>) -> PyResult<Self> {
        Ok(Self::wrap(self.with(py, |l| l.clone())?))
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.__copy__(py)
    }

    /// Validates a batch without recording it.
    fn check_bids(&self, py: Python<'_>, bids: PyReadonlyArray2<'_, i64>) -> PyResult<()> {
        let days = bids.shape()[0];
        let compact = self.compact(&bids)?;
        let ks = &self.ks;
        self.with(py, |l| match &compact {
            Ok(CompactBids::U8(b)) => l.check_bids(b, days),
            Ok(CompactBids::U16(b)) => l.check_bids(b, days),
            Ok(CompactBids::U32(b)) => l.check_bids(b, days),
            Err(bad) => Err(out_of_range(l.day() + bad.0 as u64 + 1, *bad, ks)),
        })?
        .map_err(to_pyerr)
    }

    /// Records a batch of days; returns (flags, marginal, joint) with the maxima only when
    /// `detail` is true.
    fn record<'py>(
        &self,
        py: Python<'py>,
        bids: PyReadonlyArray2<'py, i64>,
        detail: bool,
    ) -> PyResult<Recorded<'py>> {
        let shape = bids.shape();
        let (days, n) = (shape[0], shape[1]);
        let compact = self.compact(&bids)?;
        let cells = days
            .checked_mul(n)
            .ok_or_else(|| PyValueError::new_err("bids: too many values"))?;
        let ks = &self.ks;
        let (flags, detail) = self.with(py, |l| {
            let compact = match compact {
                Ok(c) => c,
                Err(bad) => {
                    return Err(to_pyerr(out_of_range(l.day() + bad.0 as u64 + 1, bad, ks)));
                }
            };
            let mut flags = vec![false; cells];
            let mut maxima = detail.then(|| (vec![0.0; cells], vec![0.0; cells]));
            let out = RecordOutput {
                flags: &mut flags,
                detail: maxima.as_mut().map(|(m, j)| (&mut m[..], &mut j[..])),
            };
            match &compact {
                CompactBids::U8(b) => l.record(b, days, out),
                CompactBids::U16(b) => l.record(b, days, out),
                CompactBids::U32(b) => l.record(b, days, out),
            }
            .map_err(to_pyerr)?;
            Ok((flags, maxima))
        })??;
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
    fn day(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |l| l.day())
    }

    #[getter]
    fn n_players(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| l.n_players())
    }

    #[getter]
    fn type_counts(&self, py: Python<'_>) -> PyResult<Vec<usize>> {
        self.with(py, |l| l.type_counts().to_vec())
    }

    #[getter]
    fn gamma(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |l| l.gamma())
    }

    #[getter]
    fn wide(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |l| l.is_wide())
    }

    /// The supertypes, concatenated player by player.
    fn supertypes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self.with(py, |l| l.supertypes())?.into_pyarray(py))
    }

    /// N_i(t), concatenated player by player.
    fn marginal_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        Ok(self.with(py, |l| l.marginal_counts())?.into_pyarray(py))
    }

    fn groups_seen(&self, py: Python<'_>) -> PyResult<Vec<usize>> {
        self.with(py, |l| l.groups_seen())
    }

    fn joint_max<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let maxima = self.with(py, |l| l.joint_max())?.map_err(to_pyerr)?;
        Ok(maxima.into_pyarray(py))
    }

    fn joint_at<'py>(
        &self,
        py: Python<'py>,
        profile: Vec<u32>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let values = self.with(py, |l| l.joint_at(&profile))?.map_err(to_pyerr)?;
        Ok(values.into_pyarray(py))
    }

    fn worst_profiles(
        &self,
        py: Python<'_>,
        player: usize,
        count: usize,
    ) -> PyResult<Vec<(Vec<u32>, f64)>> {
        let worst = self
            .with(py, |l| l.worst_profiles(player, count))?
            .map_err(to_pyerr)?;
        Ok(worst.into_iter().map(|w| (w.profile, w.value)).collect())
    }

    fn profile_counts<'py>(&self, py: Python<'py>) -> PyResult<ProfileCounts<'py>> {
        let (n, (profiles, counts)) = self.with(py, |l| (l.n_players(), l.profile_counts()))?;
        let rows = counts.len();
        Ok((
            profiles.into_pyarray(py).reshape([rows, n])?,
            counts.into_pyarray(py),
        ))
    }

    #[getter]
    fn nbytes(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| l.nbytes())
    }
}
