//! The function binaries as Lambda runs them: configuration from the environment, events from
//! a local Runtime API, DynamoDB Local as the table.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::{Outcome, RuntimeApi, event, workspace_binary};

const FUNCTIONS: [&str; 4] = ["connect", "disconnect", "subscribe", "status"];

fn clean_command(name: &str) -> Command {
    let mut cmd = Command::new(workspace_binary(name));
    // The project's variables are the test's to set; the SDK endpoint (DynamoDB Local) stays.
    let project_vars = realtime::runtime::config::ALL_VARIABLES
        .iter()
        .filter(|v| **v != realtime::runtime::config::AWS_ENDPOINT_URL_DYNAMODB);
    for var in project_vars.chain(&["RUST_LOG"]) {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

#[test]
fn missing_configuration_stops_start_up_with_one_line_naming_it() {
    for name in FUNCTIONS {
        let out = clean_command(name)
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} must exit 1");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: exactly one line, got {stdout:?}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON log line");
        assert_eq!(line["level"], "ERROR");
        let error = line["error"].as_str().unwrap();
        let named = ["CONNECTIONS_TABLE", "JWT_SECRET", "DATABASE_URL"]
            .iter()
            .any(|v| error.contains(v));
        assert!(named, "{name}: the line names the variable: {error}");
    }
    // disconnect needs only the table; subscribe needs the JWT secret (refresh verifies tokens).
    let out = clean_command("disconnect").output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("CONNECTIONS_TABLE is not set")
    );
    let out = clean_command("subscribe")
        .env("MEMBERSHIP", "none")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("JWT_SECRET is not set"), "{stdout}");
    let out = clean_command("subscribe")
        .env("MEMBERSHIP", "none")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("CONNECTIONS_TABLE is not set"), "{stdout}");
    assert!(
        stdout.contains("membership checks are OFF"),
        "MEMBERSHIP=none warns at start: {stdout}"
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_function(name: &str, table: &str, runtime: &RuntimeApi) -> Running {
    let child = clean_command(name)
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("CONNECTIONS_TABLE", table)
        .env("JWT_SECRET", realtime::connection::auth::DEV_JWT_SECRET)
        .env("MEMBERSHIP", "none")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

fn response(outcome: Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Response(v) => v,
        Outcome::Error(e) => panic!("invocation error: {e}"),
    }
}

fn body(response: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

fn create_table() -> String {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .is_ok_and(|e| e.starts_with("http://127.0.0.1:")),
        "AWS_ENDPOINT_URL_DYNAMODB is not set to DynamoDB Local: run the tests with `make test`"
    );
    let table = format!("e2e-{}", uuid::Uuid::new_v4());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&realtime::runtime::config::sdk_config());
        realtime::aws::dynamo::create_table(&client, &table)
            .await
            .expect("create table");
    });
    table
}

#[test]
fn functions_serve_the_lifecycle_over_the_runtime_api() {
    let table = create_table();
    let timeout = Duration::from_secs(20);

    let connect_api = RuntimeApi::start(vec![event("connect"), event("connect-bad-token")]);
    let _connect = run_function("connect", &table, &connect_api);
    assert_eq!(response(connect_api.outcome(timeout))["statusCode"], 200);
    assert_eq!(response(connect_api.outcome(timeout))["statusCode"], 401);

    let subscribe_api = RuntimeApi::start(vec![
        event("subscribe"),
        event("ping"),
        event("unsubscribe"),
        event("default"),
    ]);
    let _subscribe = run_function("subscribe", &table, &subscribe_api);
    for want in ["subscribed", "pong", "unsubscribed", "subscribed"] {
        assert_eq!(
            body(&response(subscribe_api.outcome(timeout)))["type"],
            want
        );
    }

    let status_api = RuntimeApi::start(vec![event("status")]);
    let _status = run_function("status", &table, &status_api);
    let status = response(status_api.outcome(timeout));
    assert_eq!(status["statusCode"], 200);
    assert_eq!(body(&status)["project_clients"], 1);

    let disconnect_api = RuntimeApi::start(vec![event("disconnect")]);
    let _disconnect = run_function("disconnect", &table, &disconnect_api);
    assert_eq!(response(disconnect_api.outcome(timeout))["statusCode"], 200);

    let status_api = RuntimeApi::start(vec![event("status")]);
    let _status = run_function("status", &table, &status_api);
    assert_eq!(
        body(&response(status_api.outcome(timeout)))["project_clients"],
        0
    );
}
