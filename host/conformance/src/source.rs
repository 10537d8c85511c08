//! Sources: check, discover, read every partition, read again the same,
//! and resume from a checkpoint to exactly the rows after it (or, for a
//! full-refresh read that ignores its state, to all of them again).

use arrow::record_batch::RecordBatch;
use sluice_runtime::{Partition, Plugin, ReaderEvent, StreamInfo};

use crate::{Options, Outcome, Report, data, grants};

/// At most this many streams are read.
const MAX_STREAMS: usize = 4;
/// At most this many batches are read from one partition.
const MAX_BATCHES: usize = 200;

/// What one partition gave: its batches, and after how many of them each
/// checkpoint came.
struct Read {
    batches: Vec<RecordBatch>,
    checkpoints: Vec<(usize, String)>,
}

pub(crate) fn checks(plugin: &Plugin, config: &str, options: &Options, report: &mut Report) {
    let grants = match grants(options.blob_dir.as_deref(), false) {
        Ok(g) => g,
        Err(e) => {
            report.push("the blob directory opens", Outcome::Failed(e));
            return;
        }
    };
    let instance = || plugin.source(grants.clone(), options.limits);
    let checked = instance().and_then(|mut s| s.check(config));
    report.push(
        "check() accepts the working config",
        match checked {
            Ok(()) => Outcome::Passed("ok".into()),
            Err(e) => Outcome::Failed(format!(
                "{e}\n  check() should pass with a config that works (is --config or --blob-dir right?)"
            )),
        },
    );
    let streams = match instance().and_then(|mut s| s.discover(config)) {
        Ok(streams) if streams.is_empty() => {
            report.push(
                "discover() lists streams",
                Outcome::Failed("no streams: a source must offer at least one".into()),
            );
            return;
        }
        Ok(streams) => streams,
        Err(e) => {
            report.push("discover() lists streams", Outcome::Failed(e.to_string()));
            return;
        }
    };
    let mut names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let unique = names.windows(2).all(|w| w[0] != w[1]);
    report.push(
        "discover() lists streams",
        if unique {
            Outcome::Passed(names.join(", "))
        } else {
            Outcome::Failed(format!("stream names repeat: {}", names.join(", ")))
        },
    );
    for stream in streams.iter().take(MAX_STREAMS) {
        stream_checks(plugin, config, options, &grants, stream, report);
    }
}

