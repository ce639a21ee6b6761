//! The admin routes' work, framework-neutral, shared by the decision service and the
//! example servers: `POST /v1/admin/revocations` and `GET /v1/admin/fleet`, each behind
//! a route requirement (`admin.revoke` on `admin/revocations`, `admin.read` on
//! `admin/fleet`).

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Governor, ObjectId, Principal, PrincipalId, RevocationError, TenantId};

/// `POST /v1/admin/revocations` body: the caller to revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// The caller's tenant (`tid`), a GUID.
    pub tenant_id: String,
    /// The caller's object id (`oid`), a GUID.
    pub object_id: String,
}

/// What an admin route answers: the status and, except for 204, a JSON body.
pub struct AdminAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body (`None` for 204).
    pub body: Option<Value>,
}

fn admin_error(status: u16, error: &str, description: String) -> AdminAnswer {
    AdminAnswer {
        status,
        body: Some(json!({ "error": error, "error_description": description })),
    }
}

/// After the route's requirement: revokes every token of the caller named in `body`
/// issued before now. 204; 400 for a bad body; 507 when the list is full; 503 when the
/// revocation file cannot be written (a storage fault worth retrying).
pub fn revoke(governor: &Governor, admin: &Principal, body: &[u8]) -> AdminAnswer {
    let request: RevocationRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return admin_error(
                400,
                "invalid_request",
                format!("expected {{\"tenant_id\": \"<guid>\", \"object_id\": \"<guid>\"}}: {e}"),
            );
        }
    };
    let id = match (
        TenantId::parse(&request.tenant_id),
        ObjectId::parse(&request.object_id),
    ) {
        (Ok(tenant), Ok(object)) => PrincipalId::new(tenant, object),
        (Err(e), _) => return admin_error(400, "invalid_request", format!("tenant_id: {e}")),
        (_, Err(e)) => return admin_error(400, "invalid_request", format!("object_id: {e}")),
    };
    match governor.revoke(&id, SystemTime::now()) {
        Ok(()) => {
            tracing::info!(revoked = %id, by = %admin.id(), "revocation recorded");
            AdminAnswer {
                status: 204,
                body: None,
            }
        }
        Err(e @ RevocationError::Full { .. }) => {
            admin_error(507, "revocation_not_recorded", e.to_string())
        }
        Err(e) => admin_error(503, "revocation_not_recorded", e.to_string()),
    }
}

/// After the route's requirement: this replica's view of the fleet.
pub fn fleet_status(governor: &Governor) -> Value {
    serde_json::to_value(governor.fleet_status())
        .unwrap_or_else(|e| json!({ "error": e.to_string() }))
}
