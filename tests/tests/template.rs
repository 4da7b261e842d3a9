//! template.yaml against the code: each function's environment has every variable its
//! configuration asks for (secrets by ARN only); the table, index, projection and TTL are the
//! store's; the routes are the protocol's (`ping` answered by API Gateway); no IAM statement
//! grants `Resource: "*"`; and the operational contract — the account logging role,
//! metrics namespace and dimensions, one alarm topic, the dashboard, secrets read at run time,
//! reserved concurrency and timeouts, aliases with gradual deployment, retained data in prod,
//! custom domains, tracing, CORS and throttling, and a build cache that hashes only sources.
//! All over the parsed template (tags such as `!Ref X` parse as `X`, `!If [c, a, b]` as a list).

use std::collections::{BTreeSet, HashMap};

use realtime::aws::dynamo::{
    ATTR_CONNECTION_ID, ATTR_EXPIRES_AT, ATTR_RECONNECT_AT, INDEXES, index_projection,
};
use realtime::runtime::config::{self, Config};
use realtime::runtime::handlers::{
    Broadcaster, Connect, Disconnect, Messages, RelayFunction, Status, Sweeper,
};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text)
        .expect("template.yaml parses")
        .remove(0)
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
        .collect()
}

fn of_type<'a>(t: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Secrets: the plain variable a configuration may ask for, and the variable naming the Secrets
/// Manager secret that holds it (what the template sets instead).
const SECRETS: [(&str, &str); 2] = [
    ("JWT_SECRET", "JWT_SECRET_ARN"),
    ("DATABASE_URL", "DATABASE_URL_SECRET_ARN"),
];

/// Variables a configuration asks for that a deployed stack leaves unset on purpose: a local
/// DynamoDB endpoint (DynamoDB Local, or tests/faults in front of it); on AWS the SDK's
/// endpoint is the region's.
const LOCAL_ONLY: [&str; 1] = [config::AWS_ENDPOINT_URL_DYNAMODB];

