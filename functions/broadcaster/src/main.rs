//! Lambda `broadcaster`: a thin shell over `realtime::runtime::handlers::Broadcaster`.

realtime::lambda_main!(realtime::runtime::handlers::Broadcaster);