fn stream_checks(
    plugin: &Plugin,
    config: &str,
    options: &Options,
    grants: &std::sync::Arc<sluice_runtime::Grants>,
    stream: &StreamInfo,
    report: &mut Report,
) {
    let name = &stream.name;
    let partitions = match plugin
        .source(grants.clone(), options.limits)
        .and_then(|mut s| s.partitions(config, name, None))
    {
        Ok(p) if p.is_empty() => {
            report.push(
                &format!("{name}: partitions()"),
                Outcome::Failed(
                    "no partitions: return at least one, even for an empty stream".into(),
                ),
            );
            return;
        }
        Ok(p) => p,
        Err(e) => {
            report.push(
                &format!("{name}: partitions()"),
                Outcome::Failed(e.to_string()),
            );
            return;
        }
    };
    let read = |partition: &Partition, state: Option<&str>| -> Result<Read, String> {
        let mut reader = plugin
            .source(grants.clone(), options.limits)
            .and_then(|s| s.into_reader(config, partition, state))
            .map_err(|e| e.to_string())?;
        let mut out = Read {
            batches: Vec::new(),
            checkpoints: Vec::new(),
        };
        while out.batches.len() < MAX_BATCHES {
            match reader.next_event().map_err(|e| e.to_string())? {
                None => break,
                Some(ReaderEvent::Batch(b)) => out.batches.push(b),
                Some(ReaderEvent::Checkpoint(s)) => out.checkpoints.push((out.batches.len(), s)),
            }
        }
        Ok(out)
    };
    let mut first = Vec::new();
    for partition in &partitions {
        match read(partition, None) {
            Ok(r) => first.push(r),
            Err(e) => {
                report.push(
                    &format!("{name}: reads every partition"),
                    Outcome::Failed(format!("partition {}: {e}", partition.id)),
                );
                return;
            }
        }
    }
    let rows: usize = first
        .iter()
        .flat_map(|r| &r.batches)
        .map(|b| b.num_rows())
        .sum();
    report.push(
        &format!("{name}: reads every partition"),
        Outcome::Passed(format!("{} partitions, {rows} rows", partitions.len())),
    );

    // Every batch has the declared schema (the host already refuses a
    // schema that changes mid-stream).
    let declared = stream.schema.clone();
    let mismatch = first.iter().flat_map(|r| &r.batches).find(|b| {
        declared
            .as_ref()
            .is_some_and(|d| !sluice_runtime::same_fields(d, &b.schema()))
    });
    report.push(
        &format!("{name}: batches match the discovered schema"),
        match (&declared, mismatch) {
            (None, _) => Outcome::Skipped("discover() declares no schema for it".into()),
            (Some(_), None) => Outcome::Passed("every batch".into()),
            (Some(d), Some(b)) => Outcome::Failed(format!(
                "discover() said {:?}, a batch has {:?}: declare the schema the reader produces",
                field_names(d),
                field_names(&b.schema())
            )),
        },
    );

    // The same config reads the same rows.
    let mut same = true;
    for (partition, before) in partitions.iter().zip(&first) {
        match read(partition, None) {
            Ok(again) if equal(&before.batches, &again.batches) => {}
            Ok(_) => same = false,
            Err(e) => {
                report.push(
                    &format!("{name}: reads the same rows twice"),
                    Outcome::Failed(format!("the second read failed: {e}")),
                );
                return;
            }
        }
    }
    report.push(
        &format!("{name}: reads the same rows twice"),
        if same {
            Outcome::Passed("deterministic".into())
        } else {
            Outcome::Failed(
                "a second read gave other rows: make output a function of config and state \
                 (seed random data, order query results)"
                    .into(),
            )
        },
    );

    // Resuming from a checkpoint yields exactly the rows after it.
    let resumable = partitions.iter().zip(&first).find_map(|(p, r)| {
        r.checkpoints
            .iter()
            .find(|(after, _)| *after > 0 && *after < r.batches.len())
            .or_else(|| r.checkpoints.first())
            .map(|(after, state)| (p, r, *after, state.clone()))
    });
    let label = format!("{name}: resumes from a checkpoint with the rows after it");
    let Some((partition, before, after, state)) = resumable else {
        report.push(
            &label,
            Outcome::Skipped("the reader emits no checkpoints (full refresh only)".into()),
        );
        return;
    };
    report.push(
        &label,
        match read(partition, Some(&state)) {
            Ok(resumed) if equal(&before.batches[after..], &resumed.batches) => Outcome::Passed(
                format!("after {after} of {} batches", before.batches.len()),
            ),
            // A full-refresh read may ignore its state and read it all again.
            Ok(resumed) if equal(&before.batches, &resumed.batches) => Outcome::Passed(format!(
                "reads everything again from a checkpoint (full refresh: the state is ignored); \
                 an incremental config would read the {} rows after it",
                rows_of(&before.batches[after..])
            )),
            Ok(resumed) => Outcome::Failed(format!(
                "resumed from the checkpoint after batch {after}: {} rows, where {} rows came after it \
                 the first time (and {} in all); a checkpoint must cover exactly the batches before it",
                rows_of(&resumed.batches),
                rows_of(&before.batches[after..]),
                rows_of(&before.batches)
            )),
            Err(e) => Outcome::Failed(format!(
                "cannot reopen with its own checkpoint {state:?}: {e}"
            )),
        },
    );
}

fn rows_of(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn equal(a: &[RecordBatch], b: &[RecordBatch]) -> bool {
    if rows_of(a) != rows_of(b) {
        return false;
    }
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(x), Some(_)) => {
            let schema = x.schema();
            data::concat(&schema, a) == data::concat(&schema, b)
        }
        _ => rows_of(a) == 0,
    }
}

fn field_names(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect()
}
