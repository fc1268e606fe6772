//! Cost-against-size plots of scale runs (SVG): one panel per metric, size on x (log
//! scale when it spans a decade or more), one line per label, so corral and ZooKeeper
//! share each panel's axes. Files with the same label (one per tree step, say) are one
//! line.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::scale::ScaleResult;

/// One line of a panel: its label and its (size, value) points.
pub type Line = (String, Vec<(f64, f64)>);

/// (label, [(size, value)]) per label, sizes ascending, for `metric`.
pub fn series(runs: &[ScaleResult], metric: &str) -> Vec<Line> {
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in runs {
        if !order.contains(&r.label) {
            order.push(r.label.clone());
        }
        let line = by.entry(r.label.clone()).or_default();
        for p in &r.points {
            if let (Some(x), Some(y)) = (p.get("size"), p.get(metric)) {
                if x.is_finite() && y.is_finite() {
                    line.push((*x, *y));
                }
            }
        }
    }
    order
        .into_iter()
        .map(|l| {
            let mut v = by.remove(&l).unwrap_or_default();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (l, v)
        })
        .collect()
}

pub fn plot(
    runs: &[ScaleResult],
    metrics: &[String],
    title: &str,
    x_label: &str,
    out: &Path,
) -> Result<(), String> {
    let panels: Vec<(&String, Vec<Line>)> = metrics
        .iter()
        .map(|m| (m, series(runs, m)))
        .filter(|(_, s)| s.iter().any(|(_, v)| !v.is_empty()))
        .collect();
    if panels.is_empty() {
        return Err(format!("no run has any of {metrics:?}"));
    }
    let h = 320 * panels.len() as u32 + 40;
    let root = SVGBackend::new(out, (900, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((panels.len(), 1));
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for ((metric, series), area) in panels.iter().zip(areas.iter()) {
        let pts = series.iter().flat_map(|(_, v)| v.iter());
        let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
        for (x, y) in pts {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y1 = y1.max(*y);
        }
        let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
        let x0 = x0.max(1.0);
        let x1 = if x1 > x0 { x1 * 1.1 } else { x0 * 2.0 };
        let mut b = ChartBuilder::on(area);
        b.margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .caption(metric.as_str(), ("sans-serif", 16));
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|e| e.to_string())?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(metric.as_str())
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (i, (label, v)) in series.iter().enumerate() {
                    let c = colors[i % colors.len()];
                    chart
                        .draw_series(LineSeries::new(v.iter().copied(), c.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(label.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
                    chart
                        .draw_series(v.iter().map(|&(x, y)| Circle::new((x, y), 3, c.filled())))
                        .map_err(|e| e.to_string())?;
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }};
        }
        if x1 / x0 >= 10.0 {
            draw!(b.build_cartesian_2d((x0 * 0.9..x1).log_scale(), 0.0..y1));
        } else {
            draw!(b.build_cartesian_2d(x0 * 0.9..x1, 0.0..y1));
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, pts: &[(f64, f64)]) -> ScaleResult {
        ScaleResult {
            label: label.into(),
            points: pts
                .iter()
                .map(|&(x, y)| BTreeMap::from([("size".to_string(), x), ("m".to_string(), y)]))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn files_with_one_label_make_one_line_sorted_by_size() {
        let runs = [
            run("zk", &[(10.0, 1.0)]),
            run("corral", &[(5.0, 2.0)]),
            run("zk", &[(1.0, 3.0)]),
        ];
        let s = series(&runs, "m");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], ("zk".to_string(), vec![(1.0, 3.0), (10.0, 1.0)]));
        assert_eq!(s[1], ("corral".to_string(), vec![(5.0, 2.0)]));
        assert!(series(&runs, "absent").iter().all(|(_, v)| v.is_empty()));
    }

    #[test]
    fn plots_an_svg_with_a_panel_per_metric() {
        let dir = std::env::temp_dir().join(format!("scale-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("p.svg");
        let runs = [
            run("zk", &[(1.0, 3.0), (100.0, 1.0)]),
            run("corral", &[(1.0, 2.0), (100.0, 0.5)]),
        ];
        plot(&runs, &["m".to_string()], "t", "size", &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("corral") && svg.contains("zk"));
        assert!(plot(&runs, &["absent".to_string()], "t", "size", &out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
