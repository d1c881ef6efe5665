//! docs/conformance.md is generated from the wire ledgers (conformance/wire/*.toml) and
//! the corpora; this fails when it is stale.

use std::path::PathBuf;

use ferrocorn_conformance::{case, default_corpora, wire_doc};

#[test]
fn conformance_doc_is_fresh() {
    let mut cases = Vec::new();
    for corpus in default_corpora() {
        cases.extend(case::load_dir(&corpus.label, &corpus.dir).expect("the corpora load"));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let root = ferrocorn_conformance::workspace_root();
    let want = wire_doc::render(&cases, &root.join("conformance/wire")).expect("render");
    let path: PathBuf = root.join("docs/conformance.md");
    if std::env::var_os("FERROCORN_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write docs/conformance.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/conformance.md is stale: regenerate it with\n\n    FERROCORN_BLESS=1 cargo test -p ferrocorn-conformance --test wire_doc\n"
    );
}

#[test]
fn every_wire_ledger_has_a_column() {
    let dir = ferrocorn_conformance::workspace_root().join("conformance/wire");
    for entry in std::fs::read_dir(&dir).expect("conformance/wire") {
        let path = entry.expect("entry").path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            wire_doc::SERVERS.iter().any(|s| s.stem == stem),
            "{} has no column in docs/conformance.md (wire_doc::SERVERS)",
            path.display()
        );
        ferrocorn_conformance::wire::load_ledger(&path).expect("the ledger loads");
    }
}
