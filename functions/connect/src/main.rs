//! Lambda `connect`: a thin shell over `realtime::runtime::handlers::Connect`.

realtime::lambda_main!(realtime::runtime::handlers::Connect);
