//! The published OpenAPI document: it lists every route both listeners serve (and nothing
//! else), it is OpenAPI 3.1, it carries the signing scheme and every code, and the docs page
//! loads nothing from elsewhere.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

/// A path with its parameters' names dropped: `/v1/sessions/{session_id}/balance` and
/// `/v1/sessions/{sessionId}/balance` are the same route.
fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

fn registered() -> BTreeSet<(String, String)> {
    croupier::api::routes()
        .into_iter()
        .chain(croupier::api::private_routes())
        .map(|e| (e.method.as_str().to_lowercase(), shape(&e.path)))
        .collect()
}

fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_object().expect("the spec has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            item.keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|method| (method.clone(), shape(path)))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn served_spec(base: &str) -> Value {
    let answer = reqwest::get(format!("{base}/openapi.json"))
        .await
        .expect("GET /openapi.json");
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("the spec is JSON")
}

#[tokio::test]
async fn the_served_spec_lists_every_registered_route_and_nothing_else() {
    let app = spawn_app().await;
    let spec = served_spec(&app.base).await;
    let openapi = spec["openapi"].as_str().expect("an openapi version");
    assert!(openapi.starts_with("3.1"), "not OpenAPI 3.1: {openapi}");

    let (routes, described) = (registered(), documented(&spec));
    let missing: Vec<_> = routes.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the spec: {missing:?}"
    );
    let unserved: Vec<_> = described.difference(&routes).collect();
    assert!(
        unserved.is_empty(),
        "spec paths no route serves: {unserved:?}"
    );
    let private: BTreeSet<_> = croupier::api::private_routes()
        .iter()
        .map(|e| e.path.clone())
        .collect();
    for path in &private {
        let tags = &spec["paths"][path]
            .as_object()
            .and_then(|item| item.values().next())
            .expect("the private route is described")["tags"];
        assert_eq!(tags, &serde_json::json!(["private-listener"]), "{path}");
    }
}

/// The route list the test compares is the one the server registers: each of its routes is
/// answered by its handler, not by the catch-all "no such endpoint".
#[tokio::test]
async fn every_listed_route_is_served_by_its_listener() {
    let app = spawn_app().await;
    let listeners = [
        (&app.base, croupier::api::routes()),
        (&app.private_base, croupier::api::private_routes()),
    ];
    for (base, routes) in listeners {
        for route in routes {
            let path = route
                .path
                .replace("{session_id}", "01900000-0000-7000-8000-0000000000a1")
                .replace("{transaction_id}", "tx-1");
            let method =
                reqwest::Method::from_bytes(route.method.as_str().as_bytes()).expect("a method");
            let answer = app
                .http
                .request(method, format!("{base}{path}"))
                .body("{}")
                .send()
                .await
                .expect("the route answers");
            let body = answer.text().await.expect("a body");
            assert!(
                !body.contains("no such endpoint"),
                "{} {} is not served: {body}",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test]
async fn signed_calls_require_all_four_headers_and_list_their_codes() {
    let app = spawn_app().await;
    let spec = served_spec(&app.base).await;
    let headers = ["X-Counterparty-Id", "X-Timestamp", "X-Request-Id", "X-Sign"];
    let schemes = &spec["components"]["securitySchemes"];
    for header in headers {
        assert_eq!(schemes[header]["type"], "apiKey", "{header}");
        assert_eq!(schemes[header]["in"], "header", "{header}");
        assert_eq!(schemes[header]["name"], header);
    }
    let signed_prefixes = [
        "/v1/sessions/",
        "/v1/player/",
        "/v1/transactions/",
        "/v1/game/",
    ];
    let mut signed = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        if !signed_prefixes.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        for op in item.as_object().expect("a path item").values() {
            let required: BTreeSet<&str> = op["security"][0]
                .as_object()
                .unwrap_or_else(|| panic!("{path} has no security requirement"))
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(required, headers.into_iter().collect(), "{path}");
            signed += 1;
        }
    }
    assert_eq!(signed, 16, "five provider calls and eleven operator calls");

    let schemas = &spec["components"]["schemas"];
    let codes = |schema: &str, field: &str| -> Vec<i64> {
        schemas[schema]["properties"][field]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}.{field} lists its codes"))
            .iter()
            .map(|c| c.as_i64().expect("a code"))
            .collect()
    };
    assert_eq!(
        codes("ProviderAnswer", "_responseCode"),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 99, 104]
    );
    assert_eq!(
        codes("OperatorRefusal", "code"),
        [1, 2, 3, 4, 5, 6, 9, 100, 101, 102, 103]
    );
    let pay_in = &spec["paths"]["/v1/sessions/{sessionId}/bets/pay-in"]["post"]["responses"];
    for status in ["200", "401", "402", "500", "503"] {
        assert!(pay_in[status].is_object(), "PayIn documents HTTP {status}");
    }
}

#[tokio::test]
async fn the_docs_page_works_offline() {
    let app = spawn_app().await;
    let answer = reqwest::get(format!("{}/docs", app.base))
        .await
        .expect("GET /docs");
    assert_eq!(answer.status(), 200);
    let csp = answer
        .headers()
        .get("content-security-policy")
        .expect("a content security policy")
        .to_str()
        .expect("ASCII")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = answer.text().await.expect("the page");
    assert!(page.contains("openapi.json"), "the page reads the spec");
    for outside in ["http://", "https://", "//cdn", "<link"] {
        assert!(
            !page.contains(outside),
            "the page refers outside: {outside}"
        );
    }
}
