//! [`DecisionInputs`]: what a decision was made from, recorded so that it can be made
//! again (audit schema v2): replay, shadow policies and access reviews read it.
//!
//! The event's own fields already name the caller (`tenant_id`, `object_id`,
//! `principal_kind`, `guest`, `client_app_id`); the inputs add every other token fact a
//! policy reads. Nothing here is secret or mutable: scopes, `roles` values, directory role
//! template ids, authentication contexts and methods, times and group object ids.
//!
//! # Groups: the least-data choice
//!
//! By default ([`AuditGroups::Bound`]) only the caller's groups that the deciding policy
//! (and the shadow policy, when one is set) binds are recorded: they are all a decision
//! under those policies can read, and the rest of a user's groups (often hundreds) say
//! more about the person than the trail needs. A candidate policy that binds a group the
//! recording policies did not cannot be replayed exactly over such a trail: replay counts
//! those events as `inexact`. [`AuditGroups::All`] records every group the token lists.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, TenantId};
use crate::policy::{CompiledPolicy, MembershipSource};
use crate::principal::{ClientAuth, Principal, TokenGroups, TokenVersion};

use super::event::AuditEvent;

/// Which of the caller's groups a decision event records; see
/// [the module docs](self#groups-the-least-data-choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditGroups {
    /// Only the groups the deciding (and shadow) policy binds (the default).
    #[default]
    Bound,
    /// Every group the token lists.
    All,
}

/// What the token said about groups, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupsClaim {
    /// The token listed the caller's groups.
    Listed,
    /// The token carried a group overage marker.
    Overage,
    /// The token carried no group information.
    NotEmitted,
}

/// Whether membership was resolved outside the token (Microsoft Graph) for the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupsResolution {
    /// A resolver answered; `ids` are its answer (among the policy's bound groups).
    Resolved,
    /// A resolver was asked and failed: membership was unknown.
    Unavailable,
}

/// The caller's groups, as a decision saw them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedGroups {
    /// What the token said.
    pub claim: GroupsClaim,
    /// Set when membership came from a resolver rather than the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<GroupsResolution>,
    /// The groups recorded (see `recorded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<GroupId>,
    /// Which groups `ids` holds: the bound ones only, or all of them.
    pub recorded: AuditGroups,
    /// With [`AuditGroups::Bound`] while a shadow policy was set: its version, whose
    /// bound groups were recorded too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_policy: Option<String>,
}

/// Everything besides the caller's ids that a decision read: enough to decide it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DecisionInputs {
    /// The token version (`"1.0"`, `"2.0"`): v1 tokens prove MFA through `amr`.
    pub token_version: TokenVersion,
    /// How the client application authenticated (`azpacr` / `appidacr`).
    pub client_auth: ClientAuth,
    /// For a guest: the tenant that holds the account, when the token named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tenant: Option<TenantId>,
    /// The token could not say whether the caller is a guest (failed closed as one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest_unknown: bool,
    /// Delegated scopes (`scp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `roles` claim values: app roles of a user, app permissions of an application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
    /// Directory role template ids (`wids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<String>,
    /// Satisfied authentication contexts (`acrs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// Authentication methods (`amr`, v1 tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The last interactive sign-in (`auth_time`), seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// Client capabilities (`xms_cc`): `cp1` means the client answers claims challenges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xms_cc: Vec<String>,
    /// The caller's groups.
    pub groups: RecordedGroups,
}

/// The policies whose bound groups a [`AuditGroups::Bound`] record keeps.
pub(crate) struct GroupFilter<'a> {
    pub(crate) mode: AuditGroups,
    pub(crate) live: &'a CompiledPolicy,
    pub(crate) shadow: Option<&'a CompiledPolicy>,
}

impl GroupFilter<'_> {
    fn keeps(&self, group: &GroupId) -> bool {
        let binds = |p: &CompiledPolicy| p.bound_group_ids().binary_search(group).is_ok();
        self.mode == AuditGroups::All || binds(self.live) || self.shadow.is_some_and(binds)
    }
}

impl DecisionInputs {
    /// The inputs of a decision about `principal` with membership from `membership`.
    pub(crate) fn capture(
        principal: &Principal,
        membership: MembershipSource<'_>,
        filter: &GroupFilter<'_>,
    ) -> Self {
        let home = principal.home_tenant();
        Self {
            token_version: principal.version(),
            client_auth: principal.client_auth(),
            home_tenant: (home != principal.tenant()).then(|| home.clone()),
            guest_unknown: principal.guest_unknown,
            scopes: principal.scopes().to_vec(),
            app_roles: principal.roles().to_vec(),
            directory_roles: principal.directory_roles().to_vec(),
            acrs: principal.auth_contexts().to_vec(),
            amr: principal.auth_methods().to_vec(),
            auth_time: principal.auth_time,
            xms_cc: principal.client_capabilities().to_vec(),
            groups: recorded_groups(principal.groups(), membership, filter),
        }
    }

