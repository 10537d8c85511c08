use std::fs;
use std::os::unix::fs::symlink;

use super::*;

fn names(store: &LocalStore, pattern: &str) -> Vec<String> {
    store
        .list(pattern, None)
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect()
}

#[test]
fn escapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.csv"), "x").unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    assert!(store.stat("a.csv").unwrap().is_some());
    assert!(store.stat("./a.csv").unwrap().is_some());
    for bad in ["../etc/passwd", "a/../../x", "/etc/passwd"] {
        assert!(store.stat(bad).is_err(), "{bad}");
        assert!(store.open(bad, 0).is_err(), "{bad}");
        assert!(store.write(bad, b"x").is_err(), "{bad}");
        assert!(store.delete(bad).is_err(), "{bad}");
    }
}

#[test]
fn list_matches_globs_sorted() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("sub")).unwrap();
    for p in ["b.csv", "a.csv", "c.json", "sub/d.csv"] {
        fs::write(dir.path().join(p), "x").unwrap();
    }
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(names(&store, "*.csv"), ["a.csv", "b.csv"]);
    assert_eq!(names(&store, "**/*.csv"), ["a.csv", "b.csv", "sub/d.csv"]);
    assert_eq!(names(&store, "sub/*.csv"), ["sub/d.csv"]);
    assert!(names(&store, "nothing/*.csv").is_empty());
    assert!(store.list("../*.csv", None).is_err());
    assert!(store.list("/etc/*", None).is_err());
    let after: Vec<_> = store
        .list("**/*.csv", Some("b.csv"))
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    assert_eq!(after, ["sub/d.csv"]);
}

#[test]
fn staged_files_appear_only_when_published() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut w = store.create("out/a.csv", true).unwrap();
    let token = w.staging_token().unwrap();
    assert!(is_temp_name(&token), "{token}");
    w.write_all(b"x\n").unwrap();
    let staged = w.finish().unwrap().expect("staged");
    assert_eq!(staged.staging_token().unwrap(), token);
    assert!(store.stat("out/a.csv").unwrap().is_none());
    assert!(store.list("**", None).unwrap().is_empty());
    let mut staged = staged;
    staged.publish().unwrap();
    assert_eq!(fs::read(dir.path().join("out/a.csv")).unwrap(), b"x\n");

    // Dropped before publishing, or before finishing: nothing is left.
    let mut w = store.create("out/b.csv", true).unwrap();
    w.write_all(b"y").unwrap();
    drop(w.finish().unwrap());
    let mut w = store.create("out/c.csv", false).unwrap();
    w.write_all(b"z").unwrap();
    drop(w);
    let left: Vec<_> = fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["a.csv"]);
}

#[test]
fn orphans_are_discarded_by_token_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut w = store.create("out/a.parquet", true).unwrap();
    let token = w.staging_token().unwrap();
    w.write_all(b"half").unwrap();
    // A killed process runs no destructor: the temporary file stays.
    std::mem::forget(w);
    assert!(dir.path().join(&token).is_file());
    store.discard_orphan(&token).unwrap();
    assert!(!dir.path().join(&token).exists());
    store.discard_orphan(&token).unwrap();
    // A finished, committed object another process kept is published by
    // its token; twice is no error.
    let mut w = store.create("out/b.parquet", true).unwrap();
    w.write_all(b"whole").unwrap();
    let staged = w.finish().unwrap().unwrap();
    let token = staged.staging_token().unwrap();
    staged.keep();
    assert!(store.stat("out/b.parquet").unwrap().is_none());
    store.publish_orphan(&token, "out/b.parquet").unwrap();
    assert_eq!(
        fs::read(dir.path().join("out/b.parquet")).unwrap(),
        b"whole"
    );
    store.publish_orphan(&token, "out/b.parquet").unwrap();
    // Only Sluice's own temporary names are accepted.
    fs::write(dir.path().join("keep.csv"), "x").unwrap();
    assert!(store.discard_orphan("keep.csv").is_err());
    assert!(dir.path().join("keep.csv").is_file());
}

