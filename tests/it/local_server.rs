//! `coiled-local` as a real process, driven by the provider's own API client over HTTP and WebSocket.

use std::time::Duration;

use serde_json::json;
use terraform_provider_coiled::api::{ApiError, Op};
use tokio_util::sync::CancellationToken;

use crate::common::LocalServer;
use crate::common::http::Http;

fn op() -> Op {
    Op::new(Duration::from_secs(30), CancellationToken::new())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn identity_and_auth_errors() {
    let s = LocalServer::start(&[]);
    rt().block_on(async {
        let c = s.client();
        assert_eq!(c.me(&op()).await.unwrap().username, "alice");
        assert_eq!(
            c.default_workspace(&op(), &c.memberships(&op()).await.unwrap()).await.unwrap(),
            "alice"
        );
    });
    let (code, body) = s.get("/api/v1/health");
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")));
    let (code, body) = s.get("/api/v1/users/me/");
    assert_eq!(code, 200);
    assert_eq!(body["membership_set"][0]["account"]["slug"], "alice");
    let (code, body) = s.get("/api/v1/bob/backend_options/");
    assert_eq!(code, 403);
    assert!(body["detail"].as_str().unwrap().contains("aren't a member"));
    let bad = Http::get(&format!("{}/api/v2/user/me", s.url))
        .header("Authorization", "Token nope")
        .status();
    assert_eq!(bad, 401);
}

#[test]
fn backend_options_over_the_websocket_and_read_back_without_credentials() {
    let s = LocalServer::start(&[]);
    rt().block_on(async {
        let c = s.client();
        let before = c.get_backend_options(&op(), "alice").await.unwrap();
        assert_eq!(before.provider_name().as_deref(), Some("aws"), "a provider is reported before anything is configured");
        let data = json!({"backend": "vm", "options": {"aws_region_name": "us-west-2", "credentials": {"aws_access_key": "AKIASENTINEL", "aws_secret_key": "SECRETSENTINEL"},
            "firewall": {}, "firewall_spec": {"ingress": [{"ports": [8787, 8786], "cidr": "10.1.0.2/16"}]}, "network": {}, "zone": null, "provider_name": "aws", "type": "aws_cloudbridge_backend_options"},
            "registry": {"type": "ecr", "credentials": {"aws_access_key_id": "AKIASENTINEL", "aws_secret_access_key": "SECRETSENTINEL"}, "public_ecr": false, "region": "us-west-2"}});
        let progress = c.set_backend_options(&op(), "alice", &data).await.unwrap();
        assert!(progress.iter().any(|p| p.contains("Validating")), "{progress:?}");
        let after = c.get_backend_options(&op(), "alice").await.unwrap();
        let ingress = after.ingress().unwrap();
        assert_eq!(ingress[0].cidr, "10.1.0.0/16");
        assert_eq!(ingress[0].ports, vec![8786, 8787]);
        assert_eq!(after.option_str("aws_region_name").as_deref(), Some("us-west-2"));
        let mut bad = data.clone();
        bad["options"]["firewall_spec"]["ingress"][0]["cidr"] = json!("10.1.0.300/16");
        let err = c.set_backend_options(&op(), "alice", &bad).await.unwrap_err();
        assert!(err.to_string().contains("ingress rule 0"), "{err}");
        let err = c.set_backend_options(&op(), "bob", &data).await.unwrap_err();
        assert!(matches!(err, ApiError::Forbidden { .. }), "{err:?}");
    });
    let (_, raw) = s.get("/api/v1/alice/backend_options/");
    assert!(!raw.to_string().contains("SENTINEL"), "credentials were read back: {raw}");
}

#[test]
fn cluster_lifecycle_scaling_and_firewall_precedence() {
    let s = LocalServer::start(&["--provision-delay", "400ms", "--stop-delay", "200ms"]);
    rt().block_on(async {
        let c = s.client();
        let body = json!({"name": "etl", "workers": 2, "options": {"firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]}}});
        let created = crate::common::create_cluster_raw(&c, &body).await.unwrap();
        assert!(!created.existing);
        let d = c.get_cluster(&op(), "alice", created.id).await.unwrap();
        assert_eq!(d.current_state.state, "pending");
        assert_eq!(d.workers.len(), 2, "workers are listed from the first poll");
        assert_eq!(d.ingress().unwrap().len(), 2);
        let again = crate::common::create_cluster_raw(&c, &body).await.unwrap();
        assert_eq!((again.id, again.existing), (created.id, true));
        tokio::time::sleep(Duration::from_millis(600)).await;
        let d = c.get_cluster(&op(), "alice", created.id).await.unwrap();
        assert_eq!(d.current_state.state, "ready");
        assert_eq!(d.scheduler.as_ref().unwrap().current_state.state, "started");
        assert!(d.workers.iter().all(|w| w.current_state.state == "started"));
        assert_eq!(c.find_cluster_by_name(&op(), "alice", "etl").await.unwrap().unwrap().id, created.id);
        c.add_workers(&op(), "alice", created.id, 2).await.unwrap();
        let workers = c.list_workers(&op(), "alice", created.id).await.unwrap();
        assert_eq!(workers.len(), 4);
        c.remove_workers(&op(), "alice", created.id, &["-1".to_string(), workers[3].name.clone()]).await.unwrap();
        let d = c.get_cluster(&op(), "alice", created.id).await.unwrap();
        assert_eq!(d.desired_workers, 2);
        // Account-level ingress applies to clusters created after it, and only to those.
        let account = json!({"backend": "vm", "options": {"provider_name": "aws", "credentials": {"aws_access_key": "k", "aws_secret_key": "s"}, "firewall_spec": {"ingress": [{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}]}}});
        let plain = crate::common::create_cluster_raw(&c, &json!({"name": "plain-before"})).await.unwrap();
        c.set_backend_options(&op(), "alice", &account).await.unwrap();
        let inherits = crate::common::create_cluster_raw(&c, &json!({"name": "plain-after"})).await.unwrap();
        let before = c.get_cluster(&op(), "alice", plain.id).await.unwrap();
        assert_eq!(before.ingress().unwrap()[0].cidr, "0.0.0.0/0", "server default");
        let after = c.get_cluster(&op(), "alice", inherits.id).await.unwrap();
        assert_eq!(after.ingress().unwrap()[0].cidr, "10.1.0.0/16", "account default at creation");
        c.stop_cluster(&op(), "alice", created.id, "test").await.unwrap();
        assert_eq!(c.get_cluster(&op(), "alice", created.id).await.unwrap().current_state.state, "stopping");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.get_cluster(&op(), "alice", created.id).await.unwrap().current_state.state, "stopped");
        assert!(c.find_cluster_by_name(&op(), "alice", "etl").await.unwrap().is_none(), "stopped clusters are not found by name");
        let err = crate::common::create_cluster_raw(&c, &json!({"name": "bad name!"})).await.unwrap_err();
        assert!(matches!(err, ApiError::Status { status: 400, .. }), "{err:?}");
        let err = crate::common::create_cluster_raw(&c, &json!({"name": "x", "options": {"firewall_spec": {"ingress": [{"ports": [0], "cidr": "10.0.0.0/8"}]}}})).await.unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    });
    let (code, page) = s.get("/api/v2/clusters/account/alice/?limit=2&offset=0");
    assert_eq!((code, page.as_array().unwrap().len()), (200, 2));
    let (_, past_end) = s.get("/api/v2/clusters/account/alice/?limit=100&offset=100");
    assert_eq!(past_end, json!([]));
}

#[test]
fn failing_clusters_end_in_error_with_a_reason() {
    let s = LocalServer::start(&["--provision-delay", "100ms"]);
    rt().block_on(async {
        let c = s.client();
        let id = crate::common::create_cluster_raw(
            &c,
            &json!({"name": "doomed", "tags": {"coiled-local/fail": "no capacity in us-east-1a"}}),
        )
        .await
        .unwrap()
        .id;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let d = c.get_cluster(&op(), "alice", id).await.unwrap();
        assert_eq!(d.current_state.state, "error");
        assert_eq!(d.current_state.reason.as_deref(), Some("no capacity in us-east-1a"));
    });
}

#[test]
fn data_survives_a_restart() {
    let mut s = LocalServer::start(&["--provision-delay", "0s"]);
    let id = rt().block_on(async {
        crate::common::create_cluster_raw(&s.client(), &json!({"name": "keep", "workers": 1}))
            .await
            .unwrap()
            .id
    });
    assert!(s.stop().success(), "clean exit on SIGTERM");
    let s2 = LocalServer::start_in(&s.data_dir, &[]);
    rt().block_on(async {
        let d = s2.client().get_cluster(&op(), "alice", id).await.unwrap();
        assert_eq!(d.name, "keep");
        assert_eq!(d.current_state.state, "ready");
    });
}

#[test]
fn injected_faults_are_retried_and_counted() {
    let s = LocalServer::start(&[]);
    s.put(
        "/_local/faults",
        &json!({"seed": 3, "rate_503": 0.3, "rate_429": 0.2, "retry_after": 0, "rate_drop": 0.1}),
    );
    rt().block_on(async {
        let c = s.client();
        for _ in 0..20 {
            c.get_cluster(&op(), "alice", 999).await.unwrap_err();
            assert_eq!(c.me(&op()).await.unwrap().username, "alice");
        }
    });
    let (_, stats) = s.get("/_local/stats");
    let faults = stats["faults"].as_object().unwrap();
    assert!(
        faults.get("503").is_some() && faults.get("429").is_some() && faults.get("drop").is_some(),
        "{stats}"
    );
    s.put("/_local/faults", &json!({"lose_create_responses": 1}));
    rt().block_on(async {
        let c = s.client();
        let err =
            crate::common::create_cluster_raw(&c, &json!({"name": "lost"})).await.unwrap_err();
        assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");
        assert!(
            c.find_cluster_by_name(&op(), "alice", "lost").await.unwrap().is_some(),
            "the cluster exists although its answer was lost"
        );
    });
}

#[test]
fn the_page_shows_workspaces_rules_and_clusters() {
    let s = LocalServer::start(&["--provision-delay", "0s"]);
    rt().block_on(async {
        crate::common::create_cluster_raw(
            &s.client(),
            &json!({"name": "shown", "options": {"firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]}}}),
        )
        .await
        .unwrap();
    });
    let (_, html) = Http::get(&format!("{}/?token={}", s.url, s.token)).send().unwrap();
    assert!(html.contains("Workspace <code>alice</code>"));
    assert!(html.contains("<code>shown</code>"));
    assert!(html.contains("<td>tcp</td><td>8786</td><td><code>10.1.0.0/16</code></td>"), "{html}");
}

#[test]
fn every_request_is_recorded_and_a_create_can_answer_502_after_creating() {
    let s = LocalServer::start(&["--provision-delay", "0s"]);
    rt().block_on(async {
        let c = s.client();
        crate::common::create_cluster_raw(
            &c,
            &json!({"name": "one", "workers": 1, "tags": {"a": "b"}}),
        )
        .await
        .unwrap();
        c.get_cluster(&op(), "alice", 1).await.ok();
    });
    let (code, log) = s.get("/_local/requests");
    assert_eq!(code, 200);
    let log = log.as_array().unwrap().clone();
    let post = log.iter().find(|r| r["method"] == "POST").expect("the create is recorded");
    assert_eq!(post["path"], "/api/v2/clusters/account/alice/");
    assert_eq!(post["body"]["tags"], json!({"a": "b"}));
    assert!(log.iter().any(|r| r["method"] == "GET" && r["query"].is_null()), "{log:?}");
    s.delete("/_local/requests");
    assert_eq!(s.get("/_local/requests").1, json!([]));
    // The server makes the cluster, then answers 502.
    s.put("/_local/faults", &json!({"create_then_502": 1}));
    rt().block_on(async {
        let err =
            crate::common::create_cluster_raw(&s.client(), &json!({"name": "gated", "workers": 1}))
                .await
                .unwrap_err();
        assert!(
            matches!(err, ApiError::Status { status: 502, .. } | ApiError::Timeout { .. }),
            "{err:?}"
        );
    });
    let listed = s.get("/api/v2/clusters/account/alice/?limit=100").1;
    assert_eq!(
        listed.as_array().unwrap().iter().filter(|c| c["name"] == "gated").count(),
        1,
        "created once: {listed}"
    );
}

/// What Coiled's client always sends is required: a create without a software environment, or with
/// null VM types, or naming an environment the workspace lacks, is a 400 in Coiled's error shape.
/// Environments named by `--software-env` exist from the start; a container image gets one that builds.
#[test]
fn creates_the_client_never_sends_are_refused_and_software_environments_exist_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("o.json");
    std::fs::write(&overrides, r#"{"coiled.tags": {"org": "x"}}"#).unwrap();
    let s = LocalServer::start(&[
        "--provision-delay",
        "400ms",
        "--software-env",
        "team-env",
        "--dask-config-overrides",
        overrides.to_str().unwrap(),
    ]);
    rt().block_on(async {
        let c = s.client();
        let post = |body: serde_json::Value| {
            let c = c.clone();
            async move {
                use terraform_provider_coiled::api::Call;
                c.request(&op(), reqwest::Method::POST, "/api/v2/clusters/account/alice/", &[], Some(&body), Call::Write).await
            }
        };
        let types = json!(["m6i.xlarge"]);
        let refusals = [
            (json!({"name": "a", "env_name": null, "env_id": null, "worker_instance_types": types, "scheduler_instance_types": types}), "env_id` are both null"),
            (json!({"name": "a", "env_name": "team-env", "worker_instance_types": null, "scheduler_instance_types": types}), "must be lists"),
            (json!({"name": "a", "env_name": "nope", "worker_instance_types": types, "scheduler_instance_types": types}), "\"nope\" does not exist"),
        ];
        for (body, why) in refusals {
            match post(body.clone()).await {
                Err(ApiError::Status { status: 400, message, .. }) => assert!(message.contains(why), "{body}: {message}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        for name in ["team-env", "alice/team-env", "team-env:abc1234"] {
            let ok = post(json!({"name": name.replace([':', '/'], "-"), "env_name": name, "worker_instance_types": types, "scheduler_instance_types": types}));
            ok.await.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(s.get("/api/v2/user/workspace/alice/dask-config-overrides").1, json!({"coiled.tags": {"org": "x"}}));
    });
    // A container image: the environment is made, builds, and can then be named.
    let (code, made) = s.post(
        "/api/v2/software-environment/account/alice",
        &json!({"name": "img-env", "container": "dask/dask:latest"}),
    );
    assert_eq!(code, 200, "{made}");
    assert_eq!(made["latest_spec"]["latest_build"]["state"], "queued");
    let build = made["latest_spec"]["latest_build"]["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.get(&format!("/api/v2/software-environment/account/alice/build/{build}")).1["state"],
        "built"
    );
}

/// Scheduler, workers and cluster move as separate machines: the cluster is `ready` only once its
/// scheduler has started and every worker has started or failed; stuck workers keep it `starting`.
#[test]
fn scheduler_workers_and_cluster_move_as_separate_machines() {
    let s = LocalServer::start(&["--provision-delay", "200ms"]);
    rt().block_on(async {
        let c = s.client();
        let stuck =
            json!({"name": "stuck", "workers": 3, "tags": {"coiled-local/stuck-workers": "1"}});
        let failing =
            json!({"name": "failing", "workers": 3, "tags": {"coiled-local/failed-workers": "2"}});
        let stuck = crate::common::create_cluster_raw(&c, &stuck).await.unwrap().id;
        let failing = crate::common::create_cluster_raw(&c, &failing).await.unwrap().id;
        let d = c.get_cluster(&op(), "alice", stuck).await.unwrap();
        assert_eq!(d.scheduler.unwrap().current_state.state, "pending");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let d = c.get_cluster(&op(), "alice", stuck).await.unwrap();
        let states: Vec<String> = d.workers.iter().map(|w| w.current_state.state.clone()).collect();
        assert_eq!(states, ["pending", "started", "started"]);
        assert_eq!(d.scheduler.unwrap().current_state.state, "started");
        assert_eq!(d.current_state.state, "starting", "a worker is still on its way");
        let d = c.get_cluster(&op(), "alice", failing).await.unwrap();
        let states: Vec<String> = d.workers.iter().map(|w| w.current_state.state.clone()).collect();
        assert_eq!(states, ["error", "error", "started"]);
        assert!(d.workers[0].current_state.reason.as_deref().unwrap().contains("set to fail"));
        assert_eq!(d.current_state.state, "ready", "every worker has started or failed");
    });
}

/// The page and the admin routes need the token, answer only a `Host` that is an address or
/// `localhost` (a rebinding page is refused), and the page shows the token's workspaces only.
#[test]
fn the_page_and_admin_routes_are_guarded() {
    let s = LocalServer::start(&["--member-of", "team"]);
    let get = |path: &str| Http::get(&format!("{}{path}", s.url));
    let auth = format!("ApiToken {}", s.token);
    for route in [
        "/",
        "/_local/requests",
        "/_local/stats",
        "/_local/faults",
        "/_local/lab",
        "/_local/clusters/100/firewall",
    ] {
        assert_eq!(get(route).status(), 401, "{route} without a token");
        assert_eq!(
            get(route).header("Authorization", "ApiToken wrong").status(),
            401,
            "{route} with a wrong token"
        );
        assert_eq!(
            get(route).header("Authorization", &auth).header("Host", "attacker.example").status(),
            403,
            "{route} for a rebound name"
        );
    }
    let faults = Http::new("PUT", &format!("{}/_local/faults", s.url)).body("{\"rate_503\": 1}");
    assert_eq!(faults.status(), 401);
    assert_eq!(get("/_local/stats").header("Authorization", &auth).status(), 200);
    assert_eq!(
        get("/_local/stats").header("Authorization", &auth).header("Host", "localhost").status(),
        200
    );
    let page = get(&format!("/?token={}", s.token)).send().unwrap();
    assert_eq!(page.0, 200, "the page in a browser, with the token");
    // The workspaces the token's user is a member of.
    let page = page.1;
    assert!(page.contains("alice") && page.contains("team"), "the token's workspaces");
}

/// Requests sent half-way hold nothing open: a connection whose request head has not arrived within
/// the header timeout (10 s) is closed, and the server answers others meanwhile.
#[test]
fn half_sent_requests_are_dropped() {
    use std::io::{Read, Write};
    let s = LocalServer::start(&[]);
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut held: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            c
        })
        .collect();
    assert_eq!(s.get("/api/v1/health").0, 200, "others are answered meanwhile");
    std::thread::sleep(std::time::Duration::from_secs(12));
    for c in &mut held {
        c.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 256];
        // Closed (perhaps after a 408 answer): the read ends, it does not wait.
        let mut total = 0;
        loop {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!(
                    "the connection is still open after the header timeout: {e} ({total} bytes read)"
                ),
            }
        }
    }
}

/// The data directory and what holds tokens and keys are the server's alone, and a token can come
/// from a file instead of the command line (which every local user can read).
#[test]
fn data_files_are_private_and_the_token_can_come_from_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = LocalServer::start_in(&data, &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("coiled-local.sqlite3")), 0o600);
    drop(generated);
    let token_file = dir.path().join("token.txt");
    std::fs::write(&token_file, "from-a-file-123\n").unwrap();
    let s = LocalServer::start(&["--token-file", token_file.to_str().unwrap()]);
    let (_, me) = Http::get(&format!("{}/api/v2/user/me", s.url))
        .header("Authorization", "ApiToken from-a-file-123")
        .send()
        .unwrap();
    assert!(me.contains("username"), "{}", me);
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", s.child.id())).unwrap();
    assert!(!cmdline.contains("from-a-file-123"), "the token is not on the command line");
}

/// A workspace may have at most `--max-clusters` clusters running: a create past that is refused.
#[test]
fn clusters_per_workspace_are_capped() {
    let s = LocalServer::start(&["--provision-delay", "0s", "--max-clusters", "2"]);
    rt().block_on(async {
        let c = s.client();
        for name in ["a", "b"] {
            crate::common::create_cluster_raw(&c, &json!({"name": name})).await.unwrap();
        }
        let refused =
            crate::common::create_cluster_raw(&c, &json!({"name": "c"})).await.unwrap_err();
        assert!(refused.to_string().contains("--max-clusters"), "{refused}");
    });
}

/// Over HTTPS, clients that never finish their TLS handshake delay nobody else: handshakes run side by
/// side.
#[test]
fn stalled_tls_handshakes_delay_nobody() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_private_ca_certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let s = LocalServer::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let addr = s.url.trim_start_matches("https://").to_string();
    let _stalled: Vec<std::net::TcpStream> =
        (0..20).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let started = std::time::Instant::now();
    let health = Http::get(&format!("{}/api/v1/health", s.url))
        .ca(&std::fs::read(dir.path().join("ca.pem")).unwrap())
        .timeout(std::time::Duration::from_secs(8))
        .status();
    assert_eq!(health, 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "waited {:?} behind stalled handshakes",
        started.elapsed()
    );
}

/// The local-development guide lists exactly the variations `coiled-local --vary` makes, each with the
/// client code that allows it.
#[test]
fn the_guide_lists_every_variation_of_vary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let code = std::fs::read_to_string(root.join("crates/coiled-local/src/vary.rs")).unwrap();
    let table = &code[code.find("pub const VARIATIONS").unwrap()..];
    let table = &table[..table.find("\n];").unwrap()];
    let in_code: std::collections::BTreeSet<String> = table
        .split("(\n        \"")
        .skip(1)
        .chain(table.split("(\"").skip(1))
        .filter_map(|p| p.split('"').next())
        .map(String::from)
        .collect();
    let guide = std::fs::read_to_string(root.join("docs/guides/local-development.md")).unwrap();
    let section =
        guide.split("## Answers that vary").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut in_docs = std::collections::BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(cells.len() == 3 && cells[2].contains('`'), "name the client code: {row}");
        in_docs.insert(row.split('`').nth(1).unwrap().to_string());
    }
    assert_eq!(in_code.len(), 10, "{in_code:?}");
    assert_eq!(in_docs, in_code);
}
