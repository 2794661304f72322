//! Databases and users inside a cluster (Trove's API) on real servers:
//! hostile names are refused before any SQL, accounts work through the writer
//! endpoint with only the privileges granted, changes reach the replicas, and
//! the live node views answer.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_and_users_are_managed_through_the_primary() {
    let app = TestApp::start().await;
    let (c, pw) = app.create_cluster("cat", 2).await;
    let id = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = writer(&c);
    let dbs = format!("/v1/clusters/{id}/databases");
    let users = format!("/v1/clusters/{id}/users");

    // Databases.
    let (status, db) = app.post(&dbs, json!({"name": "orders"})).await;
    assert_eq!(status, 201, "{db}");
    assert_eq!(db["name"], "orders");
    assert_eq!(db["object"], "database");
    assert_eq!(app.post(&dbs, json!({"name": "orders"})).await.0, 409);
    for hostile in [
        "a`b",
        "x`; DROP USER marina_mgmt; --",
        "o' OR '1'='1",
        "mysql",
        "sys",
        "",
        "white space",
    ] {
        let (status, body) = app.post(&dbs, json!({ "name": hostile })).await;
        assert_eq!(status, 400, "{hostile:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
    }
    let (_, list) = app.get(&dbs).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders"], "{list}");
    app.post(&dbs, json!({"name": "other"})).await;

    // Users: a generated password shown once, privileges on `orders` only.
    let (status, created) = app.post(&users, json!({"name": "app", "databases": ["orders"]})).await;
    assert_eq!(status, 201, "{created}");
    let app_pw = created["password"].as_str().unwrap().to_string();
    assert!(app_pw.len() >= 16);
    assert_eq!(created["user"]["host"], "%");
    assert_eq!(created["user"]["databases"], json!(["orders"]));
    let mut conn = mysql(&wh, wp, "app", &app_pw).await.unwrap();
    conn.query_drop("CREATE TABLE orders.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO orders.t VALUES (1)").await.unwrap();
    assert!(conn.query_drop("CREATE TABLE other.t (id INT)").await.is_err());
    assert!(conn.query_drop("SELECT * FROM mysql.user").await.is_err());
    drop(conn);
    assert_eq!(
        app.post(&users, json!({"name": "app", "databases": ["orders"]}))
            .await
            .0,
        409
    );
    for body in [
        json!({"name": "admin"}),
        json!({"name": "marina_mgmt"}),
        json!({"name": "root"}),
        json!({"name": "x'@'%' IDENTIFIED BY 'p"}),
        json!({"name": "ok", "host": "%' OR 1=1 --"}),
        json!({"name": "ok", "databases": ["orders`.* TO x; --"]}),
        json!({"name": "ok", "password": "short"}),
    ] {
        let (status, resp) = app.post(&users, body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
    }
    let given = "correct horse battery staple";
    let (status, ro) = app
        .post(&users, json!({"name": "ro", "password": given, "host": "127.%"}))
        .await;
    assert_eq!(status, 201, "{ro}");
    assert_eq!(ro["password"], given);
    let (_, list) = app.get(&users).await;
    let accounts: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["host"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [("app".into(), "%".into()), ("ro".into(), "127.%".into())],
        "{list}"
    );

    // Replicated: the replica knows the account and the data.
    let replica = replicas(&c)[0]["port"].as_u64().unwrap() as u16;
    eventually(Duration::from_secs(10), "replica has the account", || async {
        let mut r = mysql("127.0.0.1", replica, "admin", &pw).await.ok()?;
        let n: Option<i64> = r.query_first("SELECT COUNT(*) FROM orders.t").await.ok().flatten();
        (n == Some(1)).then_some(())
    })
    .await;
    mysql("127.0.0.1", replica, "app", &app_pw).await.unwrap();

    // Live views of a node.
    let p = primary(&c);
    let node = format!("/v1/clusters/{id}/nodes/{}", p["id"].as_str().unwrap());
    let (status, vars) = app.get(&format!("{node}/variables")).await;
    assert_eq!(status, 200, "{vars}");
    assert!(
        vars["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["variable_name"] == "server_id" && v["value"] == "1"),
        "{vars}"
    );
    let (status, st) = app.get(&format!("{node}/status-variables")).await;
    assert_eq!(status, 200);
    assert!(
        st["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["variable_name"] == "Uptime")
    );
    let (status, pl) = app.get(&format!("{node}/processlist")).await;
    assert_eq!(status, 200);
    let rows = pl["data"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["user"] == "marina_repl"), "{pl}");
    assert!(
        rows.iter()
            .filter(|r| r["user"].as_str().unwrap_or_default().starts_with("marina_"))
            .all(|r| r["info"].is_null()),
        "{pl}"
    );

    // Deletes.
    assert_eq!(app.delete(&format!("{users}/app")).await.0, 204);
    assert_eq!(app.delete(&format!("{users}/app")).await.0, 404);
    assert!(mysql(&wh, wp, "app", &app_pw).await.is_err());
    assert_eq!(app.delete(&format!("{users}/admin")).await.0, 400);
    assert_eq!(app.delete(&format!("{dbs}/orders")).await.0, 204);
    assert_eq!(app.delete(&format!("{dbs}/orders")).await.0, 404);
    assert_eq!(app.delete(&format!("{dbs}/mysql")).await.0, 400);
}
