//! stochmech-core: the pure-Rust engine behind the `stochmech` Python package.
//!
//! It holds what runs every simulated or operated day of the two-stage mechanism:
//! the [`ledger::BidLedger`] of running frequency (eq. 6) and joint-independence (eq. 8)
//! statistics with the penalty event E_i(l) of eq. (13), and the window r(l) of eq. (11).
//! No Python types appear here; the bindings crate wraps these structs.

pub mod error;
pub mod ledger;
pub mod window;

pub use error::{CoreError, CoreResult};
pub use ledger::digits::{CompactBids, Digit};
pub use ledger::{BidLedger, RecordOutput};
