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

/// Runs a seed; a panic inside (an assertion of the core, of the storage engine) is
/// reported like a violation, so the seed to replay is printed.
fn run_caught(
    seed: u64,
    voters: usize,
    observers: usize,
    faults: Faults,
    sabotage: bool,
) -> Result<super::SimReport, String> {
    std::panic::catch_unwind(|| run_seed(seed, voters, observers, faults, sabotage)).unwrap_or_else(
        |p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        },
    )
}

/// The fault set of the swarm and of a replay: `CORRAL_SIM_FAULTS=power_losses` for the
/// schedule with every disk slow, `no_storage_errors` without ENOSPC and EIO.
fn faults() -> (Faults, &'static str) {
    match std::env::var("CORRAL_SIM_FAULTS").as_deref() {
        Ok("power_losses") => (Faults::power_losses(), "CORRAL_SIM_FAULTS=power_losses "),
        Ok("no_storage_errors") => (
            Faults {
                storage_errors: false,
                ..Faults::all()
            },
            "CORRAL_SIM_FAULTS=no_storage_errors ",
        ),
        _ => (Faults::all(), ""),
    }
}

/// `env`: the `CORRAL_SIM_FAULTS=...` setting of the run, if any.
fn replay_hint(seed: u64, env: &str) -> String {
    format!(
        "replay: {env}CORRAL_SIM_SEED={seed} cargo test --lib quorum::sim::tests::replay -- --nocapture"
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
    // CORRAL_SIM_KEEP_GOING: report every failing seed, not only the first.
    let keep_going = std::env::var("CORRAL_SIM_KEEP_GOING").is_ok();
    let mut failed = Vec::new();
    loop {
        match wanted {
            Some(n) if seeds >= n => break,
            None if start.elapsed() > budget => break,
            _ => {}
        }
        let seed = first + seeds;
        let (voters, observers) = shape(seed);
        match run_caught(seed, voters, observers, faults().0, false) {
            Ok(r) => total.add(&r),
            Err(e) => {
                let msg = format!(
                    "seed {seed} ({voters} voters, {observers} observers): {e}\n{}",
                    replay_hint(seed, faults().1)
                );
                if !keep_going {
                    panic!("{msg}");
                }
                println!("{msg}");
                failed.push(seed);
            }
        }
        seeds += 1;
    }
    println!(
        "quorum sim swarm: {seeds} seeds in {:.1} s, {} steps, {} txns committed, {} writes \
         acknowledged, {} leaders established, {} snapshots installed, {} DIFFs read from a \
         log on disk, {} truncations ({} reloading the state); faults: {} crashes ({} power cuts at once, {} inside a storage \
         operation, {} more inside recovery), {} whole-ensemble power losses, {} stops on \
         ENOSPC, {} on EIO, {} restarts retried, {} partitions, {} link resets, {} slow \
         disks; recoveries: {} torn tails cut, {} installs and {} cuts finished, {} half-made \
         segments dropped",
        start.elapsed().as_secs_f64(),
        total.steps,
        total.committed,
        total.acked_writes,
        total.leaders,
        total.snaps_installed,
        total.diffs_from_disk,
        total.truncations,
        total.state_reloads,
        total.crashes,
        total.power_cuts,
        total.mid_op_cuts,
        total.recovery_cuts,
        total.power_losses,
        total.enospc_stops,
        total.eio_stops,
        total.failed_restarts,
        total.partitions,
        total.link_resets,
        total.slow_disks,
        total.torn_tails,
        total.finished_installs,
        total.finished_cuts,
        total.dropped_segments,
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    assert!(seeds >= 5, "the swarm ran only {seeds} seeds");
    assert!(total.acked_writes > 0 && total.crashes > 0 && total.partitions > 0);
    // The disks really failed in every way the fault set asks for.
    assert!(total.mid_op_cuts > 0 && total.power_cuts > 0 && total.recovery_cuts > 0);
    if faults().0.storage_errors {
        assert!(total.eio_stops > 0 && total.enospc_stops > 0);
    }
}

#[test]
fn replay() {
    let Some(seed) = env_u64("CORRAL_SIM_SEED") else {
        return;
    };
    let sabotage = std::env::var("CORRAL_SIM_SABOTAGE").is_ok();
    let (voters, observers) = shape(seed);
    let r = run_seed(seed, voters, observers, faults().0, sabotage)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!("seed {seed}: {r:?}");
}

/// The schedule the sabotage test uses holds for the real rules.
#[test]
fn power_losses_with_slow_disks_lose_nothing() {
    for seed in 0..12 {
        let (voters, observers) = shape(seed);
        run_caught(seed, voters, observers, Faults::power_losses(), false).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: {e}\n{}",
                replay_hint(seed, "CORRAL_SIM_FAULTS=power_losses ")
            )
        });
    }
}

