//! The benchmarks' figures: every run kept, the median and spread printed,
//! targets checked, and a summary at the end.
//!
//! Rules:
//! - A figure is all of its runs, never the best: the line shows the median
//!   and `min/p90/max`, then every run in the order taken.
//! - A figure compared with a baseline prints `ratio x baseline`, the ratio
//!   of the two medians (both measured in the same run, alternating).
//! - A target names the statistic it bounds (the median or the max, of the
//!   value or of the ratio); a missed target is printed `MISSED`, listed in
//!   the summary, and makes the process exit non-zero (`main.rs`).

use std::sync::Mutex;

/// Which number a target bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// The median of the runs.
    Median,
    /// The largest run.
    Max,
    /// The median's ratio to the baseline's median.
    Ratio,
}

/// A bound on one statistic of a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub stat: Stat,
    /// `true`: the statistic must be at most `bound`; `false`: at least.
    pub at_most: bool,
    pub bound: f64,
}

impl Target {
    pub fn median_at_most(bound: f64) -> Target {
        Target {
            stat: Stat::Median,
            at_most: true,
            bound,
        }
    }
    pub fn max_at_most(bound: f64) -> Target {
        Target {
            stat: Stat::Max,
            at_most: true,
            bound,
        }
    }
    pub fn ratio_at_most(bound: f64) -> Target {
        Target {
            stat: Stat::Ratio,
            at_most: true,
            bound,
        }
    }
    pub fn ratio_at_least(bound: f64) -> Target {
        Target {
            stat: Stat::Ratio,
            at_most: false,
            bound,
        }
    }

    fn met(&self, value: f64) -> bool {
        if self.at_most {
            value <= self.bound
        } else {
            value >= self.bound
        }
    }

    fn describe(&self, unit: &str) -> String {
        let op = if self.at_most { "<=" } else { ">=" };
        match self.stat {
            Stat::Median => format!("median {op} {} {unit}", self.bound),
            Stat::Max => format!("max {op} {} {unit}", self.bound),
            Stat::Ratio => format!("{op} {} x", self.bound),
        }
    }
}

/// One measured quantity.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    /// Every run, in the order taken.
    pub runs: Vec<f64>,
    /// What the median is compared with: its name and median.
    pub baseline: Option<(String, f64)>,
    pub targets: Vec<Target>,
}

impl Figure {
    pub fn new(name: impl Into<String>, unit: &'static str, runs: Vec<f64>) -> Figure {
        Figure {
            name: name.into(),
            unit,
            runs,
            baseline: None,
            targets: Vec::new(),
        }
    }

    /// Compared with `baseline` (its median).
    pub fn against(mut self, baseline: &Figure) -> Figure {
        self.baseline = Some((baseline.name.clone(), baseline.median()));
        self
    }

    pub fn target(mut self, t: Target) -> Figure {
        self.targets.push(t);
        self
    }

    pub fn median(&self) -> f64 {
        quantile(&self.runs, 0.5)
    }

    pub fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().map(|(_, b)| self.median() / b)
    }

    fn stat(&self, s: Stat) -> f64 {
        match s {
            Stat::Median => self.median(),
            Stat::Max => quantile(&self.runs, 1.0),
            Stat::Ratio => self.ratio().unwrap_or(f64::NAN),
        }
    }

    /// The targets missed, described.
    pub fn missed(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| !t.met(self.stat(t.stat)))
            .map(|t| t.describe(self.unit))
            .collect()
    }

    /// `name: value unit (ratio x baseline; target …: met) [n runs: min …]`.
    pub fn line(&self) -> String {
        let ratio = match &self.baseline {
            Some((name, _)) => format!("{:.2} x {name}", self.ratio().unwrap_or(f64::NAN)),
            None => "1.00 x baseline".into(),
        };
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                let verdict = if t.met(self.stat(t.stat)) { "met" } else { "MISSED" };
                format!("target {}: {verdict}", t.describe(self.unit))
            })
            .collect();
        let mut paren = ratio;
        if !targets.is_empty() {
            paren = format!("{paren}; {}", targets.join(", "));
        }
        let runs: Vec<String> = self.runs.iter().map(|r| fmt(*r)).collect();
        format!(
            "{}: {} {} ({paren}) [{} runs: min {} / p90 {} / max {}; {}]",
            self.name,
            fmt(self.median()),
            self.unit,
            self.runs.len(),
            fmt(quantile(&self.runs, 0.0)),
            fmt(quantile(&self.runs, 0.9)),
            fmt(quantile(&self.runs, 1.0)),
            runs.join(" ")
        )
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The `q` quantile (nearest rank) of unsorted values; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

static RECORDED: Mutex<Vec<Figure>> = Mutex::new(Vec::new());

/// Prints a figure's line and keeps it for the summary; returns it.
pub fn record(f: Figure) -> Figure {
    println!("{}", f.line());
    RECORDED.lock().unwrap_or_else(|e| e.into_inner()).push(f.clone());
    f
}

/// Prints the summary table; returns the figures with a missed target.
pub fn summary() -> Vec<String> {
    let figures = RECORDED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("\n# summary\n| figure | median | ratio | targets |\n|---|---|---|---|");
    let mut missed = Vec::new();
    for f in &figures {
        let m = f.missed();
        let targets = if f.targets.is_empty() {
            "-".to_string()
        } else if m.is_empty() {
            "met".to_string()
        } else {
            format!("MISSED: {}", m.join(", "))
        };
        let ratio = f.baseline.as_ref().map_or("-".to_string(), |(n, _)| {
            format!("{:.2} x {n}", f.ratio().unwrap_or(f64::NAN))
        });
        println!("| {} | {} {} | {ratio} | {targets} |", f.name, fmt(f.median()), f.unit);
        if !m.is_empty() {
            missed.push(format!("{}: {}", f.name, m.join(", ")));
        }
    }
    missed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_every_run_and_check_targets() {
        let base = Figure::new("floor", "ms", vec![100.0, 110.0, 90.0]);
        let f = Figure::new("create", "ms", vec![140.0, 160.0, 150.0])
            .against(&base)
            .target(Target::ratio_at_most(1.5));
        assert_eq!(
            f.line(),
            "create: 150 ms (1.50 x floor; target <= 1.5 x: met) [3 runs: min 140 / p90 160 / max 160; 140 160 150]"
        );
        let slow = Figure::new("rto", "ms", vec![300.0, 2500.0, 400.0])
            .target(Target::median_at_most(1000.0))
            .target(Target::max_at_most(2000.0));
        assert_eq!(slow.missed(), vec!["max <= 2000 ms".to_string()]);
        assert!(slow.line().contains("target max <= 2000 ms: MISSED"));
        let fast = Figure::new("qps", "q/s", vec![90.0]).against(&Figure::new("direct", "q/s", vec![100.0]));
        assert!(fast.clone().target(Target::ratio_at_least(0.9)).missed().is_empty());
        assert!(!fast.target(Target::ratio_at_least(0.95)).missed().is_empty());
        assert!(quantile(&[], 0.5).is_nan());
    }
}
