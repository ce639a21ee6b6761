//! Microsoft Graph without secrets: group overage resolved with a workload identity's
//! federated token (AKS) and with a managed identity (IMDS, App Service), over real
//! loopback HTTP against the TestIdp's token endpoint, IMDS and App Service look-alikes.

use crate::common::{self, TempDir};

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use entra_governor::graph::{
    ClientCredential, GraphGroupResolver, GraphGroupResolverBuilder, GroupResolutionError,
    GroupResolver, ManagedIdentityId,
};
use entra_governor::testing::TestIdp;
use entra_governor::{
    Cloud, ConfigError, GroupId, ObjectId, Principal, PrincipalKind, TenantId, TokenGroups,
};

const TRAINERS: &str = "0b3e3f0c-5b8a-4c4e-9c1d-2f6a7e8d9c01";
const VIEWERS: &str = "1c4f4a1d-6c9b-4d5f-8d2e-3a7b8f9e0d12";

fn trainers() -> GroupId {
    GroupId::parse(TRAINERS).unwrap()
}

fn viewers() -> GroupId {
    GroupId::parse(VIEWERS).unwrap()
}

fn resolver_for(idp: &TestIdp, credential: ClientCredential) -> GraphGroupResolverBuilder {
    crate::common::graph_resolver_with(idp, credential).max_retries(0)
}

/// An overage user of `tenant`, a member of Trainers (not Viewers) at the look-alike.
fn trainer(idp: &TestIdp, tenant: TenantId) -> Principal {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let oid = ObjectId::parse(&format!("5ec2e700-0000-4000-8000-{n:012x}")).unwrap();
    idp.set_memberships(&oid, vec![trainers()]);
    Principal::builder(tenant, oid)
        .kind(PrincipalKind::User)
        .groups(TokenGroups::Overage)
        .expires_at(SystemTime::now() + Duration::from_secs(3600))
        .build()
}

async fn resolve(
    resolver: &GraphGroupResolver,
    principal: &Principal,
) -> Result<Vec<GroupId>, GroupResolutionError> {
    resolver.resolve(principal, &[trainers(), viewers()]).await
}

/// A federated token file in a fresh directory, written like the kubelet does (write
/// elsewhere, then rename).
struct TokenFile {
    dir: TempDir,
}

impl TokenFile {
    fn new(contents: &str) -> TokenFile {
        let file = TokenFile {
            dir: TempDir::new("federated"),
        };
        file.write(contents);
        file
    }

    fn path(&self) -> PathBuf {
        self.dir.join("azure-identity-token")
    }

    fn write(&self, contents: &str) {
        let next = self.dir.join("..data_tmp");
        std::fs::write(&next, contents).unwrap();
        std::fs::rename(&next, self.path()).unwrap();
    }
}

fn workload_identity(idp: &TestIdp, file: &TokenFile) -> ClientCredential {
    ClientCredential::workload_identity(idp.client_id(), idp.tenant_id(), file.path())
}

#[tokio::test]
async fn a_workload_identity_resolves_a_verified_overage_token_through_graph() {
    let (idp, governor) = common::setup().await;
    let federated = idp.mint_federated_token();
    let file = TokenFile::new(&format!("{federated}\n"));
    let resolver = resolver_for(&idp, workload_identity(&idp, &file))
        .build()
        .unwrap();

    let token = idp.token().overage().sign();
    let user = governor.verify(&token).await.unwrap();
    assert_eq!(user.groups(), &TokenGroups::Overage);
    idp.set_memberships(user.object_id(), vec![trainers()]);

    assert_eq!(resolve(&resolver, &user).await.unwrap(), vec![trainers()]);
    assert_eq!(
        (resolver.token_requests(), idp.graph_token_requests()),
        (1, 1)
    );
    assert_eq!(idp.check_member_groups_requests(), 1);

    // Neither the federated token nor the Graph token shows in `Debug`.
    let shown = format!("{resolver:?}");
    assert!(!shown.contains(&federated), "{shown}");
    assert!(shown.contains("WorkloadIdentity") && shown.contains("azure-identity-token"));
    for graph_token in idp.issued_graph_tokens() {
        assert!(!shown.contains(&graph_token), "{shown}");
    }
}

#[tokio::test]
async fn a_rotated_federated_token_file_is_picked_up_without_a_restart() {
    let idp = TestIdp::start().await;
    let old = idp.mint_federated_token();
    let file = TokenFile::new(&old);
    let resolver = resolver_for(&idp, workload_identity(&idp, &file))
        .failure_ttl(Duration::from_millis(50))
        .build()
        .unwrap();
    let tenant = idp.tenant_id();
    assert_eq!(
        resolve(&resolver, &trainer(&idp, tenant.clone()))
            .await
            .unwrap(),
        vec![trainers()]
    );

    // The old federated token is revoked and the Graph token with it: the next lookup
    // needs a new Graph token, and the file still holds the revoked assertion.
    idp.revoke_federated_token(&old);
    idp.revoke_graph_tokens();
    let error = resolve(&resolver, &trainer(&idp, tenant.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the token endpoint",
            status: 401,
            code: "invalid_client (AADSTS70021)".into(),
        }
    );
    assert!(!error.to_string().contains(&old), "{error}");
    assert_eq!(idp.graph_token_requests(), 2);

    // The kubelet rotates the file: the same resolver reads the new token.
    let new = idp.mint_federated_token();
    file.write(&new);
    tokio::time::sleep(Duration::from_millis(120)).await; // the tenant's failure hold
    assert_eq!(
        resolve(&resolver, &trainer(&idp, tenant)).await.unwrap(),
        vec![trainers()]
    );
    assert_eq!(idp.graph_token_requests(), 3);
    assert_eq!(resolver.token_requests(), 3);
}

