//! A markdown table and its numbers' spelling: what the goals' summary and every scenario's
//! report print.

use std::fmt;

/// A markdown table under its title.
pub(crate) struct Table {
    pub title: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl fmt::Display for Table {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "### {}\n\n| {} |", self.title, self.header.join(" | "))?;
        writeln!(out, "|{}", "---|".repeat(self.header.len()))?;
        for row in &self.rows {
            writeln!(out, "| {} |", row.join(" | "))?;
        }
        writeln!(out)
    }
}

/// `x` with `digits` decimals, `–` when it is absent (NaN).
pub(crate) fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}