    /// The caller of `event` as it was decided, with the membership the decision read:
    /// `None` when the event does not name a verified caller.
    pub fn caller(&self, event: &AuditEvent) -> Option<ReplayCaller> {
        let tenant = event.tenant_id.clone()?;
        let object = event.object_id.clone()?;
        let mut builder = Principal::builder(tenant, object)
            .kind(event.principal_kind?)
            .version(self.token_version)
            .scopes(self.scopes.iter().cloned())
            .roles(self.app_roles.iter().cloned())
            .directory_roles(self.directory_roles.iter().cloned())
            .auth_contexts(self.acrs.iter().cloned())
            .auth_methods(self.amr.iter().cloned())
            .client_capabilities(self.xms_cc.iter().cloned())
            .groups(self.token_groups());
        if let Some(app) = &event.client_app_id {
            builder = builder.client_app(app.clone(), self.client_auth);
        }
        if let Some(t) = self.auth_time {
            builder = builder.auth_time(crate::clock::from_unix_secs(t));
        }
        if self.guest_unknown {
            builder = builder.guest_unknown();
        } else if event.guest == Some(true) {
            let home = self
                .home_tenant
                .clone()
                .or_else(|| event.tenant_id.clone())?;
            builder = builder.guest_from(home);
        }
        let decided_at = super::event::parse_rfc3339_millis(&event.time)?;
        Some(ReplayCaller {
            principal: builder.build(),
            resolution: self.groups.resolution,
            resolved: self.groups.ids.clone(),
            decided_at,
        })
    }

    fn token_groups(&self) -> TokenGroups {
        match self.groups.claim {
            GroupsClaim::Listed => TokenGroups::Listed(self.groups.ids.clone()),
            GroupsClaim::Overage => TokenGroups::Overage,
            GroupsClaim::NotEmitted => TokenGroups::NotEmitted,
        }
    }
}

/// A recorded caller, rebuilt to be decided again.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReplayCaller {
    /// The caller, with the token facts the decision read.
    pub principal: Principal,
    /// Whether membership came from a resolver.
    pub resolution: Option<GroupsResolution>,
    /// The resolver's answer, when there was one.
    resolved: Vec<GroupId>,
    /// When the decision was made (what `max_auth_age` is measured against).
    pub decided_at: SystemTime,
}

impl ReplayCaller {
    /// Where the decision read membership from.
    pub fn membership(&self) -> MembershipSource<'_> {
        match self.resolution {
            None => MembershipSource::FromToken,
            Some(GroupsResolution::Resolved) => MembershipSource::Resolved(&self.resolved),
            Some(GroupsResolution::Unavailable) => MembershipSource::Unavailable,
        }
    }

    /// The decision time in whole seconds since the Unix epoch.
    pub fn decided_at_secs(&self) -> u64 {
        self.decided_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

fn recorded_groups(
    token: &TokenGroups,
    membership: MembershipSource<'_>,
    filter: &GroupFilter<'_>,
) -> RecordedGroups {
    let keep = |ids: &[GroupId]| -> Vec<GroupId> {
        ids.iter().filter(|g| filter.keeps(g)).cloned().collect()
    };
    let (claim, listed) = match token {
        TokenGroups::Listed(ids) => (GroupsClaim::Listed, ids.as_slice()),
        TokenGroups::Overage => (GroupsClaim::Overage, &[][..]),
        TokenGroups::NotEmitted => (GroupsClaim::NotEmitted, &[][..]),
    };
    let (resolution, ids) = match membership {
        MembershipSource::FromToken => (None, keep(listed)),
        // A resolver answers about the live policy's groups only; anything else it
        // returned was not asked for and is not recorded.
        MembershipSource::Resolved(ids) => {
            let live = filter.live.bound_group_ids();
            let asked = ids.iter().filter(|g| live.binary_search(g).is_ok());
            (Some(GroupsResolution::Resolved), asked.cloned().collect())
        }
        MembershipSource::Unavailable => (Some(GroupsResolution::Unavailable), Vec::new()),
    };
    // A resolver is asked about the live policy's groups only: the shadow's are not
    // known for a resolved membership.
    let shadow_policy = match (filter.mode, resolution) {
        (AuditGroups::Bound, None) => filter.shadow.map(|p| p.version_hash().to_owned()),
        _ => None,
    };
    RecordedGroups {
        claim,
        resolution,
        ids,
        recorded: filter.mode,
        shadow_policy,
    }
}

#[cfg(test)]
mod tests;
