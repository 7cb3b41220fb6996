//! The OpenAPI document at `/openapi.json`: every `$ref` resolves, the constraints the handlers
//! enforce are declared, every error response has a body, and `docs/openapi.json` (from which the
//! dashboard generates its types) is the served document.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;

async fn fetch_document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("the document is JSON")
}

async fn served_document() -> Value {
    fetch_document(&TestApp::start().await).await
}

/// Every `$ref` under `value`, with the JSON path it was found at.
fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(target) = child.as_str() {
                        found.push((at.clone(), target));
                    }
                } else {
                    refs(child, format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The schema at `schema`, following a `$ref` and the `oneOf: [null, …]` of an optional field.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(target) = schema["$ref"].as_str() {
        let pointer = target.strip_prefix('#').expect("a local $ref");
        return resolve(doc, doc.pointer(pointer).expect("the $ref resolves"));
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let not_null: Vec<&Value> = variants
            .iter()
            .filter(|v| v["type"] != json!("null"))
            .collect();
        if let [only] = not_null[..] {
            return resolve(doc, only);
        }
    }
    schema
}

/// The schema of `operation`'s parameter `name`.
fn parameter<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    let parameters = doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has parameters"));
    let parameter = parameters
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has a parameter {name}"));
    resolve(doc, &parameter["schema"])
}

/// The schema of property `name` of component schema `component`.
fn property<'a>(doc: &'a Value, component: &str, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][component]["properties"][name];
    assert!(schema.is_object(), "{component}.{name} is in the document");
    resolve(doc, schema)
}

/// The keywords of `schema` that constrain a value (description and examples aside).
fn constraints(schema: &Value) -> Value {
    let mut map = schema.as_object().cloned().unwrap_or_default();
    map.retain(|key, _| !matches!(key.as_str(), "description" | "example" | "examples"));
    Value::Object(map)
}

#[tokio::test]
async fn every_ref_resolves_to_a_component() {
    let doc = served_document().await;
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    let dangling: Vec<String> = found
        .iter()
        .filter(|(_, target)| {
            !target.starts_with("#/components/")
                || doc.pointer(target.trim_start_matches('#')).is_none()
        })
        .map(|(at, target)| format!("{at} -> {target}"))
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:#?}");
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let doc = served_document().await;
    let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(id) = operation["operationId"].as_str() {
                seen.entry(id.to_owned())
                    .or_default()
                    .push(format!("{method} {path}"));
            }
        }
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(repeated.is_empty(), "repeated operationIds: {repeated:#?}");
}

#[tokio::test]
async fn every_error_response_has_the_error_body() {
    let doc = served_document().await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.as_str() < "400" {
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"],
                    json!({"$ref": "#/components/schemas/ErrorBody"}),
                    "{method} {path} {status} has no error body"
                );
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    description.starts_with('`'),
                    "{method} {path} {status} names its error code first: {description:?}"
                );
            }
            // Every /v1 operation needs PostgreSQL; all but asking for and redeeming a sign-in
            // link are authenticated and rate limited.
            let statuses: &[&str] = if operation.get("security").is_some() {
                &["401", "429", "503"]
            } else {
                &["503"]
            };
            for status in statuses {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    assert!(
        doc["paths"]["/v1/links"]["get"]["responses"]["429"]["headers"]["Retry-After"].is_object()
    );
}

