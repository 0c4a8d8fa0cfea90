//! The JWT secret: from `JWT_SECRET`, or on SQLite generated once into `DATA_DIR`.

use std::io::Write;
use std::path::Path;

use crate::config::{Config, Secret};
use crate::StartError;

pub const SECRET_FILE: &str = "jwt-secret";

/// The secret tokens are signed with. Required with PostgreSQL (every instance must share it);
/// on SQLite, generated into `DATA_DIR/jwt-secret` (mode 0600) the first time.
pub fn jwt_secret(config: &Config) -> Result<Secret, StartError> {
    if let Some(secret) = &config.tokens.jwt_secret {
        if secret.0.len() < 32 {
            log::warn!("JWT_SECRET is shorter than 32 bytes: use a long random value in production");
        }
        return Ok(secret.clone());
    }
    if config.server.database_url.is_postgres() {
        return Err(StartError::Config(
            "JWT_SECRET is required with PostgreSQL: every instance must sign with the same secret".into(),
        ));
    }
    let path = config.server.data_dir.join(SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(Secret(existing.as_bytes().to_vec()));
        }
    }
    let generated = auth_domain::secret::random_hex(32)?;
    write_private(&path, &generated).map_err(|e| StartError::Io(format!("writing {}", path.display()), e))?;
    log::warn!(
        "JWT_SECRET is not set: generated one into {} (set JWT_SECRET to choose it; required with PostgreSQL)",
        path.display()
    );
    Ok(Secret(generated.into_bytes()))
}

/// What seals the secrets kept in the database (reset tokens awaiting delivery, tenants' secret
/// settings, signing keys' private halves): keys derived from `JWT_SECRET`, opening with the
/// previous secrets too.
pub fn secret_box(config: &Config) -> Result<auth_domain::secret::SecretBox, StartError> {
    let secret = jwt_secret(config)?;
    Ok(auth_domain::secret::SecretBox::new(&secret.0, &previous_secrets(config)))
}

/// `JWT_SECRET_PREVIOUS`, as bytes.
pub fn previous_secrets(config: &Config) -> Vec<Vec<u8>> {
    config.tokens.jwt_secret_previous.iter().map(|s| s.0.clone()).collect()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
