//! The Lease test server through kube-rs, the client the daemon uses: the Status errors the
//! election depends on (AlreadyExists, Conflict, NotFound), validation (422), authentication
//! (401), list and watch with a field selector, delete.

#[path = "election/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use cpvip::election::kubeconfig;
use futures_util::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

fn lease(name: &str, holder: &str, duration: i32) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }),
    }
}

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API Status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_sees_real_api_semantics() {
    let (server, dir) = server("kube").await;
    for kc in [server.kubeconfig_token(), server.kubeconfig_client_cert()] {
        let client = kubeconfig::client_from_file(kc, Duration::from_secs(2))
            .await
            .expect("client from the written kubeconfig");
        let ns = if kc == server.kubeconfig_token() {
            "tok"
        } else {
            "cert"
        };
        let api: Api<Lease> = Api::namespaced(client, ns);
        let pp = PostParams::default();

        let created = api.create(&pp, &lease("x", "a", 5)).await.expect("create");
        let rv1 = created.metadata.resource_version.clone().expect("rv");
        assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
        let dup = api
            .create(&pp, &lease("x", "b", 5))
            .await
            .expect_err("duplicate");
        assert_eq!(api_status(dup), (409, "AlreadyExists".into()));
        assert!(api.get_opt("missing").await.expect("get_opt").is_none());

        let mut watch = Box::pin(
            api.watch(&WatchParams::default().fields("metadata.name=x"), &rv1)
                .await
                .expect("watch"),
        );
        let mut upd = created.clone();
        upd.spec.as_mut().expect("spec").holder_identity = Some("b".into());
        let replaced = api.replace("x", &pp, &upd).await.expect("replace");
        let rv2: u64 = replaced
            .metadata
            .resource_version
            .clone()
            .expect("rv")
            .parse()
            .expect("n");
        assert!(rv2 > rv1.parse().expect("n"));
        let stale = api.replace("x", &pp, &upd).await.expect_err("stale rv");
        assert_eq!(api_status(stale), (409, "Conflict".into()));
        let ev = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        match ev {
            WatchEvent::Modified(l) => {
                assert_eq!(l.spec.and_then(|s| s.holder_identity).as_deref(), Some("b"))
            }
            other => panic!("expected MODIFIED, got {other:?}"),
        }

        let mut bad = replaced.clone();
        bad.spec.as_mut().expect("spec").lease_duration_seconds = Some(-1);
        let invalid = api.replace("x", &pp, &bad).await.expect_err("invalid");
        assert_eq!(api_status(invalid), (422, "Invalid".into()));

        let list = api.list(&ListParams::default()).await.expect("list");
        assert_eq!(list.items.len(), 1);
        api.delete("x", &DeleteParams::default())
            .await
            .expect("delete");
        let gone = api
            .replace("x", &pp, &replaced)
            .await
            .expect_err("replace deleted");
        assert_eq!(api_status(gone).0, 404);
    }

    let text = std::fs::read_to_string(server.kubeconfig_token()).expect("read");
    let wrong = dir.0.join("wrong.yaml");
    std::fs::write(&wrong, text.replace(server.token(), "wrong")).expect("write");
    let client = kubeconfig::client_from_file(&wrong, Duration::from_secs(2))
        .await
        .expect("client");
    let api: Api<Lease> = Api::namespaced(client, "tok");
    let denied = api.get_opt("x").await.expect_err("401");
    assert_eq!(api_status(denied), (401, "Unauthorized".into()));
}