#[tokio::test]
async fn enforced_constraints_are_declared() {
    let doc = served_document().await;
    let limit =
        |default: u64| json!({"type": "integer", "minimum": 1, "maximum": 100, "default": default});
    let integer_limit = |path: &str| {
        let mut schema = constraints(parameter(&doc, path, "get", "limit"));
        schema.as_object_mut().unwrap().remove("format");
        schema
    };
    assert_eq!(integer_limit("/v1/links"), limit(20));
    assert_eq!(integer_limit("/v1/xp"), limit(50));
    for scope in ["/v1/analytics", "/v1/links/{id}/analytics"] {
        let breakdown = format!("{scope}/breakdown/{{dimension}}");
        assert_eq!(integer_limit(&breakdown), limit(10));
        let clicks = format!("{scope}/clicks");
        assert_eq!(integer_limit(&clicks), limit(50));
        assert_eq!(
            parameter(&doc, &breakdown, "get", "dimension")["enum"],
            json!([
                "country",
                "region",
                "city",
                "device",
                "browser",
                "os",
                "referrer",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_term",
                "utm_content",
                "qr",
                "rule"
            ])
        );
        let dashboard = format!("{scope}/dashboard");
        assert_eq!(integer_limit(&dashboard), limit(10));
        let mut clicks_limit = constraints(parameter(&doc, &dashboard, "get", "clicks_limit"));
        clicks_limit.as_object_mut().unwrap().remove("format");
        assert_eq!(clicks_limit, limit(50));
        let timeseries = format!("{scope}/timeseries");
        assert_eq!(
            parameter(&doc, &timeseries, "get", "interval")["enum"],
            json!(["hour", "day"])
        );
        for path in [
            &breakdown,
            &clicks,
            &timeseries,
            &format!("{scope}/summary"),
            &dashboard,
        ] {
            assert_eq!(parameter(&doc, path, "get", "from")["format"], "date-time");
            assert_eq!(parameter(&doc, path, "get", "to")["format"], "date-time");
        }
    }
    let schemas = &doc["components"]["schemas"];
    for request in ["CreateLinkRequest", "UpdateLinkRequest"] {
        assert_eq!(
            schemas[request]["properties"]["rules"]["maxItems"],
            smo1_core::targeting::MAX_RULES
        );
    }
    assert_eq!(
        schemas["Os"]["enum"],
        json!([
            "ios",
            "android",
            "windows",
            "windows_phone",
            "macos",
            "chromeos",
            "linux"
        ])
    );
    assert_eq!(
        schemas["DeviceType"]["enum"],
        json!(["desktop", "mobile", "tablet", "bot", "other"])
    );
    assert_eq!(
        parameter(&doc, "/v1/links", "get", "sort")["enum"],
        json!(["created", "clicks"])
    );
    assert_eq!(
        parameter(&doc, "/v1/links", "get", "status")["enum"],
        json!(["active", "disabled", "expired"])
    );
    assert_eq!(parameter(&doc, "/v1/links", "get", "q")["maxLength"], 100);
    assert_eq!(
        parameter(&doc, "/v1/links/{id}", "get", "id")["format"],
        "uuid"
    );
    let qr = "/v1/links/{id}/qr";
    let size = constraints(parameter(&doc, qr, "get", "size"));
    assert_eq!(
        (&size["minimum"], &size["maximum"]),
        (&json!(64), &json!(2048))
    );
    for colour in ["fg", "bg"] {
        assert_eq!(
            parameter(&doc, qr, "get", colour)["pattern"],
            "^#?[0-9a-fA-F]{6}$"
        );
    }
    assert_eq!(
        parameter(&doc, qr, "get", "format")["enum"],
        json!(["svg", "png"])
    );
    let images = &doc["paths"][qr]["get"]["responses"]["200"]["content"];
    assert!(images["image/svg+xml"].is_object() && images["image/png"].is_object());
    assert_eq!(property(&doc, "SignInRequest", "email")["maxLength"], 320);

    for request in ["CreateLinkRequest", "UpdateLinkRequest"] {
        let slug = property(&doc, request, "custom_slug");
        assert_eq!(slug["minLength"], 3, "{request}");
        assert_eq!(slug["maxLength"], 64, "{request}");
        assert_eq!(slug["pattern"], "^[A-Za-z0-9_-]+$", "{request}");
        assert_eq!(property(&doc, request, "destination")["maxLength"], 2048);
        assert_eq!(property(&doc, request, "title")["maxLength"], 200);
        assert_eq!(
            constraints(property(&doc, request, "redirect_type")),
            json!({"type": "integer", "enum": [301, 302, 307, 308]}),
            "{request}"
        );
    }
    for field in ["source", "medium", "campaign", "term", "content"] {
        assert_eq!(
            property(&doc, "UtmInput", field)["maxLength"],
            200,
            "{field}"
        );
    }
    let secret = property(&doc, "SetProtectionRequest", "secret");
    assert_eq!(
        (&secret["minLength"], &secret["maxLength"]),
        (&json!(4), &json!(128))
    );
    assert_eq!(
        property(&doc, "SetProtectionRequest", "type")["enum"],
        json!(["pin", "password"])
    );
    let name = property(&doc, "CreateApiKey", "name");
    assert_eq!(
        (&name["minLength"], &name["maxLength"]),
        (&json!(1), &json!(100))
    );
    assert_eq!(property(&doc, "CreateApiKey", "scopes")["minItems"], 1);

    assert_eq!(
        property(&doc, "CreateLinkRequest", "domain")["maxLength"],
        253
    );
    let hostname = property(&doc, "AddDomainRequest", "hostname");
    assert_eq!(
        (&hostname["minLength"], &hostname["maxLength"]),
        (&json!(1), &json!(253))
    );
    for target in ["root_redirect", "not_found_redirect"] {
        assert_eq!(
            property(&doc, "UpdateDomainRequest", target)["maxLength"],
            2048,
            "{target}"
        );
    }
    for (path, method) in [
        ("/v1/domains/{id}", "get"),
        ("/v1/domains/{id}", "patch"),
        ("/v1/domains/{id}", "delete"),
        ("/v1/domains/{id}/verify", "post"),
    ] {
        assert_eq!(
            parameter(&doc, path, method, "id")["format"],
            "uuid",
            "{method} {path}"
        );
    }
    assert_eq!(
        property(&doc, "Domain", "status")["enum"],
        json!(["pending", "verified", "failed"])
    );
}