/// What each function's configuration asks for, found by building it.
async fn asked_by(binary: &str) -> BTreeSet<String> {
    let values: HashMap<&str, &str> = HashMap::from([
        (config::CONNECTIONS_TABLE, "connections"),
        (config::JWT_SECRET, "0123456789abcdef0123456789abcdef"),
        (config::WEBSOCKET_ENDPOINT, "https://api.example/dev"),
        (config::DATABASE_URL, "postgres://u@127.0.0.1:1/db"),
        (config::BROADCASTER_FUNCTION_NAME, "broadcaster"),
    ]);
    let config = Config::from_lookup(|name| values.get(name).map(|v| v.to_string()));
    let built = match binary {
        "connect" => Connect::from_config(&config).await.map(drop),
        "disconnect" => Disconnect::from_config(&config).await.map(drop),
        "subscribe" => Messages::from_config(&config).await.map(drop),
        "status" => Status::from_config(&config).await.map(drop),
        "broadcaster" => Broadcaster::from_config(&config).await.map(drop),
        "sweeper" => Sweeper::from_config(&config).await.map(drop),
        "relay" => RelayFunction::from_config(&config).await.map(drop),
        other => panic!("template.yaml names a binary with no handler: {other}"),
    };
    built.unwrap_or_else(|e| panic!("{binary}: {e}"));
    config.asked().into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn every_function_gets_the_variables_its_configuration_reads() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    let global_env = keys(&globals["Environment"]["Variables"]);
    let functions = of_type(&t, "AWS::Serverless::Function");
    let mut binaries = BTreeSet::new();
    for (name, f) in &functions {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: Binary"));
        binaries.insert(binary.to_owned());
        let mut env = global_env.clone();
        env.extend(keys(&f["Properties"]["Environment"]["Variables"]));
        for var in asked_by(binary).await {
            if LOCAL_ONLY.contains(&var.as_str()) {
                continue;
            }
            // A secret is configured by its Secrets Manager ARN, read at start-up.
            let by_arn = SECRETS
                .iter()
                .find(|(plain, _)| *plain == var)
                .map(|(_, arn)| arn.to_string());
            assert!(
                env.contains(&var) || by_arn.is_some_and(|arn| env.contains(&arn)),
                "{name} ({binary}) reads {var}, which template.yaml does not set"
            );
        }
        for local in LOCAL_ONLY {
            assert!(
                !env.contains(local),
                "{name}: {local} is for local endpoints only"
            );
        }
        for (plain, _) in SECRETS {
            assert!(
                !env.contains(plain),
                "{name}: {plain} as a plain value; the function gets its *_SECRET_ARN"
            );
        }
        assert!(
            f["Properties"]["MemorySize"].as_i64().is_some(),
            "{name}: memory chosen"
        );
    }
    let crates: BTreeSet<String> =
        std::fs::read_dir(format!("{}/../functions", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    assert_eq!(
        binaries, crates,
        "one template function per crate in functions/"
    );
}

#[test]
fn the_table_is_the_stores() {
    let t = template();
    let tables = of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 2, "the connections and the events table");
    let events = &t["Resources"]["EventsTable"]["Properties"];
    use realtime::aws::events::{ATTR_EXPIRES_AT as EVENT_TTL, ATTR_SEQ, ATTR_STREAM};
    assert_eq!(events["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    let key: Vec<(&str, &str)> = events["KeySchema"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(key, [(ATTR_STREAM, "HASH"), (ATTR_SEQ, "RANGE")]);
    assert_eq!(
        events["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(EVENT_TTL)
    );
    let p = &t["Resources"]["ConnectionsTable"]["Properties"];
    assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        p["KeySchema"][0]["AttributeName"].as_str(),
        Some(ATTR_CONNECTION_ID)
    );
    assert_eq!(p["KeySchema"][0]["KeyType"].as_str(), Some("HASH"));
    assert_eq!(p["KeySchema"].as_vec().unwrap().len(), 1);
    assert_eq!(
        p["GlobalSecondaryIndexes"].as_vec().unwrap().len(),
        INDEXES.len()
    );
    let types: HashMap<&str, &str> = p["AttributeDefinitions"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types[ATTR_RECONNECT_AT], "N",
        "reconnect_at holds an epoch minute"
    );
    for (i, (index, partition)) in INDEXES.into_iter().enumerate() {
        let gsi = &p["GlobalSecondaryIndexes"][i];
        assert_eq!(gsi["IndexName"].as_str(), Some(index));
        assert_eq!(
            gsi["KeySchema"][0]["AttributeName"].as_str(),
            Some(partition)
        );
        assert_eq!(gsi["KeySchema"][0]["KeyType"].as_str(), Some("HASH"));
        assert_eq!(
            gsi["KeySchema"][1]["AttributeName"].as_str(),
            Some(ATTR_CONNECTION_ID)
        );
        assert_eq!(gsi["KeySchema"][1]["KeyType"].as_str(), Some("RANGE"));
        assert_eq!(
            gsi["Projection"]["ProjectionType"].as_str(),
            Some("INCLUDE")
        );
        let projected: BTreeSet<String> = gsi["Projection"]["NonKeyAttributes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .map(str::to_owned)
            .collect();
        assert_eq!(
            projected,
            index_projection(partition).into_iter().collect(),
            "{index}"
        );
    }
    assert_eq!(
        p["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(ATTR_EXPIRES_AT)
    );
    assert_eq!(
        p["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
}

#[test]
fn the_routes_are_the_protocols_and_message_routes_are_two_way() {
    let t = template();
    let api = &resource(&t, "WebSocketApi")["Properties"];
    assert_eq!(api["ProtocolType"].as_str(), Some("WEBSOCKET"));
    assert_eq!(
        api["RouteSelectionExpression"].as_str(),
        Some("$request.body.action")
    );
    let routes: Vec<_> = of_type(&t, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .filter(|(_, r)| r["Properties"]["ApiId"].as_str() == Some("WebSocketApi"))
        .collect();
    let keys: BTreeSet<&str> = routes
        .iter()
        .filter_map(|(_, r)| r["Properties"]["RouteKey"].as_str())
        .collect();
    let mut want: BTreeSet<&str> = realtime::wire::client::MESSAGE_ROUTES.into_iter().collect();
    want.extend(["$connect", "$disconnect", "$default"]);
    assert_eq!(keys, want);
    let responses: BTreeSet<String> = of_type(&t, "AWS::ApiGatewayV2::RouteResponse")
        .iter()
        .map(|(_, r)| r["Properties"]["RouteId"].as_str().unwrap().to_owned())
        .collect();
    for (name, route) in &routes {
        let key = route["Properties"]["RouteKey"].as_str().unwrap();
        if key != "$connect" && key != "$disconnect" {
            assert_eq!(
                route["Properties"]["RouteResponseSelectionExpression"].as_str(),
                Some("$default"),
                "{key}"
            );
            assert!(
                responses.contains(name),
                "{key} has a route response (two-way)"
            );
        }
    }
    let lambda_integrations = of_type(&t, "AWS::ApiGatewayV2::Integration")
        .into_iter()
        .filter(|(_, i)| i["Properties"]["IntegrationType"].as_str() == Some("AWS_PROXY"))
        .count();
    assert_eq!(
        of_type(&t, "AWS::Lambda::Permission").len(),
        lambda_integrations,
        "a permission per Lambda integration"
    );
}

fn statements(y: &Yaml, out: &mut Vec<Yaml>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if k.as_str() == Some("Statement") {
                    out.extend(v.as_vec().cloned().unwrap_or_default());
                } else {
                    statements(v, out);
                }
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| statements(v, out)),
        _ => {}
    }
}

#[test]
fn no_iam_statement_grants_every_resource() {
    let mut found = Vec::new();
    statements(&template()["Resources"], &mut found);
    assert!(found.len() >= 8, "statements found: {}", found.len());
    for s in &found {
        if !s["Principal"].is_badvalue() {
            continue; // a trust policy names who may assume a role, not what it may touch
        }
        let resources = match &s["Resource"] {
            Yaml::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        assert!(
            !resources.iter().any(|r| r.as_str() == Some("*")),
            "statement with Resource \"*\": {s:?}"
        );
        assert!(
            !matches!(s["Resource"], Yaml::BadValue),
            "statement without a Resource: {s:?}"
        );
    }
}

// ------------------------------------------------------------------ operations

fn resource<'a>(t: &'a Yaml, name: &str) -> &'a Yaml {
    let r = &t["Resources"][name];
    assert!(!r.is_badvalue(), "template.yaml has no resource {name}");
    r
}

fn strs(y: &Yaml) -> Vec<&str> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(Yaml::as_str).collect(),
        other => other.as_str().into_iter().collect(),
    }
}

/// Every scalar string anywhere under `y`.
fn all_strings<'a>(y: &'a Yaml, out: &mut Vec<&'a str>) {
    match y {
        Yaml::String(s) => out.push(s.as_str()),
        Yaml::Array(a) => a.iter().for_each(|v| all_strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            all_strings(k, out);
            all_strings(v, out)
        }),
        _ => {}
    }
}

fn functions(t: &Yaml) -> Vec<(String, &Yaml)> {
    of_type(t, "AWS::Serverless::Function")
}

/// `!If [condition, then, else]` as parsed.
fn if_of(y: &Yaml) -> (&str, &Yaml, &Yaml) {
    let a = y.as_vec().unwrap_or_else(|| panic!("not an Fn::If: {y:?}"));
    assert_eq!(a.len(), 3, "Fn::If has three parts: {y:?}");
    (a[0].as_str().unwrap(), &a[1], &a[2])
}

fn parameter<'a>(t: &'a Yaml, name: &str) -> &'a Yaml {
    let p = &t["Parameters"][name];
    assert!(!p.is_badvalue(), "template.yaml has no parameter {name}");
    p
}

