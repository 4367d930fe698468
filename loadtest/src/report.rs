//! Printing, JSON, and the latency-versus-throughput chart.

use std::path::Path;

use plotters::prelude::*;

use crate::run::Summary;

pub fn print(label: &str, s: &Summary) {
    println!(
        "{label}: {:.0} calls/s over {:.1} s ({} calls, {} connections{}) | latency p50 {} µs  p90 {} µs  p99 {} µs  p99.9 {} µs  max {} µs | codes {:?}{}",
        s.throughput_rps,
        s.seconds,
        s.requests,
        s.connections,
        s.target_rate
            .map(|r| format!(", open loop at {r:.0}/s"))
            .unwrap_or_default(),
        s.latency.p50_us,
        s.latency.p90_us,
        s.latency.p99_us,
        s.latency.p999_us,
        s.latency.max_us,
        s.codes,
        if s.unexpected > 0 {
            format!(" | {} UNEXPECTED", s.unexpected)
        } else {
            String::new()
        }
    );
}

/// One series of (throughput, p50, p99) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64, f64)>,
}

/// Latency (ms, p50 dashed and p99 solid) against achieved throughput (calls/s).
pub fn chart(path: &Path, title: &str, series: &[Series<'_>]) -> anyhow::Result<()> {
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.1;
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.2))
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("throughput (calls/s)")
        .y_desc("latency (ms): p99 solid, p50 dashed")
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.2)),
                color.stroke_width(2),
            ))?
            .label(format!("{} p99", s.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.0, p.2), 3, color.filled())),
        )?;
        chart.draw_series(DashedLineSeries::new(
            points.iter().map(|p| (p.0, p.1)),
            6,
            4,
            color.stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
