//! Runs every fuzz target's function (tests/fuzz/targets.rs) over its seed corpus
//! (tests/fuzz/seeds/TARGET/), so that the harness keeps compiling and the corpus keeps passing
//! without libFuzzer. The long runs are `cargo fuzz run --fuzz-dir tests/fuzz TARGET` (see
//! tests/TOOLS.md).

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::Path;

/// Runs `target` over every file of `seeds/NAME`, and over each file cut short at a few places
/// (a truncated body is the commonest bad input); returns how many inputs ran.
fn run(name: &str, target: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/seeds")
        .join(name);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let data = std::fs::read(&path).expect("seed file");
        for cut in [data.len(), data.len() / 2, data.len() / 3, 1, 0] {
            target(&data[..cut]);
            count += 1;
        }
    }
    assert!(
        count >= 10,
        "seeds/{name} holds too few seeds ({count} inputs)"
    );
    count
}

#[test]
fn request_seeds() {
    let _ = run("request", targets::request);
}

#[test]
fn names_seeds() {
    let _ = run("names", targets::names);
}

#[test]
fn csr_seeds() {
    let _ = run("csr", targets::csr);
}

#[test]
fn script_seeds() {
    let _ = run("script", targets::script);
    // The scripts as they are now, in case they changed since the seeds were copied.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremony");
    for dir in [root.clone(), root.join("demo")] {
        for entry in std::fs::read_dir(&dir).expect("ceremony/") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                targets::script(&std::fs::read(&path).expect("script"));
            }
        }
    }
}

/// The seeds reach the accepting paths, not only the first refusal: a real request's key and
/// names pass policy, and a production ceremony script parses.
#[test]
fn seeds_reach_the_accepting_paths() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds");
    let cfg = strongroom::policy::PolicyConfig::default();

    let body = std::fs::read(seeds.join("request/issue-spki.json")).expect("seed");
    let req: strongroom::service::wire::IssueRequest =
        serde_json::from_slice(&body).expect("a real request decodes");
    let spki = strongroom::policy::decode_spki(req.public_key.as_deref().expect("public_key"))
        .expect("the seed's key decodes");
    let _ = strongroom::policy::check_key(&spki, &cfg).expect("the seed's key passes");
    let _ = strongroom::policy::check_names(&req.dns_names, &req.ip_addresses, &cfg)
        .expect("the seed's names pass");

    let body = std::fs::read(seeds.join("request/issue-csr.json")).expect("seed");
    let req: strongroom::service::wire::IssueRequest =
        serde_json::from_slice(&body).expect("a real request decodes");
    let spki = strongroom::policy::csr_public_key(req.csr.as_deref().expect("csr"))
        .expect("the seed's CSR verifies");
    let _ = strongroom::policy::check_key(&spki, &cfg).expect("the CSR's key passes");

    let text = std::fs::read_to_string(seeds.join("script/root.toml")).expect("seed");
    let dir = tempfile::tempdir().expect("temporary directory");
    let _ = strongroom::ceremony::script::Script::parse(
        &text,
        dir.path(),
        std::time::SystemTime::now(),
    )
    .expect("ceremony/root.toml validates");
}
