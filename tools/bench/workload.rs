//! What a run does: the workload kinds, the weighted op mix, the knobs (sessions,
//! outstanding, value size, key space, duration/op count, warm-up, fixed rate), and
//! workload files (TOML) for custom mixes. Command-line flags override a file's values,
//! and a file's values override the defaults.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The znodes a run uses live under this path.
pub const ROOT: &str = "/corral-bench";

pub fn key_path(i: u64) -> String {
    format!("{ROOT}/k/{i:08}")
}

pub fn wide_path(i: u64) -> String {
    format!("{ROOT}/w/{i}")
}

pub const WATCH_PATH: &str = "/corral-bench/watch";

/// One request type of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Get,
    Set,
    Create,
    Delete,
    Children,
    Exists,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "getData",
            OpKind::Set => "setData",
            OpKind::Create => "create",
            OpKind::Delete => "delete",
            OpKind::Children => "getChildren",
            OpKind::Exists => "exists",
        }
    }
}

/// Relative weights of each op (a workload file's `[mix]` table).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub get: u32,
    pub set: u32,
    pub create: u32,
    pub delete: u32,
    pub children: u32,
    pub exists: u32,
}

impl Mix {
    /// Cumulative weights for picking, or None if every weight is zero.
    pub fn table(&self) -> Option<Vec<(u32, OpKind)>> {
        let mut acc = 0;
        let mut t = Vec::new();
        for (w, k) in [
            (self.get, OpKind::Get),
            (self.set, OpKind::Set),
            (self.create, OpKind::Create),
            (self.delete, OpKind::Delete),
            (self.children, OpKind::Children),
            (self.exists, OpKind::Exists),
        ] {
            if w > 0 {
                acc += w;
                t.push((acc, k));
            }
        }
        (acc > 0).then_some(t)
    }

    pub fn uses_keys(&self) -> bool {
        self.get + self.set + self.exists > 0
    }
}

/// Picks an op from a cumulative table with a roll in `0..total`.
pub fn pick(table: &[(u32, OpKind)], roll: u32) -> OpKind {
    table
        .iter()
        .find(|(acc, _)| roll < *acc)
        .map_or(table[table.len() - 1].1, |(_, k)| *k)
}

/// The shape of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Pipelined requests drawn from a mix.
    Ops,
    /// N watchers on one node; one writer changes it once all are armed again.
    Watch,
    /// Sessions opened and closed as fast as possible.
    Churn,
    /// Only fills the key space (then exits): for memory measurements.
    Populate,
}

/// The workload named on the command line, as a kind and a mix.
pub fn named(name: &str, read_ratio: f64) -> Result<(Kind, Mix), String> {
    let m = |f: fn(&mut Mix)| {
        let mut mix = Mix::default();
        f(&mut mix);
        mix
    };
    Ok(match name {
        "read" => (Kind::Ops, m(|x| x.get = 1)),
        "write" => (Kind::Ops, m(|x| x.set = 1)),
        "exists" => (Kind::Ops, m(|x| x.exists = 1)),
        "mixed" => {
            if !(0.0..=1.0).contains(&read_ratio) {
                return Err(format!("--read-ratio {read_ratio} is not within 0..1"));
            }
            let get = (read_ratio * 1000.0).round() as u32;
            (
                Kind::Ops,
                Mix {
                    get,
                    set: 1000 - get,
                    ..Mix::default()
                },
            )
        }
        "create" => (Kind::Ops, m(|x| x.create = 1)),
        "create-delete" => (
            Kind::Ops,
            m(|x| {
                x.create = 1;
                x.delete = 1
            }),
        ),
        "children" => (Kind::Ops, m(|x| x.children = 1)),
        "watch" => (Kind::Watch, Mix::default()),
        "churn" => (Kind::Churn, Mix::default()),
        "populate" => (Kind::Populate, Mix::default()),
        "custom" => (Kind::Ops, Mix::default()),
        other => {
            return Err(format!(
                "unknown workload {other:?} (read, write, exists, mixed, create, create-delete, children, watch, churn, populate, custom)"
            ))
        }
    })
}

