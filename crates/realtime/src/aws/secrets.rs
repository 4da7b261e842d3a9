//! The Secrets Manager adapter of [`SecretStore`]: `GetSecretValue`, the secret's string.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::connection::auth::SecretStore;

pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(sdk: &aws_types::SdkConfig) -> Self {
        SecretsManager {
            client: Client::new(sdk),
        }
    }
}

#[async_trait]
impl SecretStore for SecretsManager {
    async fn secret(&self, id: &str) -> Result<String, String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())?;
        out.secret_string
            .ok_or_else(|| "the secret has no string value (SecretString)".to_owned())
    }
}
