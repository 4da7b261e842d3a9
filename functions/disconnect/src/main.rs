//! Lambda `disconnect`: a thin shell over `realtime::runtime::handlers::Disconnect`.

realtime::lambda_main!(realtime::runtime::handlers::Disconnect);
