//! `entra-governor explain <policy> --caller <file.json> --action <a> --resource <r>`:
//! decides one request for a described caller and says why, with the roles the caller
//! holds. A thin shell over [`Caller::from_json_str`], `CompiledPolicy::decide_at` and
//! `CompiledPolicy::permissions`.
//!
//! The caller file is a caller described by hand, or `{"claims": {…}}` holding a decoded
//! access token's claims: see [`entra_governor::governance::caller`]. **Nothing is
//! verified**: the command shows what the policy would decide for such a token.
//!
//! Exit status: 0 whatever the decision; 1 when the policy or the caller does not load
//! (the message on standard error, no document).
//!
//! Text output: the decision's explanation on the first line, then the roles:
//!
//! ```text
//! allowed: training.submit on models/exp-1 by grant data-scientist#0 (role data-scientist via group:data-scientists)
//! roles: data-scientist (via group:data-scientists), inference-user (included by data-scientist)
//! ```
//!
//! `--format json` prints one document instead:
//!
//! ```json
//! {
//!   "format": "entra-governor.explain/1",
//!   "policy": "examples/policy.toml",
//!   "policy_version": "<sha-256 of the policy file>",
//!   "at": "2026-12-01T12:00:00Z",
//!   "explanation": "allowed: …",
//!   "decision": { "effect": "allow", "action": "…", "resource": "…", "reason": { "code": "allow" }, "matched": [ … ] },
//!   "caller": {
//!     "principal": { "tenant": "…", "object": "…" },
//!     "kind": "user",
//!     "guest": false,
//!     "groups": "evaluated",
//!     "roles": [{ "role": "data-scientist", "bindings": ["group:data-scientists"], "included_by": [] }]
//!   }
//! }
//! ```
//!
//! `decision` is the library's `Decision` as JSON; `groups` says whether group
//! membership was known (`evaluated`), unknown while a group binding could apply
//! (`unavailable`: `roles` may miss some), or not needed (`not_needed`).

use std::path::PathBuf;
use std::process::ExitCode;

use entra_governor::decision::Decision;
use entra_governor::governance::caller::{Caller, ClaimsSettings, Timestamp};
use entra_governor::policy::{MembershipKnowledge, MembershipSource, Permissions, Policy};
use serde::Serialize;

use crate::lint::Format;

/// The arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file.
    policy: PathBuf,
    /// The caller: a JSON file describing it, or `{"claims": {…}}`.
    #[arg(long)]
    caller: PathBuf,
    /// The requested action (`training.submit`).
    #[arg(long)]
    action: String,
    /// The requested resource (`models/exp-1`).
    #[arg(long)]
    resource: String,
    /// Decide at this time (RFC 3339 or Unix seconds) instead of now.
    #[arg(long)]
    at: Option<Timestamp>,
    /// For claims: the app registration emits group claims (no `groups` means none).
    #[arg(long)]
    groups_claim_emitted: bool,
    /// For claims: the app registration emits `acct` (a user without it is of unknown
    /// guest status).
    #[arg(long)]
    acct_claim_emitted: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The `entra-governor.explain/1` document.
#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    policy: String,
    policy_version: &'a str,
    at: Timestamp,
    explanation: String,
    decision: &'a Decision,
    caller: CallerView<'a>,
}

/// What the caller holds under the policy.
#[derive(Serialize)]
struct CallerView<'a> {
    principal: &'a entra_governor::PrincipalId,
    kind: entra_governor::PrincipalKind,
    guest: bool,
    groups: MembershipKnowledge,
    roles: &'a [entra_governor::policy::RoleAssignment],
}

/// Runs `explain`.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let policy = Policy::from_path(&args.policy)?;
    let text = std::fs::read_to_string(&args.caller)
        .map_err(|e| format!("{}: {e}", args.caller.display()))?;
    let caller =
        Caller::from_json_str(&text).map_err(|e| format!("{}: {e}", args.caller.display()))?;
    let settings = ClaimsSettings::default()
        .groups_claim_emitted(args.groups_claim_emitted)
        .acct_claim_emitted(args.acct_claim_emitted);
    let principal = caller
        .to_principal(&settings)
        .map_err(|e| format!("{}: {e}", args.caller.display()))?;
    let at = args.at.unwrap_or_else(Timestamp::now);
    let compiled = policy.compiled();
    let decision = compiled.decide_at(
        &principal,
        MembershipSource::FromToken,
        &args.action,
        &args.resource,
        at.unix_secs(),
    );
    let permissions = compiled.permissions(&principal);
    match args.format {
        Format::Text => print!("{}", text_output(&decision, &permissions)),
        Format::Json => {
            let document = Document {
                format: "entra-governor.explain/1",
                policy: args.policy.display().to_string(),
                policy_version: policy.version_hash(),
                at,
                explanation: decision.explain(),
                decision: &decision,
                caller: CallerView {
                    principal: &permissions.principal,
                    kind: permissions.kind,
                    guest: permissions.guest,
                    groups: permissions.groups,
                    roles: &permissions.roles,
                },
            };
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn text_output(decision: &Decision, permissions: &Permissions) -> String {
    let roles: Vec<String> = permissions
        .roles
        .iter()
        .map(|r| {
            let via = r.bindings.iter().map(|b| format!("via {b}"));
            let by = r.included_by.iter().map(|i| format!("included by {i}"));
            let how: Vec<String> = via.chain(by).collect();
            format!("{} ({})", r.role, how.join(", "))
        })
        .collect();
    let roles = if roles.is_empty() {
        "none".to_owned()
    } else {
        roles.join(", ")
    };
    let unknown = match permissions.groups {
        MembershipKnowledge::Unavailable => {
            " (group membership unknown: roles from groups are missing)"
        }
        _ => "",
    };
    format!("{}\nroles: {roles}{unknown}\n", decision.explain())
}
