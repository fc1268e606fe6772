//! Latency-percentile plots (SVG): latency against percentile on HdrHistogram's usual
//! axes (x is 1/(1-p) on a log scale, so 90%, 99%, 99.9% ... are evenly spaced), one line
//! per run, so several runs (corral vs ZooKeeper, before vs after) overlay.

use std::path::Path;

use plotters::prelude::*;

use crate::report::RunResult;

/// The x coordinate of percentile `p` (0..100): 1/(1-p), capped so p = 100 stays finite.
pub fn x_of(p: f64) -> f64 {
    let q = (p / 100.0).min(0.999_999);
    1.0 / (1.0 - q)
}

/// The percentile label of x coordinate `x`: 10 -> "90%", 1000 -> "99.9%".
pub fn label_of(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p <= 0.0 {
        return "0%".into();
    }
    let mut s = format!("{p:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    format!("{s}%")
}

pub fn plot(runs: &[RunResult], title: &str, out: &Path) -> Result<(), String> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = runs
        .iter()
        .filter(|r| !r.curve.is_empty())
        .map(|r| {
            (
                r.label.as_str(),
                r.curve
                    .iter()
                    .map(|(p, v)| (x_of(*p), v.max(0.1)))
                    .collect(),
            )
        })
        .collect();
    if series.is_empty() {
        return Err("no run with latency data to plot".into());
    }
    let x_max = series
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.0))
        .fold(10.0f64, f64::max)
        .min(1e6);
    let y_min = series
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min)
        .max(0.1);
    let y_max = series
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let root = SVGBackend::new(out, (960, 600)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0f64..x_max * 1.5).log_scale(),
            (y_min * 0.8..y_max * 1.25).log_scale(),
        )
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (us)")
        .x_label_formatter(&|x| label_of(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::*;

    #[test]
    fn percentile_axis_round_trips() {
        assert_eq!(label_of(x_of(90.0)), "90%");
        assert_eq!(label_of(x_of(99.9)), "99.9%");
        assert_eq!(label_of(1.0), "0%");
        assert!(x_of(100.0).is_finite());
    }

    #[test]
    fn writes_an_svg_with_every_run() {
        let mut h = new_hist();
        for v in 1..2000u64 {
            h.record(v * 1000).unwrap();
        }
        let run = |label: &str| RunResult {
            label: label.into(),
            workload: "read".into(),
            config: serde_json::Value::Null,
            measured_s: 1.0,
            ops: 1999,
            ops_per_sec: 1999.0,
            missed: 0,
            errors: 0,
            errors_by_code: Default::default(),
            ops_by_kind: Default::default(),
            latency_us: percentiles(&h),
            service_latency_us: None,
            fanout_latency_us: None,
            curve: curve(&h),
            client_cpu: ClientCpu::default(),
            machine: Machine::default(),
            unix_time: 0,
            ..RunResult::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p.svg");
        plot(&[run("corral"), run("zookeeper")], "reads", &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("corral") && svg.contains("zookeeper"));
        assert!(svg.contains("99%"));
        assert!(plot(&[], "empty", &out).is_err());
    }
}