/// The declared bounds are the server's: just inside them is accepted, just outside refused.
#[tokio::test]
async fn declared_limit_bounds_are_the_enforced_ones() {
    let app = TestApp::start().await;
    let doc = fetch_document(&app).await;
    let user = app.api_user("bounds@example.com").await;
    for path in [
        "/v1/links",
        "/v1/xp",
        "/v1/analytics/clicks",
        "/v1/analytics/breakdown/country",
        "/v1/analytics/dashboard",
    ] {
        let template = path.replace("country", "{dimension}");
        let schema = parameter(&doc, &template, "get", "limit");
        let (min, max) = (
            schema["minimum"].as_i64().unwrap(),
            schema["maximum"].as_i64().unwrap(),
        );
        for (limit, accepted) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            let (status, body) = app
                .call(
                    Method::GET,
                    &format!("{path}?limit={limit}"),
                    &user.key,
                    None,
                )
                .await;
            let expected = if accepted {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(status, expected, "{path}?limit={limit}: {body}");
        }
    }
}

/// Where `a` and `b` first differ, as a path of keys (`None` when they are equal).
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|key| match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) => first_difference(u, v, &format!("{at}/{key}")),
                    _ => Some(format!("{at}/{key}")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{at}/{i}"))),
        _ => (a != b).then(|| at.to_owned()),
    }
}

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[tokio::test]
async fn committed_document_is_the_served_one() {
    let served = served_document().await;
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let mut text = serde_json::to_string_pretty(&served).expect("serializes");
        text.push('\n');
        std::fs::write(&path, text).expect("write docs/openapi.json");
        return;
    }
    let committed: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    if let Some(at) = first_difference(&committed, &served, "") {
        panic!(
            "docs/openapi.json is not the document the origin serves (first difference at \
             {at:?}); regenerate it with\n\
             UPDATE_OPENAPI=1 cargo nextest run -p smo1-origin --test openapi\n\
             and commit it (the dashboard generates its types from it)"
        );
    }
}