#[test]
fn the_account_logging_role_is_created_unless_the_account_has_one() {
    let t = template();
    let p = parameter(&t, "CreateApiGatewayAccountRole");
    assert_eq!(
        p["Default"].as_str(),
        Some("true"),
        "a fresh account needs no manual step"
    );
    assert_eq!(
        t["Conditions"]["CreateAccountRole"][0].as_str(),
        Some("CreateApiGatewayAccountRole")
    );
    let account = resource(&t, "ApiGatewayAccount");
    assert_eq!(account["Type"].as_str(), Some("AWS::ApiGateway::Account"));
    assert_eq!(account["Condition"].as_str(), Some("CreateAccountRole"));
    assert_eq!(
        account["Properties"]["CloudWatchRoleArn"].as_str(),
        Some("ApiGatewayCloudWatchRole.Arn")
    );
    let role = resource(&t, "ApiGatewayCloudWatchRole");
    assert_eq!(role["Condition"].as_str(), Some("CreateAccountRole"));
    assert_eq!(
        role["DeletionPolicy"].as_str(),
        Some("Retain"),
        "the account setting outlives the stack"
    );
    assert_eq!(
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
            .as_str(),
        Some("apigateway.amazonaws.com")
    );
    assert!(
        strs(&role["Properties"]["ManagedPolicyArns"])
            .iter()
            .any(|a| a.ends_with("service-role/AmazonAPIGatewayPushToCloudWatchLogs"))
    );
    // The logging stage waits for the account setting (through a handle, since DependsOn
    // cannot name a conditional resource).
    let stage = resource(&t, "WebSocketStage");
    assert!(!stage["Properties"]["AccessLogSettings"].is_badvalue());
    assert!(strs(&stage["DependsOn"]).contains(&"ApiGatewayAccountReady"));
    let (cond, then, _) =
        if_of(&resource(&t, "ApiGatewayAccountReady")["Metadata"]["AccountSetting"]);
    assert_eq!(
        (cond, then.as_str()),
        ("CreateAccountRole", Some("ApiGatewayAccount"))
    );
}

