//! Unit tests of loading, validation, evaluation and lints.
