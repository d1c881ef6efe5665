//! docs/settings.md is generated from the settings table; this fails when it is stale.

use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md")
}

#[test]
fn settings_doc_is_fresh() {
    let want = ferrocorn::settings::doc::render();
    let path = doc_path();
    if std::env::var_os("FERROCORN_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write docs/settings.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/settings.md is stale: regenerate it with\n\n    FERROCORN_BLESS=1 cargo test -p ferrocorn settings_doc\n"
    );
}

#[test]
fn settings_doc_covers_every_setting_and_flag() {
    let doc = ferrocorn::settings::doc::render();
    for s in ferrocorn::settings::SETTINGS {
        assert!(doc.contains(&format!("### `{}`", s.name)), "{} missing", s.name);
        for f in s.cli {
            assert!(doc.contains(&format!("`{f}")), "flag {f} missing");
        }
    }
}
