//! What every section of the report reads off a scenario's results the same way: a number
//! (NaN when absent) and the line saying when and how it was measured.

use serde_json::Value;

/// A number of the results, NaN when it is absent.
pub(crate) fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// "Measured <date>, `<command>`, <took>." for a scenario's results.
pub(crate) fn run_line(v: &Value) -> String {
    format!(
        "Measured {}, `{}`{}.",
        v["date"].as_str().unwrap_or("with the others"),
        v["command"].as_str().unwrap_or("make bench"),
        v["took_s"]
            .as_f64()
            .map_or(String::new(), |s| format!(", {s:.0} s"))
    )
}