#[test]
fn without_faults_an_ensemble_elects_once_and_commits() {
    for seed in 0..4 {
        let (voters, observers) = shape(seed);
        let r = run_caught(seed, voters, observers, Faults::none(), false)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", replay_hint(seed, "")));
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

/// ZOOKEEPER-3701: the leader's log disk fills up. The leader cannot log its
/// proposals, so it stops (a storage error that could lose data stops the server);
/// the others elect a new leader and go on; nothing acknowledged is lost, and once
/// space returns the old leader rejoins.
#[test]
fn zookeeper_3701_the_leaders_disk_fills_up() {
    for seed in 0..6 {
        let (voters, observers) = shape(seed);
        let mut w = super::world::World::new(seed, voters, observers, Faults::none());
        w.run(3_000).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let leader = w
            .fill_leaders_disk(20_000)
            .unwrap_or_else(|| panic!("seed {seed}: no leader after 3 s\n{}", w.describe()));
        // Appends fill the preallocated segment first: the leader stops at the roll-over
        // that finds no room.
        let mut t = 3_000;
        while w.report.enospc_stops == 0 && t < 20_000 {
            t += 500;
            w.run(t)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", w.describe()));
        }
        assert!(
            w.report.enospc_stops >= 1,
            "seed {seed}: leader {leader} never hit its full disk"
        );
        // The others go on without it.
        let acked = w.report.acked_writes;
        w.run(t + 3_000)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", w.describe()));
        assert!(
            w.report.acked_writes > acked,
            "seed {seed}: no write acknowledged after the leader stopped\n{}",
            w.describe()
        );
        // Space returns at 23 s; everyone converges.
        w.clients_until = 30_000;
        w.run(36_000)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", w.describe()));
        w.check_converged()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", w.describe()));
    }
}

/// Replays seeds the swarm once failed on, with the fault set they failed under.
fn replay_seeds(seeds: &[u64], faults: Faults, env: &str) {
    for &seed in seeds {
        let (voters, observers) = shape(seed);
        run_caught(seed, voters, observers, faults, false)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", replay_hint(seed, env)));
    }
}

/// ZOOKEEPER-1549's dirty snapshot, reached through SNAP: a restarted leader, not yet
/// established, SNAPs its whole state, uncommitted tail included, and fails; the next
/// leader never had that tail and TRUNCs the learner below its snapshot, which no log
/// cut can do. The learner used to stop (exit 70) at every try; it now asks the leader
/// for a SNAP instead (`zab::tests::zookeeper_1549_a_trunc_below_the_snapshot_asks_for_a_snap`).
#[test]
fn zookeeper_1549_a_trunc_below_a_dirty_snapshot_does_not_stop_the_learner() {
    replay_seeds(
        &[12, 5361],
        Faults::power_losses(),
        "CORRAL_SIM_FAULTS=power_losses ",
    );
}

/// ZOOKEEPER-3608's lockout: a would-be leader wrote acceptedEpoch past the others' in
/// attempts that failed, and the leader they elected without it had an older epoch,
/// which it refused for as long as that leader lasted. The leader now steps down for a
/// learner that accepted a later epoch
/// (`zab::tests::zookeeper_3608_a_leader_steps_down_for_a_learner_that_accepted_a_later_epoch`).
#[test]
fn zookeeper_3608_a_server_that_accepted_a_later_epoch_rejoins() {
    replay_seeds(&[2813], Faults::all(), "");
    replay_seeds(
        &[227, 507, 880, 1585, 1883, 5164],
        Faults::power_losses(),
        "CORRAL_SIM_FAULTS=power_losses ",
    );
}