/// The grant `in/` beside a directory `outside/` it must not reach.
fn grant_with_links() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(dir.path().join("outside")).unwrap();
    fs::write(dir.path().join("outside/secret.csv"), "secret\n").unwrap();
    fs::write(root.join("data.csv"), "a\n1\n").unwrap();
    // Inside the grant, pointing inside it.
    symlink("data.csv", root.join("alias.csv")).unwrap();
    symlink("../data.csv", root.join("sub/up.csv")).unwrap();
    // Leading out: relative, absolute, and a directory.
    symlink("../outside/secret.csv", root.join("escape.csv")).unwrap();
    symlink(
        dir.path().join("outside/secret.csv"),
        root.join("absolute.csv"),
    )
    .unwrap();
    symlink("../outside", root.join("outdir")).unwrap();
    // A loop and a dangling link.
    symlink("loop", root.join("loop")).unwrap();
    symlink("missing.csv", root.join("dangling.csv")).unwrap();
    let store = LocalStore::open(&root).unwrap();
    (dir, store)
}

#[test]
fn symlinks_inside_the_grant_are_followed() {
    let (_dir, store) = grant_with_links();
    let mut text = String::new();
    store
        .open("alias.csv", 0)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "a\n1\n");
    assert!(store.open("sub/up.csv", 0).is_ok());
    assert!(store.open_local("alias.csv").unwrap().is_some());
    assert_eq!(store.stat("alias.csv").unwrap().unwrap().size, 4);
    // Listed under their own paths; the ones leading out, the loop, the
    // dangling link and the linked directory are not objects here.
    assert_eq!(names(&store, "**"), ["alias.csv", "data.csv", "sub/up.csv"]);
}

#[test]
fn symlinks_leading_out_are_refused_for_every_operation() {
    let (dir, store) = grant_with_links();
    for path in ["escape.csv", "absolute.csv", "outdir/secret.csv"] {
        let err = store.open(path, 0).err().expect(path);
        assert!(
            err.message.contains("outside the granted directory"),
            "{path}: {}",
            err.message
        );
        assert!(store.read(path, 0, 10).is_err(), "{path}");
        assert!(store.open_local(path).is_err(), "{path}");
        assert!(store.stat(path).is_err(), "{path}");
    }
    // Writes, renames and deletes through a link that leads out.
    assert!(store.write("outdir/new.csv", b"x").is_err());
    assert!(store.create("outdir/new.parquet", true).is_err());
    assert!(store.write("outdir/deep/new.csv", b"x").is_err());
    assert!(store.rename("data.csv", "outdir/stolen.csv").is_err());
    assert!(store.rename("outdir/secret.csv", "here.csv").is_err());
    assert!(store.delete("outdir/secret.csv").is_err());
    let outside: Vec<_> = fs::read_dir(dir.path().join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        outside,
        ["secret.csv"],
        "nothing created or removed outside"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("outside/secret.csv")).unwrap(),
        "secret\n"
    );
    // Writing over a link replaces the link, never what it points at.
    store.write("escape.csv", b"mine\n").unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("outside/secret.csv")).unwrap(),
        "secret\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("in/escape.csv")).unwrap(),
        "mine\n"
    );
    // Deleting a link deletes the link.
    store.delete("absolute.csv").unwrap();
    assert!(dir.path().join("outside/secret.csv").is_file());
}

#[test]
fn the_token_is_recorded_before_the_file_exists_and_a_refusal_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let root = dir.path().to_path_buf();
    let mut seen = Vec::new();
    let w = store
        .create_recorded("a.csv", true, &mut |token| {
            assert!(
                !root.join(token).exists(),
                "recorded after the file was made"
            );
            seen.push(token.to_string());
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, [w.staging_token().unwrap()]);
    assert!(dir.path().join(&seen[0]).is_file());
    drop(w);
    let refused =
        store.create_recorded("b.csv", true, &mut |_| Err(Error::transient("no journal")));
    assert!(refused.is_err());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left"
    );
}
