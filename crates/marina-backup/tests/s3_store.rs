//! `S3BlobStore` against a real S3-compatible server (moto, installed by
//! `scripts/install-deps.sh --test`): the two-phase write, reads, deletes,
//! and a compressed pipeline round trip.

#[path = "support/moto.rs"]
mod moto;

use marina_backup::{BlobError, BlobStore, S3BlobStore, S3Config, pipeline};
use moto::S3Server;
use tokio::io::AsyncReadExt;

fn config(endpoint: &str) -> S3Config {
    S3Config {
        bucket: "marina-backups".into(),
        endpoint: endpoint.into(),
        region: "us-east-1".into(),
        prefix: "site-a".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    }
}

#[tokio::test]
async fn objects_appear_only_when_committed() {
    let m = S3Server::start("marina-backups").await;
    let store = S3BlobStore::new(&config(&m.endpoint)).unwrap();
    assert!(store.describe().contains("marina-backups"));
    // Larger than one multipart part (5 MiB).
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let w = store.write("tn_1/bk_1/data.zst", &mut data.as_slice()).await.unwrap();
    assert_eq!(w.size, data.len() as u64);
    assert!(
        !store.exists("tn_1/bk_1/data.zst").await.unwrap(),
        "not visible before commit"
    );
    assert!(matches!(
        store.read("tn_1/bk_1/data.zst").await,
        Err(BlobError::NotFound(_))
    ));
    store.commit("tn_1/bk_1/data.zst").await.unwrap();
    store.commit("tn_1/bk_1/data.zst").await.unwrap();
    let mut back = Vec::new();
    store
        .read("tn_1/bk_1/data.zst")
        .await
        .unwrap()
        .read_to_end(&mut back)
        .await
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(
        pipeline::verify(&store, "tn_1/bk_1/data.zst", &w.sha256).await.unwrap(),
        w.size
    );
    // An uncommitted object of another backup, then both prefixes removed.
    let mut small: &[u8] = b"partial";
    store.write("tn_1/bk_2/data.zst", &mut small).await.unwrap();
    store.delete_prefix("tn_1/bk_1").await.unwrap();
    store.delete_prefix("tn_1/bk_2").await.unwrap();
    assert!(!store.exists("tn_1/bk_1/data.zst").await.unwrap());
    let left = m.keys("marina-backups").await;
    assert!(left.is_empty(), "nothing left: {left:?}");
}

#[tokio::test]
async fn a_tool_pipeline_round_trips_through_s3() {
    let m = S3Server::start("marina-backups").await;
    let store = S3BlobStore::new(&config(&m.endpoint)).unwrap();
    let sh = std::path::PathBuf::from("/bin/sh");
    let got = pipeline::produce(
        &store,
        "b/data.zst",
        &sh,
        &["-c".into(), "seq 1 200000".into()],
        false,
        &marina_backup::Pace::unlimited(),
    )
    .await
    .unwrap();
    store.commit("b/data.zst").await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("back.txt");
    pipeline::consume(
        &store,
        "b/data.zst",
        &sh,
        &["-c".into(), format!("cat > {}", file.display())],
        &marina_backup::Identity::default(),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 200_000);
    assert!(got.written.size < text.len() as u64, "compressed");
}
