//! Lambda `relay`: a thin shell over `realtime::runtime::handlers::RelayFunction` (every
//! minute: drain the Postgres outbox into broadcaster invocations until the deadline).

realtime::lambda_main!(realtime::runtime::handlers::RelayFunction);