/// A workload file. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub name: Option<String>,
    /// A named workload to start from (see `named`); `[mix]` replaces its mix.
    pub workload: Option<String>,
    pub mix: Option<Mix>,
    pub sessions: Option<usize>,
    pub outstanding: Option<usize>,
    pub value_size: Option<usize>,
    pub keys: Option<u64>,
    /// "10s", "500ms", "2m" or a number of seconds.
    pub duration: Option<toml::Value>,
    pub warmup: Option<toml::Value>,
    pub ops: Option<u64>,
    pub rate: Option<f64>,
    pub sequential: Option<bool>,
    pub ephemeral: Option<bool>,
    pub wide_nodes: Option<u64>,
    pub width: Option<u64>,
    pub read_ratio: Option<f64>,
}

impl WorkloadFile {
    pub fn load(path: &Path) -> Result<WorkloadFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<WorkloadFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn duration_of(v: &Option<toml::Value>) -> Result<Option<Duration>, String> {
        match v {
            None => Ok(None),
            Some(toml::Value::String(s)) => parse_duration(s).map(Some),
            Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(Duration::from_secs(*n as u64))),
            Some(toml::Value::Float(f)) if *f >= 0.0 => Ok(Some(Duration::from_secs_f64(*f))),
            Some(other) => Err(format!("not a duration: {other}")),
        }
    }
}

/// "10s", "250ms", "2m", "1h", "1.5s" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in duration {s:?} (us, ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Everything a run needs, resolved from flags, file and defaults.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub label: String,
    pub workload: String,
    pub kind: Kind,
    pub mix: Mix,
    pub hosts: Vec<String>,
    pub sessions: usize,
    pub outstanding: usize,
    /// Requests in flight over all sessions, split as evenly as it goes (overrides
    /// `outstanding`): the sweep's levels.
    pub inflight: Option<usize>,
    pub threads: usize,
    pub value_size: usize,
    pub keys: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub ops: Option<u64>,
    /// Open loop: requests per second over all sessions, sent on schedule whatever the
    /// replies do, latency measured from the intended send time.
    pub rate: Option<f64>,
    pub sequential: bool,
    pub ephemeral: bool,
    pub wide_nodes: u64,
    pub width: u64,
    pub setup: bool,
}

impl RunConfig {
    pub fn create_flags(&self) -> i32 {
        (self.ephemeral as i32) | ((self.sequential as i32) << 1)
    }

    /// Requests session `idx` keeps in flight.
    pub fn window(&self, idx: usize) -> usize {
        match self.inflight {
            Some(total) => split_inflight(total, self.sessions)
                .get(idx)
                .copied()
                .unwrap_or(1)
                .max(1),
            None => self.outstanding.max(1),
        }
    }

    /// Requests in flight over all sessions.
    pub fn total_inflight(&self) -> usize {
        (0..self.sessions).map(|i| self.window(i)).sum()
    }
}

/// `total` requests in flight split over `sessions`: the first `total % sessions`
/// sessions carry one more. A session never carries none (so at least `sessions`).
pub fn split_inflight(total: usize, sessions: usize) -> Vec<usize> {
    let sessions = sessions.max(1);
    let total = total.max(sessions);
    let (base, rem) = (total / sessions, total % sessions);
    (0..sessions).map(|i| base + usize::from(i < rem)).collect()
}

/// Sessions at a sweep level of `inflight` requests: one for one request, else
/// `max_sessions` (8), never more sessions than requests.
pub fn sweep_sessions(inflight: usize, max_sessions: usize) -> usize {
    inflight.clamp(1, max_sessions.max(1))
}

/// The sweep's in-flight levels.
pub const SWEEP_LEVELS: [usize; 6] = [1, 8, 32, 128, 256, 1024];