#[test]
fn metrics_carry_namespace_and_stack_and_every_alarm_notifies_one_topic() {
    let t = template();
    assert_eq!(
        parameter(&t, "MetricsNamespace")["Default"].as_str(),
        Some(realtime::metrics::DEFAULT_METRICS_NAMESPACE)
    );
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(env["METRICS_NAMESPACE"].as_str(), Some("MetricsNamespace"));
    assert_eq!(env["STACK_NAME"].as_str(), Some("AWS::StackName"));

    assert_eq!(
        resource(&t, "AlarmTopic")["Type"].as_str(),
        Some("AWS::SNS::Topic")
    );
    let sub = resource(&t, "AlarmEmailSubscription");
    assert_eq!(sub["Condition"].as_str(), Some("HasAlarmEmail"));
    assert_eq!(sub["Properties"]["Protocol"].as_str(), Some("email"));
    assert_eq!(sub["Properties"]["Endpoint"].as_str(), Some("AlarmEmail"));
    assert_eq!(parameter(&t, "AlarmEmail")["Default"].as_str(), Some(""));

    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 12, "alarms: {}", alarms.len());
    for (name, a) in &alarms {
        let p = &a["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            let list = p[actions]
                .as_vec()
                .unwrap_or_else(|| panic!("{name}: {actions}"));
            assert_eq!(list[0].as_str(), Some("AlarmTopic"), "{name}: {actions}");
            // An existing topic (AlarmTopicArn) is notified too, when given.
            let (cond, then, _) = if_of(&list[1]);
            assert_eq!(
                (cond, then.as_str()),
                ("HasAlarmTopic", Some("AlarmTopicArn")),
                "{name}"
            );
        }
        // The project's own metrics: this stack's series, never another stack's.
        if p["Namespace"].as_str() == Some("MetricsNamespace") {
            let dims: Vec<(&str, &str)> = p["Dimensions"]
                .as_vec()
                .unwrap_or_else(|| panic!("{name}: dimensions"))
                .iter()
                .map(|d| (d["Name"].as_str().unwrap(), d["Value"].as_str().unwrap()))
                .collect();
            assert_eq!(dims[0], ("Stack", "AWS::StackName"), "{name}");
            assert_eq!(dims[1].0, "Function", "{name}");
        }
        assert_ne!(
            p["Namespace"].as_str(),
            Some(realtime::metrics::DEFAULT_METRICS_NAMESPACE),
            "{name}: a fixed namespace mixes every stack's series"
        );
    }
    // The dead-letter queue's depth is alarmed.
    let dlq = resource(&t, "BroadcastDeadLetterAlarm")["Properties"].clone();
    assert_eq!(dlq["Namespace"].as_str(), Some("AWS/SQS"));
    assert_eq!(
        dlq["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    assert_eq!(
        dlq["Dimensions"][0]["Value"].as_str(),
        Some("BroadcastDeadLetterQueue.QueueName")
    );
    assert_eq!(
        resource(&t, "BroadcastDeadLetterQueue")["Properties"]["MessageRetentionPeriod"].as_i64(),
        Some(1_209_600)
    );
    // Every function has an errors alarm on it (the one its deployment rolls back on).
    for (name, _) in functions(&t) {
        assert!(
            alarms.iter().any(
                |(_, a)| a["Properties"]["MetricName"].as_str() == Some("Errors")
                    && a["Properties"]["Dimensions"][0]["Value"].as_str() == Some(name.as_str())
            ),
            "{name} has no errors alarm"
        );
    }
}

