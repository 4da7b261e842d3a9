//! template.yaml against the code: each function's environment has every variable its
//! configuration asks for; the table, index, projection and TTL are the store's; the routes
//! are the protocol's; and no IAM statement grants `Resource: "*"`.

use std::collections::{BTreeSet, HashMap};

use realtime::aws::dynamo::{
    ATTR_CONNECTION_ID, ATTR_EXPIRES_AT, ATTR_RECONNECT_AT, INDEXES, index_projection,
};
use realtime::runtime::config::{self, Config};
use realtime::runtime::handlers::{
    Broadcaster, Connect, Disconnect, Message, RelayFunction, Status, Sweeper,
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
        "subscribe" => Message::from_config(&config).await.map(drop),
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
            assert!(
                env.contains(&var),
                "{name} ({binary}) reads {var}, which template.yaml does not set"
            );
        }
        assert!(
            f["Properties"]["MemorySize"].as_i64().is_some()
                && f["Properties"]["Timeout"].as_i64().is_some(),
            "{name}: memory and timeout chosen"
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
    let api = &of_type(&t, "AWS::ApiGatewayV2::Api")[0].1["Properties"];
    assert_eq!(api["ProtocolType"].as_str(), Some("WEBSOCKET"));
    assert_eq!(
        api["RouteSelectionExpression"].as_str(),
        Some("$request.body.action")
    );
    let routes = of_type(&t, "AWS::ApiGatewayV2::Route");
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
    assert_eq!(
        of_type(&t, "AWS::Lambda::Permission").len(),
        of_type(&t, "AWS::ApiGatewayV2::Integration").len(),
        "a permission per integration"
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
