//! Random operation sequences, as teams run them, through the real `terraform` binary against a
//! `coiled-local --vary` that may fail requests, with invariants checked after every step; a failing
//! sequence is shrunk (proptest) and printed with the command that replays it. `scripts/test.sh` runs a
//! fixed-seed batch; `scripts/soak.sh --minutes N [--seed S]` runs batches with fresh seeds.

mod conf;
mod world;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use conf::Sequence;
use world::World;

/// Runs a sequence from a fresh world; the first broken invariant, with the step that broke it.
fn run_sequence(seq: &Sequence, vary: u64) -> Result<(), String> {
    let mut world = World::new(vary, seq.oldest);
    for (i, op) in seq.ops.iter().enumerate() {
        eprintln!("step {i}: {op:?}");
        let (text, applied) = world.step(op).map_err(|e| format!("step {i} ({op:?}): {e}"))?;
        world.check(&text, applied).map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
    }
    world.destroy().map_err(|e| format!("at the end: {e}"))
}

fn seed() -> u64 {
    std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261206)
}

/// A batch of random sequences (`SOAK_CASES`, default 3, from `SOAK_SEED`): every invariant holds
/// after every step, or the shrunk sequence is printed with the command that replays it.
#[test]
fn random_sequences_keep_every_invariant() {
    let (seed, cases) =
        (seed(), std::env::var("SOAK_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(3));
    let config =
        Config { cases, max_shrink_iters: 24, failure_persistence: None, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let result =
        runner.run(&conf::sequence(6), |seq| run_sequence(&seq, seed).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, seq)) => {
            let replay = serde_json::to_string(&seq).unwrap();
            panic!(
                "an invariant broke (seed {seed}): {why}\nshrunk sequence: {seq:?}\nreplay (after `cargo build --workspace --bins`): SOAK_SEED={seed} SOAK_REPLAY='{replay}' cargo nextest run --test it soak::replay_a_sequence"
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// Sequences that broke an invariant once (seed, sequence as a failure prints it), replayed: each
/// after its fix.
const FOUND: [(u64, &str); 1] = [
    // The check of a query looked for `(id N)` where the query prints `(id N, STATE)`. The run also
    // showed a query leaving out a cluster a varied list gave no state (the colleague's): such clusters
    // are now read to learn their state.
    (
        3523926090,
        r#"{"oldest":false,"ops":[{"Apply":{"named":false,"env":null,"n_workers":0,"rules":[false,false,false],"tagged":false,"keep_stopped":false,"wait_for_workers":null,"defaults":false,"idle":false,"account":null}},{"Reimport":"Query"}]}"#,
    ),
];

#[test]
fn sequences_that_broke_an_invariant_keep_every_invariant() {
    for (seed, json) in FOUND {
        let seq: Sequence = serde_json::from_str(json).unwrap();
        if let Err(why) = run_sequence(&seq, seed) {
            panic!("seed {seed}, {json}: {why}");
        }
    }
}

/// Replays the sequence `SOAK_REPLAY` (JSON, as a failure prints it) with `SOAK_SEED`.
#[test]
fn replay_a_sequence() {
    let Ok(json) = std::env::var("SOAK_REPLAY") else {
        eprintln!("nothing to replay: set SOAK_REPLAY (and SOAK_SEED) as a failure prints them");
        return;
    };
    let seq: Sequence =
        serde_json::from_str(&json).expect("SOAK_REPLAY is a sequence as a failure prints it");
    if let Err(why) = run_sequence(&seq, seed()) {
        panic!("{why}");
    }
}
