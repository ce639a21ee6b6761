//! Workload identity federation (AKS): the projected Kubernetes service-account token is
//! the client assertion of the client credentials grant.
//!
//! The workload identity webhook mounts the token file and sets `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and `AZURE_AUTHORITY_HOST`, the variables every
//! Azure SDK reads. The kubelet rotates the file (at 80 % of its life, about every 48 min
//! by default), so the file is read afresh for every token request and its contents are
//! never kept: a rotated token is used without a restart. The contents are a credential
//! and never reach a log line, an error or a `Debug` output.

use std::io::Read as _;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::ids::{TenantId, is_guid};

/// The variables the Azure SDKs read, set by the AKS workload identity webhook.
pub(super) const FEDERATED_TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub(super) const CLIENT_ID_ENV: &str = "AZURE_CLIENT_ID";
pub(super) const TENANT_ID_ENV: &str = "AZURE_TENANT_ID";
pub(super) const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";

/// Largest federated token file read: Kubernetes service-account tokens are 1-2 KiB.
pub(super) const MAX_FEDERATED_TOKEN_BYTES: u64 = 64 * 1024;

/// Where the federated token is, and whose application it signs in.
pub(crate) struct WorkloadIdentity {
    /// The application (or user-assigned managed identity) whose federated identity
    /// credential trusts the cluster's issuer: sent as `client_id`.
    pub(super) client_id: String,
    /// The home tenant of that application.
    pub(super) tenant: TenantId,
    /// `AZURE_AUTHORITY_HOST`, when read from the environment: checked against the
    /// resolver's cloud.
    pub(super) authority_host: Option<String>,
    pub(super) token_file: PathBuf,
}

impl WorkloadIdentity {
    /// Reads the four variables through `var` (the process environment, or a table in
    /// tests: the environment is process-global and not safely writable in tests).
    pub(super) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let token_file = get(FEDERATED_TOKEN_FILE_ENV).ok_or(ConfigError::InvalidCredential {
            reason: "AZURE_FEDERATED_TOKEN_FILE is not set (is the pod labelled \
                     azure.workload.identity/use: \"true\"?)",
        })?;
        let client_id = get(CLIENT_ID_ENV).ok_or(ConfigError::InvalidCredential {
            reason: "AZURE_CLIENT_ID is not set",
        })?;
        let tenant = get(TENANT_ID_ENV).ok_or(ConfigError::InvalidCredential {
            reason: "AZURE_TENANT_ID is not set",
        })?;
        let tenant =
            TenantId::parse(tenant.trim()).map_err(|_| ConfigError::InvalidCredential {
                reason: "AZURE_TENANT_ID is not a tenant GUID",
            })?;
        Ok(Self {
            client_id: client_id.trim().to_owned(),
            tenant,
            authority_host: get(AUTHORITY_HOST_ENV).map(|h| h.trim().to_owned()),
            token_file: PathBuf::from(token_file),
        })
    }

    /// Checks the settings against the resolver's: a GUID client id, the resolver's own
    /// tenant (the federated credential lives in the application's home tenant) and, when
    /// `AZURE_AUTHORITY_HOST` is set, the resolver's cloud. The file is not read here:
    /// `build()` has no side effects, and `prefetch_token` is the readiness check.
    pub(super) fn check(&self, authority: &str, home: &TenantId) -> Result<(), ConfigError> {
        if !is_guid(&self.client_id) {
            return Err(ConfigError::InvalidCredential {
                reason: "the workload identity's client id (AZURE_CLIENT_ID) is not a GUID",
            });
        }
        if self.tenant != *home {
            return Err(ConfigError::InvalidCredential {
                reason: "the workload identity's tenant (AZURE_TENANT_ID) is not the \
                         resolver's tenant",
            });
        }
        if let Some(host) = &self.authority_host {
            let same = host
                .trim_end_matches('/')
                .eq_ignore_ascii_case(authority.trim_end_matches('/'));
            if !same {
                return Err(ConfigError::InvalidCredential {
                    reason: "AZURE_AUTHORITY_HOST is not the authority of the resolver's \
                             cloud",
                });
            }
        }
        if self.token_file.as_os_str().is_empty() {
            return Err(ConfigError::InvalidCredential {
                reason: "the federated token file path is empty",
            });
        }
        Ok(())
    }

    /// The federated token as it is in the file now, trimmed. Read per request and never
    /// kept. The error names the file and the kind of failure, never its contents.
    pub(super) fn assertion(&self) -> Result<String, String> {
        let path = self.token_file.display();
        let unreadable = |e: std::io::Error| {
            format!(
                "the federated token file {path} cannot be read: {}",
                e.kind()
            )
        };
        let file = std::fs::File::open(&self.token_file).map_err(unreadable)?;
        let mut bytes = Vec::new();
        file.take(MAX_FEDERATED_TOKEN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_FEDERATED_TOKEN_BYTES {
            return Err(format!(
                "the federated token file {path} is larger than {MAX_FEDERATED_TOKEN_BYTES} bytes"
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("the federated token file {path} is not UTF-8"))?;
        let assertion = text.trim();
        // A JWT is base64url segments and dots: anything else is not a token (and would
        // only be echoed back by Entra).
        let plausible = !assertion.is_empty()
            && assertion
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
        if !plausible {
            return Err(format!(
                "the federated token file {path} does not hold a token"
            ));
        }
        Ok(assertion.to_owned())
    }
}
