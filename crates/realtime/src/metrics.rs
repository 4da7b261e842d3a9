//! CloudWatch metrics as the library writes them: Embedded Metric Format lines, printed to
//! the log (Lambda turns them into metrics, no API call). Delivery and the relay say what they
//! measured; [`Metrics::print`] is the one place a line is written. Which namespace and stack
//! they carry is configuration ([`Settings`]).

use crate::settings::{ConfigError, Env};
use crate::time::EpochMs;

/// Where CloudWatch metrics go: the Embedded Metric Format lines the broadcaster and the relay
/// print, under `METRICS_NAMESPACE` with the dimensions `Stack` (`STACK_NAME`) and `Function`,
/// so that two stacks in one account (dev and prod) never share a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    namespace: String,
    stack: String,
    function: &'static str,
}

/// One metric of a line: its name, its CloudWatch unit and its value.
pub type MetricValue = (&'static str, &'static str, serde_json::Value);

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_METRICS_NAMESPACE: &str = "DevHive/Realtime";
/// The `Stack` dimension when `STACK_NAME` is unset (local runs).
pub const LOCAL_STACK: &str = "local";
/// The EMF namespace.
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
/// The `Stack` dimension: the CloudFormation stack's name.
pub const STACK_NAME: &str = "STACK_NAME";

/// The metrics' settings: `METRICS_NAMESPACE` (default [`DEFAULT_METRICS_NAMESPACE`]) and
/// `STACK_NAME` (default [`LOCAL_STACK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub namespace: String,
    pub stack: String,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[METRICS_NAMESPACE, STACK_NAME];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self::of(env))
    }
}

impl Settings {
    /// The settings of `env`: both have defaults, so reading them cannot fail.
    pub fn of(env: &dyn Env) -> Self {
        Settings {
            namespace: env
                .var(METRICS_NAMESPACE)
                .unwrap_or(DEFAULT_METRICS_NAMESPACE)
                .to_owned(),
            stack: env.var(STACK_NAME).unwrap_or(LOCAL_STACK).to_owned(),
        }
    }

    /// The metrics `function` writes under these settings.
    pub fn metrics(&self, function: &'static str) -> Metrics {
        Metrics::new(&self.namespace, &self.stack, function)
    }
}

impl Metrics {
    pub fn new(
        namespace: impl Into<String>,
        stack: impl Into<String>,
        function: &'static str,
    ) -> Self {
        Metrics {
            namespace: namespace.into(),
            stack: stack.into(),
            function,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Print `values` as one EMF line to stdout, where Lambda's log capture turns it into
    /// metrics: the one place the library writes a metric.
    pub fn print(&self, values: &[MetricValue]) {
        println!("{}", self.line(values, EpochMs::now()));
    }

    /// One EMF line declaring and carrying `values` (name, unit, value).
    pub fn line(&self, values: &[MetricValue], timestamp: EpochMs) -> String {
        let mut line = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp.0,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Stack", "Function"]],
                    "Metrics": values
                        .iter()
                        .map(|(name, unit, _)| serde_json::json!({ "Name": name, "Unit": unit }))
                        .collect::<Vec<_>>(),
                }],
            },
            "Stack": self.stack,
            "Function": self.function,
        });
        for (name, _, value) in values {
            line[*name] = value.clone();
        }
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_carry_the_stack_and_function_dimensions() {
        let m = Metrics::new(
            "DevHive/Realtime-prod",
            "devhive-realtime-prod",
            "broadcaster",
        );
        let line: serde_json::Value = serde_json::from_str(&m.line(
            &[("Delivered", "Count", serde_json::json!(3))],
            EpochMs(1_795_665_600_000),
        ))
        .unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "DevHive/Realtime-prod");
        assert_eq!(
            declared["Dimensions"],
            serde_json::json!([["Stack", "Function"]])
        );
        assert_eq!(
            declared["Metrics"][0],
            serde_json::json!({"Name": "Delivered", "Unit": "Count"})
        );
        assert_eq!(
            (&line["Stack"], &line["Function"], &line["Delivered"]),
            (
                &serde_json::json!("devhive-realtime-prod"),
                &serde_json::json!("broadcaster"),
                &serde_json::json!(3)
            )
        );
    }
}
