//! Lambda `sweeper`: a thin shell over `realtime::runtime::handlers::Sweeper` (every minute:
//! the reconnect hint to the connections that reach 1 h 55 min).

realtime::lambda_main!(realtime::runtime::handlers::Sweeper);
