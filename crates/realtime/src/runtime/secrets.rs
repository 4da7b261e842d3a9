//! Secrets kept out of the functions' configuration. On AWS, `JWT_SECRET_ARN` and
//! `DATABASE_URL_SECRET_ARN` name Secrets Manager secrets; they are read once at cold start (a
//! plain `JWT_SECRET` / `DATABASE_URL`, as locally, wins), so nothing secret sits in the
//! template or the function's environment. The JWT secret is also re-read when a signature
//! does not verify, at most once a minute ([`crate::connection::auth::Authenticator`]), so a
//! rotated secret takes effect without a deploy.

use crate::connection::auth::SecretStore;
use crate::runtime::config::{
    Config, ConfigError, DATABASE_URL, DATABASE_URL_SECRET_ARN, JWT_SECRET, JWT_SECRET_ARN,
};

/// Each variable a secret can supply, beside the variable that names the secret.
pub const SECRET_VARIABLES: [(&str, &str); 2] = [
    (JWT_SECRET, JWT_SECRET_ARN),
    (DATABASE_URL, DATABASE_URL_SECRET_ARN),
];

/// The (variable, ARN variable) pairs whose value is still to be read from a secret: the ARN
/// is set and the plain variable is not.
pub fn pending(config: &Config) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    SECRET_VARIABLES
        .into_iter()
        .filter(|(plain, arn)| config.peek(plain).is_none() && config.peek(arn).is_some())
}

/// Whether `config` names a secret still to be read.
pub fn wanted(config: &Config) -> bool {
    pending(config).next().is_some()
}

/// `config` with each secret-named variable filled from `store`; a plain value already set is
/// kept. A secret that cannot be read fails the start with its ARN's variable named.
pub async fn resolve(config: &Config, store: &dyn SecretStore) -> Result<Config, ConfigError> {
    let mut resolved = config.clone();
    for (plain, arn_var) in pending(config) {
        let Some(arn) = config.get(arn_var) else {
            continue;
        };
        let value = store
            .secret(arn)
            .await
            .map_err(|e| ConfigError(format!("cannot read {arn_var} ({arn}): {e}")))?;
        resolved = resolved.with(plain, value);
    }
    Ok(resolved)
}
