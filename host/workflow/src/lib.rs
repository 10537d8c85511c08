//! Workflow files: what runs, in which order, when.
//!
//! A workflow file names tasks (a transfer, a call to another workflow, an
//! HTTP request, a shell command) in sequence or in parallel, loops with
//! `for_each`, guards with `if`, retries and `on_error` handlers, and a
//! schedule. [`expand`] turns one into the task graph of an attempt, with
//! every `${…}` resolved against the session's time in the workflow's time
//! zone, so a bad template fails at start, not halfway through.

mod definition;
mod error;
mod plan;
mod schedule;
mod session;
mod template;

pub use definition::{Parallel, Retry, RowSource, ScheduleSpec, TaskDef, Workflow, parse_duration};
pub use error::{Error, Result};
pub use plan::{Expansion, ROW_LOOP_KIND, RowLoop, expand, expand_rows};
pub use schedule::Schedule;
pub use session::{format_time, session_params};
pub use template::{Params, render, render_value, truthy};
