//! Criterion benches live in `benches/benches/`; this crate hosts them and the paired
//! timing they share.

use std::time::Instant;

/// Mean microseconds per call of `f` over `batch` calls.
pub fn time_batch(batch: u32, f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(batch)
}

/// The median of `values` (sorted in place); 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Medians of a paired measurement, in microseconds per call.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    /// Median of the rounds of the first contender.
    pub ours: f64,
    /// Median of the rounds of the second contender.
    pub theirs: f64,
    /// Median of the per-round ratios ours / theirs.
    pub ratio: f64,
}

/// The machine is shared, so load drifts between criterion's sequential runs. This runs two
/// contenders in alternating batches (`rounds` of `batch` calls each, the order flipped
/// every round) and reports the medians and the median of the per-round ratios, which
/// cancels most of the drift.
pub fn paired(rounds: usize, batch: u32, ours: &dyn Fn(), theirs: &dyn Fn()) -> Paired {
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = time_batch(batch, ours);
            (x, time_batch(batch, theirs))
        } else {
            let y = time_batch(batch, theirs);
            (time_batch(batch, ours), y)
        };
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    Paired {
        ours: median(&mut a),
        theirs: median(&mut b),
        ratio: median(&mut ratios),
    }
}
