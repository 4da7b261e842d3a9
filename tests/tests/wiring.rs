//! One wiring: the dev server builds its handlers through `realtime::runtime::wiring`, as the
//! Lambdas do, so every setting a Lambda reads is read — and honoured — by the dev server too.

use std::collections::{BTreeSet, HashMap};

use devserver::DevServer;
use devserver::cli::DevOptions;
use realtime::runtime::config::{self, Config};
use realtime::runtime::handlers::{Broadcaster, Connect, Disconnect, Messages, Status};

const SECRET: &str = "0123456789abcdef0123456789abcdef-wiring";

fn config(values: &HashMap<&'static str, &'static str>) -> Config {
    Config::from_lookup(|name| values.get(name).map(|v| v.to_string()))
}

#[tokio::test]
async fn the_dev_server_honours_every_setting_the_lambdas_honour() {
    let values = HashMap::from([
        (config::CONNECTIONS_TABLE, "connections"),
        (config::JWT_SECRET, SECRET),
        (config::JWT_ISSUER, "https://issuer.example"),
        (config::JWT_AUDIENCE, "devhive"),
        (config::WEBSOCKET_ENDPOINT, "https://api.example/dev"),
        (config::MEMBERSHIP, "none"),
        (config::BROADCAST_CONCURRENCY, "7"),
        (config::BROADCASTER_FUNCTION_NAME, "fan-out"),
    ]);
    // What the five Lambdas read, found by building each as its main.rs does.
    let lambdas = config(&values);
    Connect::from_config(&lambdas).await.unwrap();
    Disconnect::from_config(&lambdas).await.unwrap();
    Messages::from_config(&lambdas).await.unwrap();
    Status::from_config(&lambdas).await.unwrap();
    Broadcaster::from_config(&lambdas).await.unwrap();
    let read_by_lambdas: BTreeSet<&str> = lambdas.asked().into_iter().collect();
    assert!(read_by_lambdas.contains(config::BROADCAST_CONCURRENCY));

    let dev = config(&values);
    let options = DevOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..DevOptions::default()
    };
    let server = DevServer::new(options, dev.clone()).await.unwrap();
    let read_by_dev: BTreeSet<&str> = dev.asked().into_iter().collect();
    // The dev server is its own API Gateway and (by default) its own store: the table and the
    // Management API endpoint are the only settings it replaces, and it says so in its banner.
    let replaced = BTreeSet::from([config::CONNECTIONS_TABLE, config::WEBSOCKET_ENDPOINT]);
    let missing: Vec<_> = read_by_lambdas
        .difference(&read_by_dev)
        .filter(|v| !replaced.contains(*v))
        .collect();
    assert!(missing.is_empty(), "the dev server ignores {missing:?}");

    // And the values are the ones in effect, not merely read.
    let handlers = &server.app.handlers;
    assert_eq!(handlers.broadcaster.fanout.concurrency(), 7);
    assert_eq!(server.app.broadcaster_name, "fan-out");
    let jwt = realtime::connection::auth::JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: None,
        audience: None,
    };
    let without_issuer = realtime::connection::auth::mint(&jwt, uuid::Uuid::new_v4(), 60);
    assert!(
        handlers
            .connect
            .authenticator
            .verify(&without_issuer)
            .is_err(),
        "JWT_ISSUER is enforced by the dev server's connect handler"
    );
    let with_claims = realtime::connection::auth::mint(
        &realtime::connection::auth::JwtConfig {
            issuer: Some("https://issuer.example".into()),
            audience: Some("devhive".into()),
            ..jwt
        },
        uuid::Uuid::new_v4(),
        60,
    );
    assert!(handlers.connect.authenticator.verify(&with_claims).is_ok());
}
