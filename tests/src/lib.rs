//! hawser-tests: cross-crate integration tests (see README.md). The tests themselves live
//! in `tests/`; this library holds shared helpers.

pub mod echo;
pub mod netns;
pub mod overlay;
