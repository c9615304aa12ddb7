//! The one error type of the core. Every fallible function returns `Result<_, CoreError>`;
//! the bindings map it onto Python exceptions in a single place.

use std::fmt;

/// Errors raised by the core. Each variant carries enough context to name the offending value.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An argument is outside what the function accepts (the message names it).
    InvalidArgument(String),
    /// A bid is outside its player's type space `0..K_i`.
    BidOutOfRange {
        day: u64,
        player: usize,
        bid: i64,
        types: usize,
    },
    /// The ledger's size is beyond what is supported (players, types or key width).
    Unsupported(String),
    /// A saved state could not be decoded: truncated, corrupted or from an unknown version.
    CorruptState(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument(msg) => write!(f, "{msg}"),
            CoreError::BidOutOfRange {
                day,
                player,
                bid,
                types,
            } => write!(
                f,
                "bid {bid} of player {player} on day {day} is outside the type space of \
                 player {player}, [0, {}] (K_{player} = {types})",
                types - 1
            ),
            CoreError::Unsupported(msg) => write!(f, "{msg}"),
            CoreError::CorruptState(msg) => write!(f, "corrupt ledger state: {msg}"),
        }
    }
}

impl std::error::Error for CoreError {}

/// Shorthand used throughout the core.
pub type CoreResult<T> = Result<T, CoreError>;
