//! Deterministic property tests: every proptest runner in the suite draws its cases from
//! one fixed ChaCha seed, so a run is reproducible and a failure reproduces on every run.
//! Neither `PROPTEST_RNG_SEED` nor `PROPTEST_CASES` changes what is drawn. The seed is
//! printed at the start of every run; the test harness shows that output for a failed
//! test only (or always with `--nocapture`).
#![allow(dead_code)]

use std::any::Any;
use std::fmt;

use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, PersistedSeed, RngAlgorithm, RngSeed,
    TestRunner,
};

/// The seed every randomized test in the suite starts from.
pub const SEED: u64 = 0x656e_7472_615f_676f;

/// A proptest configuration running `cases` cases from [`SEED`]. Cases that failed in
/// the past (`tests/<binary>.proptest-regressions`, checked in) are replayed first; a
/// new failure is appended there.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: Some(Box::new(SeedReporter(FileFailurePersistence::WithSource(
            "proptest-regressions",
        )))),
        ..Config::default()
    }
}

/// A runner for hand-driven generation (`strategy.new_tree(&mut runner)`), from [`SEED`].
pub fn runner(cases: u32) -> TestRunner {
    eprintln!("{}", describe());
    TestRunner::new(config(cases))
}

/// The line naming the seed, for failure messages.
pub fn describe() -> String {
    format!("proptest: fixed seed {SEED:#x} (ChaCha): a failure reproduces on every run")
}

/// The regressions file beside the test, plus a line naming the seed when a run starts.
#[derive(Debug, Clone, PartialEq)]
struct SeedReporter(FileFailurePersistence);

impl FailurePersistence for SeedReporter {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        eprintln!("{}", describe());
        self.0.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        source_file: Option<&'static str>,
        seed: PersistedSeed,
        shrunken_value: &dyn fmt::Debug,
    ) {
        self.0
            .save_persisted_failure2(source_file, seed, shrunken_value);
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| o == self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
