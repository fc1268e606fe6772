//! The seed swarm, replay, and the proof that the checker catches a broken rule.

use std::time::{Duration, Instant};

use super::world::{run_seed, Faults};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The shapes a seed can take: 3 or 5 voters, with or without an observer.
fn shape(seed: u64) -> (usize, usize) {
    match seed % 4 {
        0 => (3, 0),
        1 => (3, 1),
        2 => (5, 0),
        _ => (5, 1),
    }
}

fn replay_hint(seed: u64) -> String {
    format!(
        "replay: CORRAL_SIM_SEED={seed} cargo test --lib quorum::sim::tests::replay -- --nocapture"
    )
}

#[test]
fn swarm() {
    // Time-boxed by default; CORRAL_SIM_SEEDS asks for an exact number of seeds.
    let budget = Duration::from_secs(env_u64("CORRAL_SIM_SECONDS").unwrap_or(20));
    let wanted = env_u64("CORRAL_SIM_SEEDS");
    let first = env_u64("CORRAL_SIM_FIRST_SEED").unwrap_or(0);
    let start = Instant::now();
    let mut seeds = 0u64;
    let mut total = super::SimReport::default();
    loop {
        match wanted {
            Some(n) if seeds >= n => break,
            None if start.elapsed() > budget => break,
            _ => {}
        }
        let seed = first + seeds;
        let (voters, observers) = shape(seed);
        match run_seed(seed, voters, observers, Faults::all(), false) {
            Ok(r) => {
                total.committed += r.committed;
                total.acked_writes += r.acked_writes;
                total.crashes += r.crashes;
                total.partitions += r.partitions;
                total.link_resets += r.link_resets;
                total.slow_disks += r.slow_disks;
                total.power_losses += r.power_losses;
                total.leaders += r.leaders;
                total.steps += r.steps;
            }
            Err(e) => panic!(
                "seed {seed} ({voters} voters, {observers} observers): {e}\n{}",
                replay_hint(seed)
            ),
        }
        seeds += 1;
    }
    println!(
        "quorum sim swarm: {seeds} seeds, {} steps, {} txns committed, {} writes acknowledged, \
         {} leaders established; faults: {} crashes, {} whole-ensemble power losses, {} partitions, \
         {} link resets, {} slow disks",
        total.steps,
        total.committed,
        total.acked_writes,
        total.leaders,
        total.crashes,
        total.power_losses,
        total.partitions,
        total.link_resets,
        total.slow_disks
    );
    assert!(seeds >= 5, "the swarm ran only {seeds} seeds");
    assert!(total.acked_writes > 0 && total.crashes > 0 && total.partitions > 0);
}

#[test]
fn replay() {
    let Some(seed) = env_u64("CORRAL_SIM_SEED") else {
        return;
    };
    let sabotage = std::env::var("CORRAL_SIM_SABOTAGE").is_ok();
    let (voters, observers) = shape(seed);
    let r = run_seed(seed, voters, observers, Faults::all(), sabotage)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!("seed {seed}: {r:?}");
}

/// The schedule the sabotage test uses holds for the real rules.
#[test]
fn power_losses_with_slow_disks_lose_nothing() {
    for seed in 0..12 {
        let (voters, observers) = shape(seed);
        run_seed(seed, voters, observers, Faults::power_losses(), false)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", replay_hint(seed)));
    }
}

#[test]
fn without_faults_an_ensemble_elects_once_and_commits() {
    for seed in 0..4 {
        let (voters, observers) = shape(seed);
        let r = run_seed(seed, voters, observers, Faults::none(), false)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", replay_hint(seed)));
        assert_eq!(r.leaders, 1, "seed {seed}: {r:?}");
        assert!(r.acked_writes > 100, "seed {seed}: {r:?}");
    }
}

/// With followers ACKing proposals before their log holds them, some seed loses an
/// acknowledged write or commits diverging txns: the checks catch a broken
/// send-after-persist rule.
#[test]
fn the_checker_catches_acks_before_the_log() {
    let mut caught = None;
    for seed in 0..400 {
        let (voters, observers) = shape(seed);
        if let Err(e) = run_seed(seed, voters, observers, Faults::power_losses(), true) {
            // A safety violation, not merely a slow recovery.
            if e.contains("is lost") || e.contains("where another committed") {
                caught = Some((seed, e));
                break;
            }
        }
    }
    let (seed, e) = caught.expect("no seed caught followers that ACK before logging");
    println!("sabotaged run failed at seed {seed}: {e}");
}