#[test]
fn the_dashboard_shows_the_stacks_own_series() {
    let t = template();
    let body = resource(&t, "Dashboard")["Properties"]["DashboardBody"]
        .as_str()
        .expect("a !Sub string");
    let body: serde_json::Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let widgets = body["widgets"].as_array().unwrap();
    let titles: Vec<String> = widgets
        .iter()
        .map(|w| w["properties"]["title"].as_str().unwrap().to_lowercase())
        .collect();
    for want in [
        "connections",
        "deliveries",
        "410",
        "429",
        "fan-out duration",
        "errors",
        "relay heartbeat",
        "outbox age",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no widget for {want}: {titles:?}"
        );
    }
    let mut own = 0;
    for w in widgets {
        for m in w["properties"]["metrics"].as_array().unwrap() {
            let m: Vec<&str> = m
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            if m[0] == "${MetricsNamespace}" {
                own += 1;
                assert_eq!(&m[2..4], ["Stack", "${AWS::StackName}"], "{m:?}");
                assert_eq!(m[4], "Function", "{m:?}");
            } else {
                assert!(m[0].starts_with("AWS/"), "a fixed custom namespace: {m:?}");
            }
        }
    }
    assert!(own >= 8, "custom series: {own}");
}

/// The Resource of every GetSecretValue statement of a function.
fn secret_grants(f: &Yaml) -> Vec<Yaml> {
    let mut found = Vec::new();
    statements(&f["Properties"]["Policies"], &mut found);
    found
        .into_iter()
        .filter(|s| strs(&s["Action"]).contains(&"secretsmanager:GetSecretValue"))
        .map(|s| s["Resource"].clone())
        .collect()
}

#[test]
fn secrets_are_read_at_run_time_by_arn_and_granted_exactly() {
    let t = template();
    let mut every = Vec::new();
    all_strings(&t, &mut every);
    assert!(
        !every.iter().any(|s| s.contains("{{resolve:")),
        "no dynamic reference resolves a secret into the configuration"
    );
    for (name, p) in t["Parameters"].as_hash().unwrap() {
        assert!(
            p["NoEcho"].is_badvalue(),
            "{name:?}: no secret passes through a parameter (give its Secrets Manager ARN)"
        );
    }
    for arn in ["JwtSecretArn", "DatabaseUrlSecretArn"] {
        let p = parameter(&t, arn);
        assert_eq!(p["Default"].as_str(), Some(""), "{arn}");
        assert!(
            p["AllowedPattern"]
                .as_str()
                .unwrap()
                .contains("secretsmanager"),
            "{arn}"
        );
    }
    // The stack's own secret (when none is given): generated, retained in prod.
    let secret = resource(&t, "JwtSigningSecret");
    assert_eq!(secret["Condition"].as_str(), Some("CreateJwtSecret"));
    assert!(!secret["Properties"]["GenerateSecretString"].is_badvalue());
    assert!(secret["Properties"]["SecretString"].is_badvalue());
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(
            strs(&secret[policy]),
            ["IsProd", "Retain", "Delete"],
            "{policy}"
        );
    }
    let mut readers = BTreeSet::new();
    for (name, f) in functions(&t) {
        let env = &f["Properties"]["Environment"]["Variables"];
        let grants = secret_grants(f);
        let mut wanted = Vec::new();
        if !env["JWT_SECRET_ARN"].is_badvalue() {
            assert_eq!(
                strs(&env["JWT_SECRET_ARN"]),
                ["CreateJwtSecret", "JwtSigningSecret", "JwtSecretArn"],
                "{name}"
            );
            wanted.push(env["JWT_SECRET_ARN"].clone());
            readers.insert(format!("{name} jwt"));
        }
        match &env["DATABASE_URL_SECRET_ARN"] {
            Yaml::BadValue => {}
            Yaml::String(s) => {
                assert_eq!(s, "DatabaseUrlSecretArn", "{name}");
                wanted.push(Yaml::String(s.clone()));
                readers.insert(format!("{name} db"));
            }
            other => {
                let (cond, then, _) = if_of(other);
                assert_eq!(
                    (cond, then.as_str()),
                    ("HasDatabase", Some("DatabaseUrlSecretArn"))
                );
                wanted.push(then.clone());
                readers.insert(format!("{name} db"));
            }
        }
        // GetSecretValue on exactly the secrets the function is given, each once.
        let mut got: Vec<String> = grants.iter().map(|g| format!("{g:?}")).collect();
        let mut want: Vec<String> = wanted.iter().map(|g| format!("{g:?}")).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}: secrets granted vs given");
    }
    let readers: Vec<&str> = readers.iter().map(String::as_str).collect();
    assert_eq!(
        readers,
        [
            "ConnectFunction db",
            "ConnectFunction jwt",
            "RelayFunction db",
            "StatusFunction db",
            "StatusFunction jwt",
            "SubscribeFunction db",
            "SubscribeFunction jwt",
        ]
    );
}

