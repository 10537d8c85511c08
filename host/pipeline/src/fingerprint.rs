//! The fingerprint of what a transfer reads and writes: with the job's
//! name, the key of its saved state.
//!
//! It covers the source's and the sink's plugin names, their configs as
//! resolved for this run (`${env:…}` and workflow parameters filled in) and
//! their grants (the directory or prefix, the database each connection
//! points at, without its password). Change any of them and the state saved
//! before belongs to something else: the run starts fresh and says so.
//!
//! Left out: a plugin's version (upgrading one keeps its state), and the
//! config keys its config schema lists under [`STATE_IGNORES`] — settings
//! that change how, not what, it reads or writes (a batch size, a
//! compression level). A job's `state_key:` replaces all of it.

use sha2::{Digest, Sha256};
use sluice_runtime::PluginInfo;

use crate::job::{GrantsConfig, Job, PluginStep};

/// The keyword of a plugin's config schema that lists the config keys a
/// change of which keeps the saved state.
pub const STATE_IGNORES: &str = "x-sluice-state-ignores";

/// The fingerprint of `job` run with these source and sink plugins: 16 hex
/// digits.
pub(crate) fn fingerprint(job: &Job, source: &PluginInfo, sink: &PluginInfo) -> String {
    let described = match &job.state_key {
        Some(key) => serde_json::json!({ "state_key": key }),
        None => serde_json::json!({
            "source": step(job, source, &job.source),
            "sink": step(job, sink, &job.sink),
        }),
    };
    // serde_json's maps are ordered by key: the text is canonical.
    let digest = Sha256::digest(described.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn step(job: &Job, plugin: &PluginInfo, step: &PluginStep) -> serde_json::Value {
    let mut config = step.config.clone();
    if let (Some(map), Some(ignored)) = (
        config.as_object_mut(),
        plugin.config_schema[STATE_IGNORES].as_array(),
    ) {
        for key in ignored.iter().filter_map(|k| k.as_str()) {
            map.remove(key);
        }
    }
    serde_json::json!({
        "plugin": plugin.name,
        "config": config,
        "streams": step.streams,
        "grants": grants(job, &step.grants),
    })
}

fn grants(job: &Job, grants: &GrantsConfig) -> serde_json::Value {
    let blob = grants.blob.as_ref().map(|location| {
        if location.is_s3() {
            let s3 = location.s3_settings(&job.s3);
            serde_json::json!({ "url": location.url(), "endpoint": s3.endpoint })
        } else if location.is_gcs() {
            let gcs = location.gcs_settings(&job.gcs);
            serde_json::json!({ "url": location.url(), "endpoint": gcs.endpoint })
        } else {
            let dir = job.resolve(std::path::Path::new(location.url()));
            let dir = dir.canonicalize().unwrap_or(dir);
            serde_json::json!({ "dir": dir.display().to_string() })
        }
    });
    let sql: serde_json::Map<String, serde_json::Value> = grants
        .sql
        .iter()
        .map(|name| {
            let url = job
                .connections
                .get(name)
                .map(|c| without_password(&c.url))
                .unwrap_or_default();
            (name.clone(), url.into())
        })
        .collect();
    let mut out = serde_json::json!({
        "blob": blob,
        "sql": sql,
        "http": grants.http.as_ref().map(|h| &h.hosts),
    });
    // Only when granted: fingerprints saved before BigQuery stay the same.
    if let Some(b) = &grants.bigquery {
        out["bigquery"] = serde_json::json!({
            "project": b.project,
            "datasets": b.datasets,
            "endpoint": b.endpoint,
        });
    }
    out
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`: where a
/// connection points, not how it logs in (a rotated password is the same
/// database).
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Job {
        Job::parse(text, std::path::Path::new("/tmp/j.yaml"), &|_| None).unwrap()
    }

    fn info(name: &str, ignores: &[&str]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "0.1.0".into(),
            kind: sluice_runtime::PluginKind::Source,
            description: String::new(),
            config_schema: serde_json::json!({ STATE_IGNORES: ignores }),
            capabilities: Vec::new(),
        }
    }

    fn of(text: &str) -> String {
        fingerprint(
            &job(text),
            &info("generate", &["batch_size"]),
            &info("file", &[]),
        )
    }

    const BASE: &str = "source: {plugin: generate, config: {rows: 10, batch_size: 5}}\nsink: {plugin: file, grants: {blob: ./out}, config: {path: a.csv}}\n";

    #[test]
    fn what_is_read_and_written_is_the_key() {
        let base = of(BASE);
        assert_eq!(base.len(), 16);
        assert_eq!(base, of(BASE));
        assert_ne!(base, of(&BASE.replace("rows: 10", "rows: 11")));
        assert_ne!(base, of(&BASE.replace("./out", "./out2")));
        assert_ne!(base, of(&BASE.replace("a.csv", "b.csv")));
        // What the plugin says changes only how it reads, the exec settings
        // and the filters are not part of it.
        assert_eq!(base, of(&BASE.replace("batch_size: 5", "batch_size: 6")));
        assert_eq!(base, of(&format!("{BASE}exec: {{parallelism: 1}}\n")));
        // An explicit key replaces it all.
        assert_eq!(
            of(&format!("{BASE}state_key: daily\n")),
            of(&format!(
                "{}state_key: daily\n",
                BASE.replace("./out", "./out2")
            ))
        );
    }
    #[test]
    fn passwords_are_not_part_of_a_connection() {
        assert_eq!(
            without_password("postgres://u:secret@db:5432/app?sslmode=require"),
            "postgres://u@db:5432/app?sslmode=require"
        );
        assert_eq!(without_password("mysql://root@h/x"), "mysql://root@h/x");
        assert_eq!(without_password("sqlite::memory:"), "sqlite::memory:");
    }
}
