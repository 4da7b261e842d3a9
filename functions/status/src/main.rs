//! Lambda `status`: a thin shell over `realtime::runtime::handlers::Status`.

realtime::lambda_main!(realtime::runtime::handlers::Status);
