//! Lambda `subscribe`: a thin shell over `realtime::runtime::handlers::Messages`.

realtime::lambda_main!(realtime::runtime::handlers::Messages);
