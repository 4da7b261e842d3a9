//! AWS adapters of the ports: the DynamoDB connection store and event store, and the
//! Management API sender, the Secrets Manager reader.
//! (Lambda Invoke and the SDK's HTTP client live in `realtime-client`, which publishers link.)

pub mod dynamo;
pub mod events;
pub mod management_api;
pub mod secrets;
