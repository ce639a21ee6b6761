//! The configuration file shared by the decision service (`entra-governor serve`) and the
//! example servers: one format, one loader, so they cannot drift.
//!
//! ```toml
//! [listen]
//! http = "127.0.0.1:8181"
//!
//! [entra]
//! tenant = "00000000-0000-0000-0000-000000000000"
//! client_id = "00000000-0000-0000-0000-000000000000"
//!
//! [policy]
//! path = "policy.toml"
//!
//! [[routes]]
//! method = "POST"
//! path = "/v1/models/{model}/infer"
//! action = "inference.invoke"
//! resource = "models/{model}"
//! ```
//!
//! Every key is documented, annotated, in `examples/service.toml`. Unknown keys are
//! refused with their path (`entra.tenant_id: unknown field ...`); relative paths are
//! relative to the file's directory; secrets are never in the file, only the names of
//! the environment variables holding them.
//!
//! [`Config::load`] parses and checks a file; [`Config::governor`] builds the
//! [`Governor`](crate::Governor) it describes, [`Config::audit_log`] its audit trail and
//! [`Config::route_table`] its `[[routes]]`.

mod build;
mod sections;

use std::path::{Path, PathBuf};

pub use sections::{
    AuditConfig, AuditMode, AuditSinkKind, AuditSpans, AuthzenConfig, Config, EntraConfig,
    FleetConfig, ForwardAuthConfig, ForwardAuthHeaders, GraphConfig, GraphCredentialKind,
    ListenConfig, PolicyConfig, RevocationsConfig, RouteConfig, UpstreamConfig, UpstreamValue,
};

/// Why a configuration file cannot be used. Every message names the file or the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{path}: {key}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The key's path (`entra.client_id`, `routes[2].path`), or `.` for the file.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but cannot be used.
    #[error("{key}: {message}")]
    Invalid {
        /// The key's path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The policy file cannot be loaded.
    #[error("{key} ({path}): {source}")]
    Policy {
        /// The key that names the file: `policy.path` or `policy.shadow`.
        key: &'static str,
        /// The policy file.
        path: PathBuf,
        /// Why (boxed: policy errors carry their whole context).
        source: Box<crate::PolicyError>,
    },
    /// The governor refuses the configuration.
    #[error(transparent)]
    Governor(#[from] crate::ConfigError),
}

impl ConfigFileError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads, parses and checks a configuration file; relative paths in it become
    /// relative to the file's directory.
    ///
    /// # Errors
    /// [`ConfigFileError::Read`], [`ConfigFileError::Parse`] (naming the key), or
    /// [`ConfigFileError::Invalid`] for a route that does not parse.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config =
            Self::from_toml_str(&text).map_err(|(key, message)| ConfigFileError::Parse {
                path: path.to_owned(),
                key,
                message,
            })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        config.route_table()?;
        config.upstream_headers()?;
        Ok(config)
    }

    /// Parses a configuration from TOML text (paths are left as written): the key's path
    /// and the message on error.
    fn from_toml_str(text: &str) -> Result<Self, (String, String)> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| (".".to_owned(), one_line(&e)))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            (key, one_line(e.inner()))
        })
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let join = |p: &mut PathBuf| *p = dir.join(&*p);
        join(&mut self.policy.path);
        self.policy.shadow.as_mut().map(join);
        self.audit.path.as_mut().map(join);
        self.revocations.file.as_mut().map(join);
        if let Some(graph) = &mut self.graph {
            graph.certificate_path.as_mut().map(join);
            graph.private_key_path.as_mut().map(join);
        }
    }
}

/// A TOML or serde error's message as one line (toml's carry a source excerpt).
fn one_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // toml's messages: "TOML parse error at line L, column C", the excerpt, the message.
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if lines.len() > 1 => format!("{last} ({first})"),
        _ => text.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests;