#[test]
fn timeouts_leave_room_for_the_sdk_and_the_broadcaster_has_reserved_concurrency() {
    let t = template();
    let sdk = realtime_client::sdk::timeouts()
        .operation_timeout()
        .expect("an SDK operation timeout")
        .as_secs_f64();
    let global = t["Globals"]["Function"]["Timeout"].as_i64();
    for (name, f) in functions(&t) {
        let timeout = f["Properties"]["Timeout"]
            .as_i64()
            .or(global)
            .expect("a timeout") as f64;
        // One whole SDK operation (its retries included) and a cold start's reads fit.
        assert!(
            timeout >= sdk + 5.0,
            "{name}: {timeout} s against the SDK's {sdk} s"
        );
    }
    let broadcaster = &resource(&t, "BroadcasterFunction")["Properties"];
    let margin = realtime::runtime::deadline::DEADLINE_MARGIN.as_secs_f64();
    assert!(broadcaster["Timeout"].as_i64().unwrap() as f64 > sdk + margin);
    let (cond, then, otherwise) = if_of(&broadcaster["ReservedConcurrentExecutions"]);
    assert_eq!(cond, "HasBroadcasterReservedConcurrency");
    assert_eq!(then.as_str(), Some("BroadcasterReservedConcurrency"));
    assert_eq!(otherwise.as_str(), Some("AWS::NoValue"));
    assert_eq!(
        parameter(&t, "BroadcasterReservedConcurrency")["Type"].as_str(),
        Some("Number")
    );
}

#[test]
fn releases_are_gradual_through_aliases_and_roll_back_on_alarms() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["AutoPublishAlias"].as_str(), Some("live"));
    let deployment = parameter(&t, "DeploymentType");
    assert!(
        deployment["Default"]
            .as_str()
            .unwrap()
            .starts_with("Canary")
    );
    let mut aliases = BTreeSet::new();
    for (name, f) in functions(&t) {
        let p = &f["Properties"];
        aliases.insert(format!("{name}Aliaslive"));
        assert_eq!(
            p["AutoPublishAliasAllProperties"].as_bool(),
            Some(true),
            "{name}"
        );
        let pref = &p["DeploymentPreference"];
        assert_eq!(pref["Type"].as_str(), Some("DeploymentType"), "{name}");
        let alarms = strs(&pref["Alarms"]);
        assert!(!alarms.is_empty(), "{name}: rolled back on nothing");
        for alarm in alarms {
            let a = resource(&t, alarm);
            assert_eq!(
                a["Properties"]["Dimensions"][0]["Value"].as_str(),
                Some(name.as_str())
            );
            assert_eq!(
                a["Condition"], f["Condition"],
                "{name}: {alarm} exists when it does"
            );
        }
        if !f["Condition"].is_badvalue() {
            assert_eq!(pref["PassthroughCondition"].as_bool(), Some(true), "{name}");
        }
    }
    // What calls a function calls its alias.
    for (name, perm) in of_type(&t, "AWS::Lambda::Permission") {
        let target = perm["Properties"]["FunctionName"].as_str().unwrap();
        assert!(
            aliases.contains(target),
            "{name} allows {target}, not an alias"
        );
    }
    for (name, i) in of_type(&t, "AWS::ApiGatewayV2::Integration") {
        if i["Properties"]["IntegrationType"].as_str() == Some("AWS_PROXY") {
            let uri = i["Properties"]["IntegrationUri"].as_str().unwrap();
            assert!(
                aliases.iter().any(|a| uri.contains(a.as_str())),
                "{name}: {uri}"
            );
        }
    }
    let invoke = &resource(&t, "BroadcasterInvokePolicy")["Properties"]["PolicyDocument"];
    assert_eq!(
        strs(&invoke["Statement"][0]["Resource"]),
        ["BroadcasterFunctionAliaslive"]
    );
    let relay = &resource(&t, "RelayFunction")["Properties"];
    assert_eq!(
        relay["Environment"]["Variables"]["BROADCASTER_FUNCTION_NAME"].as_str(),
        Some("BroadcasterFunctionAliaslive")
    );
    let mut relay_statements = Vec::new();
    statements(&relay["Policies"], &mut relay_statements);
    assert!(
        relay_statements
            .iter()
            .any(|s| strs(&s["Action"]) == ["lambda:InvokeFunction"]
                && strs(&s["Resource"]) == ["BroadcasterFunctionAliaslive"])
    );
    assert_eq!(
        t["Outputs"]["BroadcasterFunctionArn"]["Value"].as_str(),
        Some("BroadcasterFunctionAliaslive")
    );
    assert!(
        t["Outputs"]["BroadcasterFunctionName"]["Value"]
            .as_str()
            .unwrap()
            .ends_with(":live")
    );
}

