//! SVG plots of the simulator's results, each closed form drawn beside the
//! simulated points and their 95% intervals (plotters' SVG backend).

use std::path::Path;

use plotters::prelude::*;

use super::experiments::{DoubleSpendReport, SelfishReport};
use super::stats::{eyal_sirer, nakamoto, rosenfeld};

/// A plot that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    /// the file
    pub path: String,
    /// the drawing library's words
    pub reason: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Smallest probability drawn on the log axis.
const FLOOR: f64 = 1e-7;

const GREY: RGBColor = RGBColor(140, 140, 140);

/// Success probability against z (log scale), one colour per q: simulated
/// points with their intervals, Rosenfeld's exact curve (solid) and
/// Nakamoto's approximation (dashed).
///
/// # Errors
/// [`PlotError`] when the file cannot be written.
pub fn double_spend_svg(report: &DoubleSpendReport, path: &Path) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let zmax = report.results.iter().map(|r| r.z).max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Double spend (Rosenfeld's race): success vs confirmations",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..f64::from(zmax), (FLOOR..1.2f64).log_scale())
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("z (confirmations)")
        .y_desc("attacker success")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(|e| err(path, e))?;
    let mut qs: Vec<f64> = report.results.iter().map(|r| r.q).collect();
    qs.dedup();
    for (k, q) in qs.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let curve = |f: fn(f64, u32) -> f64| {
            (0..=zmax)
                .map(|z| (f64::from(z), f(*q, z).max(FLOOR)))
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(LineSeries::new(curve(rosenfeld), c.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(format!("q = {q}: Rosenfeld (exact)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                curve(nakamoto),
                6,
                4,
                c.stroke_width(1),
            ))
            .map_err(|e| err(path, e))?
            .label(format!("q = {q}: Nakamoto §11"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        let rows: Vec<_> = report.results.iter().filter(|r| r.q == *q).collect();
        chart
            .draw_series(rows.iter().filter(|r| r.p_sim > 0.0).map(|r| {
                ErrorBar::new_vertical(
                    f64::from(r.z),
                    r.ci95[0].max(FLOOR),
                    r.p_sim,
                    r.ci95[1].max(FLOOR),
                    c.filled(),
                    8,
                )
            }))
            .map_err(|e| err(path, e))?
            .label(format!("q = {q}: simulated, 95% interval"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// The pool's revenue against α, one colour per γ: simulated points with
/// their intervals, Eyal–Sirer's curve at the realised γ, and the honest
/// line revenue = α (grey).
///
/// # Errors
/// [`PlotError`] when the file cannot be written.
pub fn selfish_svg(report: &SelfishReport, path: &Path) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Selfish mining (Eyal & Sirer SM1): revenue vs hashrate",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..0.5f64, 0f64..1f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("alpha (pool's hashrate share)")
        .y_desc("pool's share of the best chain")
        .draw()
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 0.0), (0.5, 0.5)],
            GREY.stroke_width(1),
        ))
        .map_err(|e| err(path, e))?
        .label("honest mining: revenue = alpha")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY));
    let mut gammas: Vec<f64> = report.results.iter().map(|r| r.gamma).collect();
    gammas.sort_by(f64::total_cmp);
    gammas.dedup();
    for (k, g) in gammas.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let rows: Vec<_> = report.results.iter().filter(|r| r.gamma == *g).collect();
        let realised =
            rows.iter().map(|r| r.gamma_realised).sum::<f64>() / rows.len().max(1) as f64;
        let curve: Vec<(f64, f64)> = (0..=100)
            .map(|i| {
                let a = f64::from(i) * 0.005;
                (a, eyal_sirer(a, realised).clamp(0.0, 1.0))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(curve, c.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(format!("Eyal-Sirer, gamma = {realised:.2} (realised)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(rows.iter().map(|r| {
                ErrorBar::new_vertical(r.alpha, r.ci95[0], r.revenue_sim, r.ci95[1], c.filled(), 8)
            }))
            .map_err(|e| err(path, e))?
            .label(format!("simulated, gamma asked {g}, 95% interval"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// The distribution of block arrival delays (fraction of (block, node)
/// pairs reached by each delay), with the stale-rate figures in the title.
///
/// # Errors
/// [`PlotError`] when the file cannot be written.
pub fn propagation_svg(
    sorted_ms: &[u32],
    stale_rate: f64,
    stale_rate_model: f64,
    path: &Path,
) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let xmax = f64::from(super::stats::quantile(sorted_ms, 0.995).max(1));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Block propagation: stale rate {:.4} simulated, {:.4} = 1 - exp(-d/T)",
                stale_rate, stale_rate_model
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..1f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("delay from discovery to arrival, ms")
        .y_desc("fraction of (block, node) arrivals")
        .draw()
        .map_err(|e| err(path, e))?;
    let n = sorted_ms.len().max(1) as f64;
    let step = (sorted_ms.len() / 2000).max(1);
    let points: Vec<(f64, f64)> = sorted_ms
        .iter()
        .enumerate()
        .step_by(step)
        .map(|(i, &d)| (f64::from(d).min(xmax), (i + 1) as f64 / n))
        .collect();
    chart
        .draw_series(LineSeries::new(points, COLOURS[0].stroke_width(2)))
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// One run of a latency sweep.
#[derive(Clone, Copy, Debug)]
pub struct StalePoint {
    /// mean block arrival delay, ms
    pub delay_ms: f64,
    /// stale blocks / blocks mined
    pub stale_rate: f64,
    /// blocks mined (for the interval)
    pub blocks: u64,
}

/// Stale rate against the mean propagation delay: each run with its 95%
/// (Wilson) interval, and the textbook 1 − e^(−d/T).
///
/// # Errors
/// [`PlotError`] when the file cannot be written.
pub fn stale_vs_delay_svg(
    points: &[StalePoint],
    block_time_ms: f64,
    path: &Path,
) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let xmax = points.iter().map(|p| p.delay_ms).fold(1.0, f64::max) * 1.1;
    let ymax = points
        .iter()
        .map(|p| {
            super::stats::wilson95((p.stale_rate * p.blocks as f64).round() as u64, p.blocks)[1]
        })
        .fold(
            super::stats::stale_rate_model(xmax, block_time_ms),
            f64::max,
        )
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Stale rate vs propagation delay, T = {:.0} s",
                block_time_ms / 1000.0
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax.max(1e-3))
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("mean delay from discovery to arrival, ms")
        .y_desc("stale blocks / blocks mined")
        .draw()
        .map_err(|e| err(path, e))?;
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let d = xmax * f64::from(i) / 200.0;
            (d, super::stats::stale_rate_model(d, block_time_ms))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(curve, COLOURS[1].stroke_width(2)))
        .map_err(|e| err(path, e))?
        .label("1 - exp(-d/T)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], COLOURS[1].stroke_width(2)));
    chart
        .draw_series(points.iter().map(|p| {
            let [lo, hi] =
                super::stats::wilson95((p.stale_rate * p.blocks as f64).round() as u64, p.blocks);
            ErrorBar::new_vertical(p.delay_ms, lo, p.stale_rate, hi, COLOURS[0].filled(), 8)
        }))
        .map_err(|e| err(path, e))?
        .label("simulated, 95% interval")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, COLOURS[0].filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}
