//! `sluice`: run, preview, check and discover jobs; run workflows in place
//! or on a fleet (push, start, list, retry, kill); secrets, schedules,
//! tokens and users, and `sluice server`.

mod admin;
mod fleet;
mod output;
mod plugin;
mod remote;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sluice_pipeline::{Job, PluginDirs, Progress, Transfer};
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_server::StoreState;
use sluice_store::{RunStatus, Store};

/// Sluice moves data: sandboxed WebAssembly connectors, Arrow in between.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// Where run history and stream state live (SQLite).
    #[arg(
        long,
        global = true,
        env = "SLUICE_STATE_DIR",
        default_value = ".sluice"
    )]
    state_dir: PathBuf,
    /// Extra directories to search for plugins (before the defaults).
    #[arg(long = "plugin-dir", global = true, env = "SLUICE_PLUGIN_DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Where compiled plugins are cached (default: ~/.cache/sluice/components).
    #[arg(long, global = true, env = "SLUICE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The shared store of a fleet (`postgres://…`); default: SQLite in the state dir.
    #[arg(
        long,
        global = true,
        env = "SLUICE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// A server's API (`https://sluice.example.com`): the fleet commands
    /// (push, start, attempts, tasks, logs, retry, kill, secrets, schedule)
    /// go through it instead of the database.
    #[arg(long, global = true, env = "SLUICE_SERVER")]
    server: Option<String>,
    /// The API token for `--server` (from `sluice admin token create`).
    #[arg(long, global = true, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job: read, filter, write; save state for the next run.
    Run {
        /// The job file.
        job: PathBuf,
        /// Ignore saved state: read everything again.
        #[arg(long)]
        full_refresh: bool,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show the first rows after the filters, writing nothing.
    Preview {
        /// The job file.
        job: PathBuf,
        /// How many rows.
        #[arg(long, default_value_t = 20)]
        rows: usize,
    },
    /// Validate the job's configs and the connectivity of source and sink.
    Check {
        /// The job file.
        job: PathBuf,
    },
    /// List the source's streams and their schemas.
    Discover {
        /// The job file.
        job: PathBuf,
    },
    /// Recent runs from the state store.
    Runs {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Manage plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Workflows in place: run one here, or check one.
    Workflow {
        #[command(subcommand)]
        command: fleet::WorkflowCommand,
    },
    /// Push a project directory (workflows, jobs) as a new revision.
    Push {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Project name (default: the directory's name).
        #[arg(long)]
        project: Option<String>,
        /// Revision name (default: the time).
        #[arg(long)]
        revision: Option<String>,
    },
    /// Start a pushed workflow now (workers run it).
    Start {
        /// Project.
        project: String,
        /// Workflow.
        workflow: String,
        /// Session time: now, YYYY-MM-DD or RFC 3339.
        #[arg(long, default_value = "now")]
        session: String,
        /// Parameters: -p name=value.
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// Every transfer ignores its saved state and reads everything again.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Attempts, newest first.
    Attempts {
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Older than this attempt id (the next page).
        #[arg(long)]
        before: Option<i64>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// An attempt's tasks with state, retries and timing.
    Tasks {
        /// Attempt id.
        attempt: i64,
    },
    /// An attempt's task logs.
    Logs {
        /// Attempt id.
        attempt: i64,
        /// Only tasks whose name contains this.
        #[arg(long)]
        task: Option<String>,
    },
    /// Retry a finished attempt: from scratch, or `--resume` from its failed tasks.
    Retry {
        /// Attempt id.
        attempt: i64,
        /// Keep what succeeded; run only what failed or did not run.
        #[arg(long)]
        resume: bool,
        /// The retried transfers ignore their saved state and read everything again.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Kill a running attempt.
    Kill {
        /// Attempt id.
        attempt: i64,
    },
    /// Project secrets, encrypted with SLUICE_SECRET_KEY.
    Secrets {
        #[command(subcommand)]
        command: fleet::SecretsCommand,
    },
    /// Schedules: list, enable, disable, backfill, skip.
    Schedule {
        #[command(subcommand)]
        command: fleet::ScheduleCommand,
    },
    /// Run the server: api, scheduler and worker roles (flags or SLUICE_* variables).
    Server(fleet::ServerArgs),
    /// API tokens and web UI users.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // JSON lines for a log service (SLUICE_LOG_FORMAT=json): the ids of the
    // current spans (project, attempt, task) ride on every line.
    if std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json()
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    // A caught panic's error names where it happened; it goes to the log.
    sluice_runtime::panic::install_hook();
    if let Err(e) = real_main(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    let mut dirs = PluginDirs::from_env();
    dirs.0.splice(0..0, cli.plugin_dirs.iter().cloned());
    let cache_dir = cli.cache_dir.clone().or_else(default_cache_dir);
    let runtime = || -> Result<Runtime> {
        Runtime::new(RuntimeConfig {
            cache_dir: cache_dir.clone(),
        })
        .context("starting the WebAssembly runtime")
    };
    match &cli.command {
        Command::Run {
            job,
            full_refresh,
            json,
        } => run(&cli, &dirs, &runtime()?, job, *full_refresh, *json),
        Command::Preview { job, rows } => {
            let transfer = prepare(&runtime()?, &dirs, job)?;
            let batches = transfer.preview(*rows)?;
            println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
            Ok(())
        }
        Command::Check { job } => {
            let transfer = prepare(&runtime()?, &dirs, job)?;
            transfer.check()?;
            println!(
                "ok: {} is valid and its source and sink answer",
                job.display()
            );
            Ok(())
        }
        Command::Discover { job } => {
            let transfer = prepare(&runtime()?, &dirs, job)?;
            for stream in transfer.discover()? {
                output::print_stream(&stream);
            }
            Ok(())
        }
        Command::Runs { job, limit } => {
            let rt = tokio_runtime()?;
            let store = rt.block_on(open_store(&cli))?;
            let runs = rt.block_on(store.runs(job.as_deref(), *limit))?;
            output::print_runs(&runs);
            Ok(())
        }
        Command::Plugin { command } => plugin::run(command, &runtime, &dirs),
        Command::Admin { command } => {
            let rt = tokio_runtime()?;
            let store = rt.block_on(open_store(&cli))?;
            rt.block_on(admin::run(&store, command))
        }
        command if cli.server.is_some() && remote_command(command) => {
            let server = cli.server.as_deref().unwrap_or_default();
            let remote = remote::Remote::new(server, cli.token.clone())?;
            tokio_runtime()?.block_on(remote_fleet_command(&remote, command))
        }
        command => {
            let rt = tokio_runtime()?;
            let store = rt.block_on(open_store(&cli))?;
            let ctx = fleet::Ctx {
                store,
                runtime: Arc::new(runtime()?),
                plugins: dirs.clone(),
                state_dir: cli.state_dir.clone(),
            };
            rt.block_on(fleet_command(&ctx, command))
        }
    }
}

async fn fleet_command(ctx: &fleet::Ctx, command: &Command) -> Result<()> {
    match command {
        Command::Workflow { command } => fleet::workflow(ctx, command).await,
        Command::Push {
            dir,
            project,
            revision,
        } => fleet::push(ctx, dir, project.as_deref(), revision.as_deref()).await,
        Command::Start {
            project,
            workflow,
            session,
            params,
            full_refresh,
        } => fleet::start(ctx, project, workflow, session, params, *full_refresh).await,
        Command::Attempts {
            project,
            workflow,
            before,
            limit,
        } => {
            fleet::attempts(
                ctx,
                project.as_deref(),
                workflow.as_deref(),
                *before,
                *limit,
            )
            .await
        }
        Command::Tasks { attempt } => fleet::tasks(ctx, *attempt).await,
        Command::Logs { attempt, task } => fleet::logs(ctx, *attempt, task.as_deref()).await,
        Command::Retry {
            attempt,
            resume,
            full_refresh,
        } => fleet::retry(ctx, *attempt, *resume, *full_refresh).await,
        Command::Kill { attempt } => fleet::kill(ctx, *attempt).await,
        Command::Secrets { command } => fleet::secrets(ctx, command).await,
        Command::Schedule { command } => fleet::schedule(ctx, command).await,
        Command::Server(args) => fleet::server(ctx, args).await,
        _ => unreachable!("handled in real_main"),
    }
}

/// The fleet commands that a server's API can do.
fn remote_command(command: &Command) -> bool {
    matches!(
        command,
        Command::Push { .. }
            | Command::Start { .. }
            | Command::Attempts { .. }
            | Command::Tasks { .. }
            | Command::Logs { .. }
            | Command::Retry { .. }
            | Command::Kill { .. }
            | Command::Secrets { .. }
            | Command::Schedule { .. }
    )
}

async fn remote_fleet_command(remote: &remote::Remote, command: &Command) -> Result<()> {
    match command {
        Command::Push {
            dir,
            project,
            revision,
        } => {
            let project = match project {
                Some(p) => p.clone(),
                None => fleet::project_name(&dir.canonicalize().unwrap_or(dir.clone())),
            };
            remote.push(dir, &project, revision.as_deref()).await
        }
        Command::Start {
            project,
            workflow,
            session,
            params,
            full_refresh,
        } => {
            let params = fleet::parse_params(params)?;
            remote
                .start(project, workflow, session, params, *full_refresh)
                .await
        }
        Command::Attempts {
            project,
            workflow,
            before,
            limit,
        } => {
            remote
                .attempts(project.as_deref(), workflow.as_deref(), *before, *limit)
                .await
        }
        Command::Tasks { attempt } => remote.tasks(*attempt).await,
        Command::Logs { attempt, task } => remote.logs(*attempt, task.as_deref()).await,
        Command::Retry {
            attempt,
            resume,
            full_refresh,
        } => remote.retry(*attempt, *resume, *full_refresh).await,
        Command::Kill { attempt } => remote.kill(*attempt).await,
        Command::Secrets { command } => remote.secrets(command).await,
        Command::Schedule { command } => remote.schedule(command).await,
        _ => unreachable!("remote_command said so"),
    }
}

/// The fleet's PostgreSQL when given, else SQLite in the state directory.
async fn open_store(cli: &Cli) -> Result<Store> {
    Ok(match &cli.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&cli.state_dir.join("state.db")).await?,
    })
}

/// `~/.cache/sluice` (or `$XDG_CACHE_HOME/sluice`): compiled components,
/// and the tools and trees `sluice plugin build` keeps.
pub(crate) fn cache_root() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sluice"))
}

fn default_cache_dir() -> Option<PathBuf> {
    cache_root().map(|root| root.join("components"))
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn prepare(runtime: &Runtime, dirs: &PluginDirs, job: &Path) -> Result<Transfer> {
    let job = Job::load(job)?;
    Ok(Transfer::prepare(job, runtime, dirs)?)
}

fn run(
    cli: &Cli,
    dirs: &PluginDirs,
    runtime: &Runtime,
    job_path: &Path,
    full_refresh: bool,
    json: bool,
) -> Result<()> {
    let transfer = prepare(runtime, dirs, job_path)?;
    let job_name = transfer.job().name().to_string();
    let rt = tokio_runtime()?;
    let store = rt.block_on(open_store(cli))?;
    if full_refresh {
        let n = rt.block_on(store.clear_state(&job_name, transfer.fingerprint()))?;
        tracing::info!(job = %job_name, partitions = n, "full refresh: saved state cleared");
    }
    let run_id = rt.block_on(store.start_run(&job_name, None))?;
    let state = StoreState {
        store: store.clone(),
        handle: rt.handle().clone(),
        job: job_name.clone(),
        run: Some(run_id),
        owner: sluice_server::local_owner(),
    };
    let progress = Arc::new(Progress::default());
    let reporter = output::ProgressReporter::start(progress.clone());
    let result = transfer.run(&state, full_refresh, &progress);
    reporter.stop();
    match result {
        Ok(summary) => {
            rt.block_on(store.finish_run(
                run_id,
                RunStatus::Succeeded,
                summary.rows,
                summary.bytes_out,
                None,
            ))?;
            if json {
                println!("{}", output::summary_json(&job_name, run_id, &summary));
            } else {
                output::print_summary(&job_name, &summary);
            }
            Ok(())
        }
        Err(e) => {
            // What stays of a failed run is what the sink committed.
            let rows = progress
                .rows_committed
                .load(std::sync::atomic::Ordering::Relaxed);
            let message = e.to_string();
            rt.block_on(store.finish_run(run_id, RunStatus::Failed, rows, 0, Some(&message)))?;
            Err(anyhow::Error::new(e).context(format!("job {job_name} failed (run {run_id})")))
        }
    }
}
