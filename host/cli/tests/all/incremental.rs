//! Saved state: a second run continues where the first stopped.

use crate::support::*;

fn generate_job(rows: u64) -> String {
    format!(
        "name: gen\nsource:\n  plugin: generate\n  config: {{rows: {rows}, batch_size: 250, partitions: 2}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'run-{{task}}-{{part}}.csv'}}\n"
    )
}

#[test]
fn generate_incremental_reads_only_new_rows() {
    let s = Scratch::new();
    s.write("j.yaml", generate_job(1000));
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 1000);
    // Nothing new: nothing read.
    let again = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&again), 0);
    assert_eq!(again["tasks"], 0);
    // 500 new rows: only those, ids 1000..1500.
    s.write("j.yaml", generate_job(1500));
    let more = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&more), 500);
    let ids = output_ids(&s, &more);
    assert_eq!(ids, (1000..1500).collect::<Vec<_>>());
    // Earlier runs' files are kept (the sink appends): the directory holds
    // every row exactly once.
    let mut all = Vec::new();
    for entry in std::fs::read_dir(s.path("out")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        all.extend(
            text.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()),
        );
    }
    all.sort();
    assert_eq!(all, (0..1500).collect::<Vec<_>>());
    // --full-refresh starts over.
    assert_eq!(rows(&s.run_ok("j.yaml", &["--full-refresh"])), 1500);

    // Runs are recorded.
    let out = s.sluice(&["runs", "--job", "gen"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("succeeded").count(), 4, "{text}");
}

#[test]
fn file_incremental_skips_files_already_read() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n2\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv'], incremental: true}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: '{task}-{part}.csv'}\n",
    );
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 2);
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 0);
    s.write("in/b.csv", "x\n3\n4\n5\n");
    let third = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&third), 3);
    assert_eq!(third["tasks"], 1);
}

#[test]
fn failed_run_saves_no_state_for_uncommitted_data() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n2\n");
    s.write("in/b.csv", "x\n1\nnot-a-number\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv'], incremental: true, columns: {x: int64}}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: '{task}.csv'}\nexec: {parallelism: 1}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(err.contains("b.csv"), "{err}");
    // Fix the file: only b.csv is read again (a.csv committed before).
    s.write("in/b.csv", "x\n3\n");
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 1);
}

#[test]
fn commits_within_a_task_write_new_files_and_save_state() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        "source:\n  plugin: generate\n  config: {rows: 1000, batch_size: 100, partitions: 1}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: 'g-{task}-{part}.csv', mode: overwrite}\nexec: {commit_every_rows: 300}\n",
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 1000);
    // Commits at 300, 600 and 900 rows, then the rest at the end: four
    // files, none overwriting another, every row once.
    let outputs = summary["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4, "{outputs:?}");
    let ids = output_ids(&s, &summary);
    assert_eq!(ids, (0..1000).collect::<Vec<_>>());
}