#[tokio::test]
async fn an_unregistered_or_unreadable_federated_token_is_a_typed_error() {
    let idp = TestIdp::start().await;
    let stranger = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6eDp5In0.c2ln";
    let file = TokenFile::new(stranger);
    let resolver = resolver_for(&idp, workload_identity(&idp, &file))
        .build()
        .unwrap();
    let error = resolve(&resolver, &trainer(&idp, idp.tenant_id()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the token endpoint",
            status: 401,
            code: "invalid_client (AADSTS70021)".into(),
        }
    );

    let missing = file.dir.join("absent");
    let credential =
        ClientCredential::workload_identity(idp.client_id(), idp.tenant_id(), &missing);
    let resolver = resolver_for(&idp, credential).build().unwrap();
    let error = resolve(&resolver, &trainer(&idp, idp.tenant_id()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unavailable {
            reason: format!(
                "the federated token file {} cannot be read: entity not found",
                missing.display()
            ),
        }
    );
}

#[tokio::test]
async fn imds_resolves_overage_and_its_token_is_cached_until_near_expiry() {
    let idp = TestIdp::start().await;
    // Kept for 4 s minus the refresh margin (at most half the life): 2 s.
    idp.set_graph_token_lifetime(Duration::from_secs(4));
    let credential = ClientCredential::managed_identity_at(
        idp.imds_endpoint(),
        ManagedIdentityId::SystemAssigned,
    );
    let resolver = resolver_for(&idp, credential).build().unwrap();
    let tenant = idp.tenant_id();

    assert_eq!(
        resolve(&resolver, &trainer(&idp, tenant.clone()))
            .await
            .unwrap(),
        vec![trainers()]
    );
    assert_eq!(
        resolve(&resolver, &trainer(&idp, tenant.clone()))
            .await
            .unwrap(),
        vec![trainers()]
    );
    assert_eq!((idp.imds_requests(), resolver.token_requests()), (1, 1));
    assert_eq!(idp.graph_token_requests(), 0); // no token endpoint involved
    assert_eq!(idp.check_member_groups_requests(), 2);
    let resource: String =
        url::form_urlencoded::byte_serialize(idp.authority().as_bytes()).collect();
    assert_eq!(
        idp.managed_identity_queries(),
        vec![format!("api-version=2018-02-01&resource={resource}")]
    );

    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        resolve(&resolver, &trainer(&idp, tenant)).await.unwrap(),
        vec![trainers()]
    );
    assert_eq!((idp.imds_requests(), resolver.token_requests()), (2, 2));
}

#[tokio::test]
async fn a_user_assigned_identity_is_named_by_client_object_or_resource_id() {
    let idp = TestIdp::start().await;
    let resource: String =
        url::form_urlencoded::byte_serialize(idp.authority().as_bytes()).collect();
    let resource_id = idp.user_assigned_resource_id();
    let encoded_id: String = url::form_urlencoded::byte_serialize(resource_id.as_bytes()).collect();
    let cases = [
        (
            ManagedIdentityId::ClientId(idp.user_assigned_client_id()),
            format!("client_id={}", idp.user_assigned_client_id()),
        ),
        (
            ManagedIdentityId::ObjectId(idp.user_assigned_object_id()),
            format!("object_id={}", idp.user_assigned_object_id()),
        ),
        (
            ManagedIdentityId::ResourceId(resource_id.clone()),
            format!("msi_res_id={encoded_id}"),
        ),
    ];
    for (n, (id, selector)) in cases.into_iter().enumerate() {
        let credential = ClientCredential::managed_identity_at(idp.imds_endpoint(), id);
        let resolver = resolver_for(&idp, credential).build().unwrap();
        assert_eq!(
            resolve(&resolver, &trainer(&idp, idp.tenant_id()))
                .await
                .unwrap(),
            vec![trainers()]
        );
        assert_eq!(
            idp.managed_identity_queries()[n],
            format!("api-version=2018-02-01&resource={resource}&{selector}")
        );
    }
}

