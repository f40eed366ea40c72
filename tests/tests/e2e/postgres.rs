//! Several gateway replicas on one PostgreSQL store: webhooks and the customer's return
//! spread over two processes still make one payment and one completion.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use tests::*;

/// A fresh schema on the local PostgreSQL server (`PSP_TEST_POSTGRES_URL` or the `test`
/// database), dropped when the test ends.
struct Schema {
    name: String,
    url: String,
}

fn server_url() -> String {
    std::env::var("PSP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".to_string())
}

impl Schema {
    async fn new() -> Self {
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server_url())
            .await
            .expect("the local PostgreSQL server answers");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let base = server_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Self { name, url }
    }

    async fn count(&self, table: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect");
        let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n.0
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime, so the clean-up gets a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url()).await {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn two_replicas_on_one_postgres_store_complete_a_cart_once() {
    let schema = Schema::new().await;
    let sandbox = start_sandbox();
    let files = GatewayFiles::with_store(&sandbox.url, Some(&schema.url), "");
    let a = files.start(&[]);
    let b = files.start(&[]);

    let product = a_product(&sandbox.url).await;
    let (cart_id, cart_json) = create_cart(&sandbox.url, &[(&product, 2)]).await;
    let psp_ref = checkout(&a.url, &cart_id).await;
    // Both replicas see the same session: checking out on the other one reuses it.
    assert_eq!(checkout(&b.url, &cart_id).await, psp_ref);

    let payment = approve(&sandbox.url, &psp_ref, json!({ "webhook": "skip" })).await;
    let body = mock_event("mevt_replicas_0001", "payment.authorized", &payment);
    let header = mock_signature(MOCK_SECRET, &body);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let (header, body) = (header.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post_webhook(&url, &header, body).await.status()
        }));
    }
    let confirm_url = format!(
        "{}/ingress/commerce/carts/{cart_id}/payment/mock/confirm",
        b.url
    );
    let confirm = tokio::spawn(async move { http().post(confirm_url).send().await.unwrap() });
    for t in tasks {
        assert!(t.await.unwrap().is_success());
    }
    let confirm = confirm.await.unwrap();
    assert!(
        confirm.status().is_success(),
        "confirm: {}",
        confirm.status()
    );

    let done = wait_completed(&sandbox.url, &cart_id).await;
    assert!(done["orderNumber"].is_string());
    assert_eq!(
        schema.count("webhook_inbox").await,
        1,
        "one event recorded across replicas"
    );
    wait_for(
        "the webhook job to finish on one replica",
        Duration::from_secs(20),
        || async {
            let mut conn = sqlx::PgConnection::connect(&schema.url).await.ok()?;
            let (pending,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE state <> 'succeeded'")
                    .fetch_one(&mut conn)
                    .await
                    .ok()?;
            (pending == 0).then_some(())
        },
    )
    .await;
    let payments = payments_for(&sandbox.url, &psp_ref).await;
    assert_eq!(payments.len(), 1, "one payment: {payments:?}");
    assert_eq!(
        payments[0]["authorizations"][0]["amount"],
        cart_json["orderTotal"]
    );
    let completes = journal(&sandbox.url)
        .await
        .into_iter()
        .filter(|e| {
            e["actorType"] == "ticket" && e["actorId"] == cart_id.as_str() && e["applied"] == true
        })
        .filter(|e| {
            e["messageTypes"]
                .as_array()
                .is_some_and(|m| m.iter().any(|t| t == "complete"))
        })
        .count();
    assert_eq!(completes, 1, "one completion");
}