#[test]
fn data_is_retained_in_prod() {
    let t = template();
    // A conditional DeletionPolicy needs the LanguageExtensions transform, before SAM's.
    assert_eq!(
        strs(&t["Transform"]),
        ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    );
    assert_eq!(strs(&t["Conditions"]["IsProd"]), ["Environment", "prod"]);
    let tables = of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 2);
    for (name, table) in tables
        .iter()
        .chain(of_type(&t, "AWS::SecretsManager::Secret").iter())
    {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(
                strs(&table[policy]),
                ["IsProd", "Retain", "Delete"],
                "{name} {policy}"
            );
        }
    }
}

#[test]
fn domains_tracing_cors_and_throttling_are_parameters() {
    let t = template();
    for (api, domain, mapping, param) in [
        (
            "WebSocketApi",
            "WebSocketDomain",
            "WebSocketApiMapping",
            "WebSocketDomainName",
        ),
        (
            "StatusApi",
            "StatusDomain",
            "StatusApiMapping",
            "StatusDomainName",
        ),
    ] {
        assert_eq!(parameter(&t, param)["Default"].as_str(), Some(""));
        let d = resource(&t, domain);
        assert_eq!(
            d["Condition"].as_str(),
            Some(format!("Has{domain}").as_str())
        );
        assert_eq!(d["Properties"]["DomainName"].as_str(), Some(param));
        let cfg = &d["Properties"]["DomainNameConfigurations"][0];
        assert_eq!(cfg["CertificateArn"].as_str(), Some("DomainCertificateArn"));
        assert_eq!(cfg["SecurityPolicy"].as_str(), Some("TLS_1_2"));
        let m = resource(&t, mapping);
        assert_eq!(m["Condition"], d["Condition"]);
        assert_eq!(m["Properties"]["ApiId"].as_str(), Some(api));
    }
    assert!(!t["Rules"]["DomainsNeedCertificate"].is_badvalue());

    assert_eq!(
        t["Globals"]["Function"]["Tracing"].as_str(),
        Some("Tracing")
    );
    let tracing: Vec<&str> = strs(&parameter(&t, "Tracing")["AllowedValues"]);
    assert!(tracing.contains(&"Active") && tracing.contains(&"Disabled"));

    // The status API: CORS for the allowed origins, throttled, logged.
    let status = &resource(&t, "StatusApi")["Properties"];
    assert_eq!(status["ProtocolType"].as_str(), Some("HTTP"));
    let (cond, cors, _) = if_of(&status["CorsConfiguration"]);
    assert_eq!(cond, "HasCorsOrigins");
    assert_eq!(cors["AllowOrigins"].as_str(), Some("StatusAllowedOrigins"));
    assert!(strs(&cors["AllowMethods"]).contains(&"GET"));
    assert!(strs(&cors["AllowHeaders"]).contains(&"authorization"));
    let stage = &resource(&t, "StatusStage")["Properties"];
    assert_eq!(
        stage["DefaultRouteSettings"]["ThrottlingRateLimit"].as_str(),
        Some("StatusThrottlingRateLimit")
    );
    assert_eq!(
        stage["DefaultRouteSettings"]["ThrottlingBurstLimit"].as_str(),
        Some("StatusThrottlingBurstLimit")
    );
    assert!(!stage["AccessLogSettings"].is_badvalue());

    // $connect has its own throttle, under the account's 500 new connections a second.
    let ws = &resource(&t, "WebSocketStage")["Properties"];
    let connect = &ws["RouteSettings"]["$connect"];
    assert_eq!(
        connect["ThrottlingRateLimit"].as_str(),
        Some("ConnectThrottlingRateLimit")
    );
    assert_eq!(
        connect["ThrottlingBurstLimit"].as_str(),
        Some("ConnectThrottlingBurstLimit")
    );
    let rate = parameter(&t, "ConnectThrottlingRateLimit")["Default"]
        .as_i64()
        .unwrap();
    assert!(rate > 0 && rate <= 500, "{rate}");
}

