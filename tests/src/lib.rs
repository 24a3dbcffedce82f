//! The cross-crate integration tests live in `tests/tests/`; they run the real `yilian` binary
//! on real data directories, real redb files and real sockets. Their harness is the
//! `yilian-testkit` crate, re-exported here so each test file needs one `use yilian_tests::*`.

pub use yilian_testkit::*;
