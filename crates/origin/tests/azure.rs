//! Ingest to Azure Blob (the Azurite emulator, started by the test) clear and
//! storage-encrypted, through a store configured the way `[[store]]` does it, and serve both:
//! every manifest, playlist, init and segment byte-identical to the local clear fixture.
//! Skips, saying so, when Azurite is not installed (`scripts/setup.sh` installs it).

mod support;

use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::{Config, StoreConfig};
use sealcast_origin::ingest::{self, IngestArgs, Publish};
use sealcast_origin::server::AppState;
use sealcast_storage::Store;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn ingest_to_azurite_clear_and_encrypted_and_serve_byte_identical() {
    let dir = temp("azure");
    let Some((_srv, endpoint)) = start_azurite(&dir.join("azurite")) else { return };
    std::fs::create_dir_all(dir.join("local")).unwrap();
    // The configuration path the binary takes: [[store]] parsed, validated, opened.
    let text = format!(
        "root = {:?}\ncatalog = {:?}\n[[store]]\nprefix = \"az\"\nkind = \"azure\"\naccount = \"devstoreaccount1\"\ncontainer = \"media\"\nuse_emulator = true\nendpoint = \"{endpoint}\"\n",
        dir.join("local"),
        dir.join("catalog.toml")
    );
    let cfg: Config = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    assert!(matches!(cfg.store.first(), Some(StoreConfig::Azure { .. })));
    let store = cfg.open_store(sealcast_storage::LocalRead::Pread).unwrap();

    let catalog = dir.join("catalog.toml");
    ingest::run(&store, &IngestArgs { files: demo_files(), asset: "az/clear".into(), encrypt: false, catalog: None, publish: Publish::default() }).await.unwrap();
    ingest::run(&store, &IngestArgs { files: demo_files(), asset: "az/enc".into(), encrypt: true, catalog: Some(sealcast_origin::ingest::RecordIn::Toml(catalog.clone())), publish: Publish::clear() }).await.unwrap();

    // What `serve` builds from the same config: the catalog's storage-encrypted files are
    // registered with the store AppState::new opens.
    let served = AppState::new(&cfg).unwrap();
    let enc_files: Vec<_> = TomlCatalog::load(&catalog).unwrap().storage_files().into_iter().map(|(p, _)| p).collect();
    assert_eq!(enc_files.len(), 5, "{enc_files:?}");
    for p in &enc_files {
        assert!(p.starts_with("az/enc/") && served.assets.store().encryption_key_id(p).is_some(), "{p} not registered as storage-encrypted");
    }

    let fx = sealcast_testkit::fixtures_dir();
    let clear = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap());
    let urls = demo_urls(&clear).await;
    assert!(urls.len() > 20);
    for asset in ["az/clear", "az/enc"] {
        for u in &urls {
            let (s, _, b) = get(&served, &format!("/{asset}/{u}")).await;
            let (cs, _, cb) = get(&clear, &format!("/demo/{u}")).await;
            assert_eq!(s, cs, "{asset}/{u}");
            assert!(b == cb, "{asset}/{u} differs from the clear fixture");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