#[tokio::test]
async fn imds_refuses_without_the_metadata_header_and_refusals_are_typed_errors() {
    let idp = TestIdp::start().await;
    let resource: String =
        url::form_urlencoded::byte_serialize(idp.authority().as_bytes()).collect();
    let url = format!(
        "{}?api-version=2018-02-01&resource={resource}",
        idp.imds_endpoint()
    );
    let client = reqwest::Client::new();
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Required metadata header not specified"
    );
    let answered = client
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);

    // The same 400 `invalid_request`, for an identity the VM does not have, reaches the
    // resolver as a typed refusal, without any token in it.
    let unknown = ManagedIdentityId::ClientId("3f2a1b0c-0000-4000-8000-00000000dead".into());
    let credential = ClientCredential::managed_identity_at(idp.imds_endpoint(), unknown);
    let resolver = resolver_for(&idp, credential).build().unwrap();
    let error = resolve(&resolver, &trainer(&idp, idp.tenant_id()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the managed identity endpoint",
            status: 400,
            code: "invalid_request".into(),
        }
    );
    assert_eq!(
        error.to_string(),
        "the managed identity endpoint refused the application (HTTP 400, invalid_request)"
    );
    assert_eq!(idp.imds_requests(), 3);
}

#[tokio::test]
async fn the_app_service_endpoint_resolves_overage_with_its_identity_header() {
    let idp = TestIdp::start().await;
    let header = idp.app_service_identity_header();
    let credential = ClientCredential::managed_identity_app_service(
        idp.app_service_identity_endpoint(),
        header.clone(),
        ManagedIdentityId::SystemAssigned,
    );
    // App Service's endpoint is on loopback: plain http without the dangerous switch for
    // it (the look-alike's Graph still needs the switch).
    let resolver = resolver_for(&idp, credential).build().unwrap();
    assert_eq!(
        resolve(&resolver, &trainer(&idp, idp.tenant_id()))
            .await
            .unwrap(),
        vec![trainers()]
    );
    assert_eq!(idp.app_service_identity_requests(), 1);
    assert_eq!(idp.imds_requests(), 0);
    let resource: String =
        url::form_urlencoded::byte_serialize(idp.authority().as_bytes()).collect();
    assert_eq!(
        idp.managed_identity_queries(),
        vec![format!("api-version=2019-08-01&resource={resource}")]
    );
    let shown = format!("{resolver:?}");
    assert!(!shown.contains(&header), "{shown}");
    assert!(
        shown.contains("app_service") && shown.contains("<redacted>"),
        "{shown}"
    );

    let wrong = ClientCredential::managed_identity_app_service(
        idp.app_service_identity_endpoint(),
        "not-the-header",
        ManagedIdentityId::SystemAssigned,
    );
    let resolver = resolver_for(&idp, wrong).build().unwrap();
    let error = resolve(&resolver, &trainer(&idp, idp.tenant_id()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::Unauthorized {
            service: "the managed identity endpoint",
            status: 401,
            code: "unauthorized_client".into(),
        }
    );
}

#[tokio::test]
async fn a_managed_identity_resolves_only_its_own_tenant() {
    let idp = TestIdp::start().await;
    let other = idp.add_tenant();
    let credential = ClientCredential::managed_identity_at(
        idp.imds_endpoint(),
        ManagedIdentityId::SystemAssigned,
    );
    let resolver = resolver_for(&idp, credential).build().unwrap();
    let error = resolve(&resolver, &trainer(&idp, other.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GroupResolutionError::ForeignTenant {
            home: idp.tenant_id(),
            tenant: other,
        }
    );
    assert_eq!(
        (idp.imds_requests(), idp.check_member_groups_requests()),
        (0, 0)
    );
}

#[test]
fn build_refuses_plain_http_elsewhere_and_a_foreign_workload_identity() {
    let tenant = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
    let client = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    let build = |credential: ClientCredential| {
        GraphGroupResolver::builder(&Cloud::global(), tenant.clone(), client, credential).build()
    };
    assert!(
        build(ClientCredential::managed_identity(
            ManagedIdentityId::SystemAssigned
        ))
        .is_ok()
    );
    let Err(ConfigError::InvalidCredential { reason }) =
        build(ClientCredential::managed_identity_at(
            "http://10.0.0.4/metadata/identity/oauth2/token",
            ManagedIdentityId::SystemAssigned,
        ))
    else {
        panic!("plain http to another host was accepted");
    };
    assert!(
        reason.starts_with("plain http to a managed identity endpoint"),
        "{reason}"
    );

    let other = TenantId::parse("fa15d692-e9c7-4460-a743-29f2956fd429").unwrap();
    let Err(error) = build(ClientCredential::workload_identity(
        client,
        other,
        "/var/run/token",
    )) else {
        panic!("a workload identity of another tenant was accepted");
    };
    assert_eq!(
        error.to_string(),
        ConfigError::InvalidCredential {
            reason: "the workload identity's tenant (AZURE_TENANT_ID) is not the resolver's tenant",
        }
        .to_string()
    );
    let Err(ConfigError::InvalidCredential { reason }) = build(
        ClientCredential::workload_identity("not-a-guid", tenant.clone(), "/var/run/token"),
    ) else {
        panic!("a client id that is not a GUID was accepted");
    };
    assert_eq!(
        reason,
        "the workload identity's client id (AZURE_CLIENT_ID) is not a GUID"
    );
}