/// "1,8,32" as levels; every level at least 1.
pub fn parse_levels(s: &str) -> Result<Vec<usize>, String> {
    let v: Vec<usize> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("not an in-flight level: {x:?}"))
        })
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err("no in-flight level given".into());
    }
    Ok(v)
}

/// xorshift64*: a fast generator for picking keys and ops (no cryptographic use).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn mixed_ratio_becomes_weights() {
        let (k, m) = named("mixed", 0.9).unwrap();
        assert_eq!(k, Kind::Ops);
        assert_eq!((m.get, m.set), (900, 100));
        assert!(named("mixed", 1.5).is_err());
        assert!(named("nope", 0.5).is_err());
    }

    #[test]
    fn pick_follows_weights() {
        let m = Mix {
            get: 3,
            set: 1,
            ..Mix::default()
        };
        let t = m.table().unwrap();
        assert_eq!(pick(&t, 0), OpKind::Get);
        assert_eq!(pick(&t, 2), OpKind::Get);
        assert_eq!(pick(&t, 3), OpKind::Set);
        assert!(Mix::default().table().is_none());
        let mut rng = Rng::new(42);
        let mut gets = 0;
        for _ in 0..40_000 {
            if pick(&t, rng.below(4) as u32) == OpKind::Get {
                gets += 1;
            }
        }
        assert!((29_000..31_000).contains(&gets), "{gets}");
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = Rng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn workload_file_parses_and_refuses_typos() {
        let f = WorkloadFile::parse(
            r#"
            name = "locks"
            sessions = 16
            duration = "20s"
            warmup = 1
            [mix]
            get = 70
            create = 15
            delete = 15
            "#,
        )
        .unwrap();
        assert_eq!(f.sessions, Some(16));
        assert_eq!(
            WorkloadFile::duration_of(&f.duration).unwrap(),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            WorkloadFile::duration_of(&f.warmup).unwrap(),
            Some(Duration::from_secs(1))
        );
        let m = f.mix.unwrap();
        assert_eq!((m.get, m.create, m.delete, m.set), (70, 15, 15, 0));
        assert!(WorkloadFile::parse("sesions = 3").is_err());
        assert!(WorkloadFile::parse("[mix]\nread = 3").is_err());
    }

    #[test]
    fn inflight_splits_evenly_over_sessions() {
        assert_eq!(split_inflight(1024, 8), vec![128; 8]);
        assert_eq!(split_inflight(1, 1), vec![1]);
        assert_eq!(split_inflight(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split_inflight(10, 4).iter().sum::<usize>(), 10);
        // Fewer requests than sessions: every session still has one.
        assert_eq!(split_inflight(3, 8), vec![1; 8]);
        assert_eq!(split_inflight(5, 0), vec![5]);
    }

    #[test]
    fn sweep_levels_have_one_session_for_one_request_and_eight_from_eight() {
        let shapes: Vec<(usize, usize)> = SWEEP_LEVELS
            .iter()
            .map(|&l| (l, sweep_sessions(l, 8)))
            .collect();
        assert_eq!(
            shapes,
            vec![(1, 1), (8, 8), (32, 8), (128, 8), (256, 8), (1024, 8)]
        );
        assert_eq!(sweep_sessions(4, 8), 4);
        for &l in &SWEEP_LEVELS {
            let s = sweep_sessions(l, 8);
            assert_eq!(split_inflight(l, s).iter().sum::<usize>(), l);
        }
        assert_eq!(parse_levels("1, 8,32").unwrap(), vec![1, 8, 32]);
        assert!(parse_levels("0").is_err());
        assert!(parse_levels("").is_err());
        assert!(parse_levels("x").is_err());
    }

    #[test]
    fn paths_sort_by_key() {
        assert_eq!(key_path(42), "/corral-bench/k/00000042");
        assert!(key_path(9) < key_path(10));
    }
}
