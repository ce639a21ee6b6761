//! Unit tests of loading, validation, evaluation and lints, by topic; the helpers and
//! the base policy they share are here.

use super::*;
use crate::decision::Reason;
use crate::ids::{GroupId, ObjectId, TenantId};
use crate::principal::{Principal, PrincipalKind, TokenGroups};

const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_T: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";
const G1: &str = "0b1f2e3d-4c5b-4a69-8877-665544332211";
const G2: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

fn user() -> crate::principal::PrincipalBuilder {
    Principal::builder(TenantId::parse(T).unwrap(), ObjectId::parse(OID).unwrap())
}

fn groups(ids: &[&str]) -> TokenGroups {
    TokenGroups::Listed(ids.iter().map(|g| GroupId::parse(g).unwrap()).collect())
}

fn load(src: &str) -> Policy {
    Policy::from_toml_str(src).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(src: &str) -> String {
    Policy::from_toml_str(src).unwrap_err().to_string()
}

const BASE: &str = r#"
version = 1
[roles.reader]
grants = [{ actions = ["models.read"], resources = ["models/**"] }]
[roles.trainer]
include = ["reader"]
grants = [{ actions = ["training.*"], resources = ["models/exp-*"] }]
[[bindings]]
group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
roles = ["trainer"]
[scopes]
"Training.Manage" = ["training.*", "models.read"]
"Inference.Invoke" = ["inference.*"]
"#;

mod decide;
mod lints;
mod load;
mod requirements;
mod tenants;
