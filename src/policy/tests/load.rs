//! Loading: key-path errors, syntax errors, JSON, files, version hashes.

use super::*;

#[test]
fn load_errors_name_the_key_path() {
    let cases: &[(&str, &str)] = &[
        (
            "version = 2",
            "policy: version: unsupported policy version 2 (expected 1)",
        ),
        (
            "version = 1\n[roles.a]\ninclude = [\"b\"]",
            "policy: roles.a.include[0]: unknown role \"b\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"training.fly\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: unknown action \"training.fly\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"robots.*\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: no known action matches \"robots.*\"",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"training\"], resources = [\"models/x\"] }]",
            "policy: roles.a.grants[0].actions[0]: malformed action \"training\": an action is family.verb",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [\"models/a**\"] }]",
            "policy: roles.a.grants[0].resources[0]: bad resource pattern \"models/a**\": '**' must be a whole segment",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [\"/models\"] }]",
            "policy: roles.a.grants[0].resources[0]: bad resource pattern \"/models\": leading '/'",
        ),
        (
            "version = 1\n[roles.a]\ngrants = [{ actions = [\"models.read\"], resources = [] }]",
            "policy: roles.a.grants[0].resources: resources must not be empty",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\ngroup = \"not-a-guid\"\nroles = [\"a\"]",
            "policy: bindings[0].group: malformed group id \"not-a-guid\": expected a GUID",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\nprincipal = { tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\", object = \"x\" }\nroles = [\"a\"]",
            "policy: bindings[0].principal.object: malformed object id \"x\": expected a GUID",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\nroles = [\"a\"]",
            "policy: bindings[0]: a binding needs one subject: group, app_role, app_permission, directory_role, tenant or principal",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\ngroup = \"0b1f2e3d-4c5b-4a69-8877-665544332211\"\ntenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nroles = [\"a\"]",
            "policy: bindings[0]: a binding has exactly one subject, found group and tenant",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"X\"\nkinds = [\"application\"]\nroles = [\"a\"]",
            "policy: bindings[0].kinds: `kinds` cannot be combined with `app_role`, which fixes the kind",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"X\"\nroles = [\"a\", \"a\"]",
            "policy: bindings[0].roles[1]: duplicate role \"a\"",
        ),
        (
            "version = 1\n[roles.a]\ninclude = [\"b\"]\n[roles.b]\ninclude = [\"c\"]\n[roles.c]\ninclude = [\"a\"]",
            "policy: roles.a.include: roles include each other: a -> b -> c -> a",
        ),
        (
            "version = 1\n[actions]\ncustom = [\"models.read\"]",
            "policy: actions.custom[0]: duplicate action \"models.read\"",
        ),
        (
            "version = 1\n[roles.\"adm\u{0456}n\"]",
            "policy: roles.\"admіn\": identifier \"adm\\u{456}n\" mixes Latin and Cyrillic letters",
        ),
        (
            "version = 1\n[roles.\"admin\u{202e}\"]",
            "policy: roles.\"admin\\u{202e}\": identifier \"admin\\u{202e}\" contains the bidirectional control character U+202E",
        ),
        (
            "version = 1\n[scopes]\n\"Inference Invoke\" = [\"inference.*\"]",
            "policy: scopes.\"Inference Invoke\": identifier \"Inference Invoke\" contains white space",
        ),
        (
            "version = 1\n[roles.a]\n[[bindings]]\napp_role = \"Platform.Adm\u{200b}in\"\nroles = [\"a\"]",
            "policy: bindings[0].app_role: identifier \"Platform.Adm\\u{200b}in\" contains the invisible character U+200B",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nactions = [\"*\"]\nresources = [\"**\"]\n[[deny]]\nname = \"x\"\nactions = [\"*\"]\nresources = [\"**\"]",
            "policy: deny[1].name: duplicate rule name \"x\"",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nactions = [\"inference.*\"]\nexcept_actions = [\"inference.*\"]\nresources = [\"**\"]",
            "policy: deny[0].except_actions: actions minus except_actions must not be empty",
        ),
        (
            "version = 1\n[[deny]]\nname = \"x\"\nwhen = { tenant_in = [\"nope\"] }\nactions = [\"*\"]\nresources = [\"**\"]",
            "policy: deny[0].when.tenant_in[0]: malformed tenant id \"nope\": expected a GUID",
        ),
        (
            "version = 1\n[[separation_of_duties]]\nname = \"s\"\nactions = [\"training.submit\"]\nresources = [\"**\"]",
            "policy: separation_of_duties[0].actions: separation of duties needs exactly two disjoint action specs, found 1",
        ),
        (
            "version = 1\n[[separation_of_duties]]\nname = \"s\"\nactions = [\"training.*\", \"training.submit\"]\nresources = [\"**\"]",
            "policy: separation_of_duties[0].actions: the two action specs of a separation-of-duty rule overlap",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(load_err(src), *expected, "{src}");
    }
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = Policy::from_toml_str(
        "version = 1\n[[bindings]]\nemail = \"ceo@contoso.com\"\nroles = []\n",
    )
    .unwrap_err();
    assert!(
        matches!(e.kind(), PolicyErrorKind::Syntax { line: Some(3), .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("policy:3:1: unknown field `email`"),
        "{e}"
    );
    for field in ["upn", "name = 1", "display_name"] {
        let src = format!("version = 1\n[[bindings]]\n{field} = \"x\"\nroles = []\n");
        let src = src.replace("= 1 = \"x\"", "= 1");
        let error = Policy::from_toml_str(&src).unwrap_err();
        // Refused as an unknown field, before any subject or role is looked at.
        assert!(
            matches!(error.kind(), PolicyErrorKind::Syntax { .. }),
            "{field}: {error}"
        );
    }
    assert_eq!(
        load_err("roles = 1"),
        "policy:1:9: invalid type: integer `1`, expected a table"
    );
    assert!(load_err("[roles.a]\n").contains("missing field `version`"));
}

#[test]
fn json_is_the_same_shape_and_rejects_duplicate_keys() {
    let json = r#"{"version":1,
      "roles":{"reader":{"grants":[{"actions":["models.read"],"resources":["models/**"]}]}},
      "bindings":[{"app_permission":"Models.Read","roles":["reader"]}]}"#;
    let p = Policy::from_json_str(json).unwrap();
    let app = user()
        .kind(PrincipalKind::Application)
        .roles(["Models.Read"])
        .build();
    assert!(
        p.compiled()
            .decide(&app, "models.read", "models/x")
            .is_allowed()
    );

    let dup =
        r#"{"version":1,"roles":{"a":{},"a":{"grants":[{"actions":["*"],"resources":["**"]}]}}}"#;
    let e = Policy::from_json_str(dup).unwrap_err();
    assert_eq!(e.to_string(), "policy:1:83: duplicate key `a`");
}

#[test]
fn from_path_names_the_file() {
    let dir = std::env::temp_dir().join(format!("entra-governor-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "version = 1\n[roles.a]\ninclude = [\"zz\"]\n").unwrap();
    let e = Policy::from_path(&file).unwrap_err();
    assert_eq!(e.origin(), Some(file.display().to_string().as_str()));
    assert_eq!(e.key_path(), "roles.a.include[0]");
    assert!(
        e.to_string()
            .ends_with("bad.toml: roles.a.include[0]: unknown role \"zz\"")
    );
    let missing = Policy::from_path(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(
        missing.kind(),
        PolicyErrorKind::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
    let json = dir.join("p.json");
    std::fs::write(&json, r#"{"version": 1}"#).unwrap();
    assert!(Policy::from_path(&json).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_hash_is_sha256_of_the_source() {
    let p = load("version = 1\n");
    // printf 'version = 1\n' | sha256sum
    assert_eq!(
        p.version_hash(),
        "dbab12665d98aef021ba64953c61b0ed8a908cfb56a1c01e2fcb4b052b71a2a1"
    );
    assert_eq!(load("version = 1\n").version_hash(), p.version_hash());
    assert_ne!(load("version = 1\n\n").version_hash(), p.version_hash());
    let by_doc = Policy::from_document(PolicyDocument::new()).unwrap();
    assert_eq!(by_doc.version_hash().len(), 64);
}

#[test]
fn compiled_policy_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<CompiledPolicy>();
    assert_send_sync::<Policy>();
    assert_send_sync::<crate::decision::Decision>();
    let p = load(BASE).compiled();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || {
                let u = user()
                    .scopes(["Training.Manage"])
                    .groups(groups(&[G1]))
                    .build();
                p.decide(&u, "training.submit", "models/exp-1").is_allowed()
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