#[test]
fn ping_is_answered_by_api_gateway_with_the_pong_reply() {
    let t = template();
    let route = of_type(&t, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .find(|(_, r)| r["Properties"]["RouteKey"].as_str() == Some("ping"))
        .expect("a ping route");
    let target = route.1["Properties"]["Target"].as_str().unwrap();
    let integration_name = target
        .strip_prefix("integrations/${")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("ping target {target}"));
    let integration = &resource(&t, integration_name)["Properties"];
    assert_eq!(
        integration["IntegrationType"].as_str(),
        Some("MOCK"),
        "no Lambda for ping"
    );
    assert_eq!(
        integration["TemplateSelectionExpression"].as_str(),
        Some("\\$default")
    );
    let request: serde_json::Value = serde_json::from_str(
        integration["RequestTemplates"]["$default"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(request["statusCode"], 200);
    let response = of_type(&t, "AWS::ApiGatewayV2::IntegrationResponse")
        .into_iter()
        .find(|(_, r)| r["Properties"]["IntegrationId"].as_str() == Some(integration_name))
        .expect("the mock's integration response");
    let p = &response.1["Properties"];
    assert_eq!(p["IntegrationResponseKey"].as_str(), Some("$default"));
    let reply: serde_json::Value =
        serde_json::from_str(p["ResponseTemplates"]["$default"].as_str().unwrap()).unwrap();
    assert_eq!(
        reply,
        serde_json::to_value(realtime::wire::client::Reply::Pong).unwrap()
    );
}

#[test]
fn the_build_cache_hashes_sources_only() {
    // sam build --cached hashes the whole CodeUri directory (following links); the repository
    // root would include target/ and .venv/, which every build changes.
    let t = template();
    let code_uri = t["Globals"]["Function"]["CodeUri"].as_str().unwrap();
    assert_ne!(code_uri, ".");
    for (name, f) in functions(&t) {
        assert!(
            f["Properties"]["CodeUri"].is_badvalue(),
            "{name}: its own CodeUri"
        );
    }
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let dir = format!("{root}/{code_uri}");
    let entries: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        entries,
        [
            ".cargo",
            "Cargo.lock",
            "Cargo.toml",
            "crates",
            "functions",
            "migrations",
            "tests"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );
    for linked in [
        "Cargo.lock",
        "Cargo.toml",
        "crates",
        "functions",
        "migrations",
        "tests",
    ] {
        let target = std::fs::read_link(format!("{dir}/{linked}")).unwrap();
        assert_eq!(target.to_str(), Some(format!("../{linked}").as_str()));
    }
    let config = std::fs::read_to_string(format!("{dir}/.cargo/config.toml")).unwrap();
    assert!(config.contains("target-dir = \"../target\""), "{config}");
}

/// Every `sam local invoke <Function> -e <fixture>` of docs/deploy.md names a function of
/// template.yaml and a fixture that exists; the env-vars file they pass is JSON with the
/// variables the functions need locally.
#[test]
fn the_readme_sam_local_commands_name_what_exists() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(format!("{root}/docs/deploy.md")).unwrap();
    let t = template();
    let functions: BTreeSet<String> = of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut invoked = BTreeSet::new();
    for line in readme.lines().filter(|l| l.contains("sam local invoke ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "invoke").unwrap();
        let function = words[at + 1];
        assert!(
            functions.contains(function),
            "docs/deploy.md invokes {function}, not in template.yaml"
        );
        for flag in ["-e", "--env-vars"] {
            let i = words
                .iter()
                .position(|w| *w == flag)
                .unwrap_or_else(|| panic!("{line}: {flag}"));
            let path = format!("{root}/{}", words[i + 1]);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let json: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            if flag == "--env-vars" {
                assert!(json["Parameters"]["JWT_SECRET"].is_string(), "{path}");
            }
        }
        invoked.insert(function.to_owned());
    }
    assert_eq!(
        invoked, functions,
        "docs/deploy.md shows sam local invoke for every function"
    );
    assert!(
        readme.contains("sam local start-api"),
        "and start-api for the status endpoint"
    );
}

/// Release builds unwind, so the runtime turns a handler's panic into one failed invocation:
/// set in the profile itself, since cargo-lambda's release builds otherwise default to abort.
#[test]
fn release_builds_unwind_on_panic() {
    let cargo =
        std::fs::read_to_string(format!("{}/../Cargo.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let release: Vec<(String, String)> = cargo
        .split("\n[")
        .find(|section| section.starts_with("profile.release]"))
        .expect("a [profile.release] section")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect();
    assert!(
        release.contains(&("panic".to_owned(), "unwind".to_owned())),
        "{release:?}"
    );
}
