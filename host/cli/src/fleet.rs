//! Commands on workflows and the queue: run in place, push, start, list,
//! retry, kill, secrets, schedules, and the server itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use sluice_api::{AttemptView, Page};
use sluice_server::{
    Executor, InPlace, Launch, Scheduler, SessionTime, Worker, WorkerConfig, now_ms, push_project,
    read_dir, run_in_place, worker_id,
};
use sluice_store::{AttemptStatus, SecretKey, Store};
use sluice_workflow::{Params, Schedule, format_time};
use tokio::sync::watch;

use crate::output;

/// `sluice workflow …`
#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Run a workflow file to completion here, on the embedded store.
    Run {
        /// The workflow file.
        file: PathBuf,
        /// Session time: now, YYYY-MM-DD (midnight in the workflow's zone) or RFC 3339.
        #[arg(long, default_value = "now")]
        session: String,
        /// Parameters: -p name=value (a value in JSON keeps its type).
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// Tasks at once.
        #[arg(long, default_value_t = 4)]
        slots: usize,
        /// Allow `sh:` tasks.
        #[arg(long, env = "SLUICE_ALLOW_SH")]
        allow_sh: bool,
    },
    /// Check a workflow file: parse it and expand it for a session, printing the tasks.
    Check {
        /// The workflow file.
        file: PathBuf,
        /// Session time.
        #[arg(long, default_value = "now")]
        session: String,
        /// Parameters: -p name=value.
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
    },
}

/// `sluice secrets …`
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Set a secret (the value is read from stdin unless --value is given).
    Set {
        /// Project.
        project: String,
        /// Name.
        name: String,
        /// The value (prefer stdin: a shell history keeps arguments).
        #[arg(long)]
        value: Option<String>,
    },
    /// List secret names (never values).
    List {
        /// Project.
        project: String,
    },
    /// Delete a secret.
    Delete {
        /// Project.
        project: String,
        /// Name.
        name: String,
    },
}

/// `sluice schedule …`
#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Every schedule with its next run time.
    List,
    /// Let a workflow's schedule fire again (from now on).
    Enable {
        /// Project.
        project: String,
        /// Workflow.
        workflow: String,
    },
    /// Stop a workflow's schedule from firing.
    Disable {
        /// Project.
        project: String,
        /// Workflow.
        workflow: String,
    },
    /// Start every scheduled session from FROM up to (not including) TO
    /// that has not run yet.
    Backfill {
        /// Project.
        project: String,
        /// Workflow.
        workflow: String,
        /// First session time (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        from: String,
        /// End (excluded).
        #[arg(long)]
        to: String,
    },
    /// Skip scheduled times up to (not including) UNTIL.
    Skip {
        /// Project.
        project: String,
        /// Workflow.
        workflow: String,
        /// The first time that should fire again.
        #[arg(long)]
        until: String,
    },
}

/// `sluice server` settings: flags or environment, no config file.
#[derive(Args)]
pub struct ServerArgs {
    /// Roles this process plays: any of api, scheduler, worker.
    #[arg(
        long,
        env = "SLUICE_ROLES",
        value_delimiter = ',',
        default_value = "api,scheduler,worker"
    )]
    roles: Vec<String>,
    /// Tasks a worker runs at once.
    #[arg(long, env = "SLUICE_WORKER_SLOTS", default_value_t = 4)]
    slots: usize,
    /// At most this many tasks run at once in the whole fleet (give every
    /// worker the same value). Unset: only the workers' slots limit it.
    #[arg(long, env = "SLUICE_MAX_RUNNING")]
    max_running: Option<i64>,
    /// Lease length without a heartbeat (seconds).
    #[arg(long, env = "SLUICE_LEASE_SECONDS", default_value_t = 30.0)]
    lease_seconds: f64,
    /// On SIGTERM, how long running tasks get to checkpoint (seconds).
    #[arg(long, env = "SLUICE_GRACE_SECONDS", default_value_t = 110.0)]
    grace_seconds: f64,
    /// Longest idle sleep between queue polls (seconds).
    #[arg(long, env = "SLUICE_POLL_SECONDS", default_value_t = 5.0)]
    poll_seconds: f64,
    /// A task whose lease expires this many times fails.
    #[arg(long, env = "SLUICE_MAX_LEASE_EXPIRIES", default_value_t = 3)]
    max_lease_expiries: i64,
    /// Allow `sh:` tasks on this worker.
    #[arg(long, env = "SLUICE_ALLOW_SH")]
    allow_sh: bool,
    /// Where task logs are written.
    #[arg(long, env = "SLUICE_LOG_DIR")]
    log_dir: Option<PathBuf>,
    /// Upload finished task logs here (`s3://bucket/prefix` or `gs://bucket/prefix`).
    #[arg(long, env = "SLUICE_LOG_URL")]
    log_url: Option<String>,
    /// Where pushed revisions are unpacked.
    #[arg(long, env = "SLUICE_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// How often the scheduler looks at schedules (seconds).
    #[arg(long, env = "SLUICE_SCHEDULER_TICK_SECONDS", default_value_t = 1.0)]
    scheduler_tick_seconds: f64,
    /// Where the api role listens: the REST API, the web UI, /healthz,
    /// /readyz and /metrics.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: String,
    /// Let callers without credentials in with this role (viewer,
    /// operator, admin). Unset: nothing is anonymous.
    #[arg(long, env = "SLUICE_API_ANONYMOUS_ROLE", value_parser = sluice_api::Role::parse)]
    anonymous_role: Option<sluice_api::Role>,
    /// How long a web UI sign-in lasts (hours).
    #[arg(long, env = "SLUICE_SESSION_HOURS", default_value_t = 12.0)]
    session_hours: f64,
    /// Mark session cookies Secure: true or false. Unset: when the load
    /// balancer says the request came over TLS (X-Forwarded-Proto: https).
    #[arg(long, env = "SLUICE_COOKIE_SECURE")]
    cookie_secure: Option<bool>,
    /// Serve /metrics without credentials (a scraper inside the network).
    #[arg(long, env = "SLUICE_METRICS_PUBLIC")]
    metrics_public: bool,
    /// The scheduler prints the queue's depth as CloudWatch embedded-metric
    /// lines on stdout (`emf`), for autoscaling workers without an agent.
    #[arg(long, env = "SLUICE_QUEUE_METRICS", value_parser = ["emf"])]
    queue_metrics: Option<String>,
    /// How often those lines are printed (seconds).
    #[arg(long, env = "SLUICE_QUEUE_METRICS_SECONDS", default_value_t = 30.0)]
    queue_metrics_seconds: f64,
    /// The `Cluster` dimension of those metrics.
    #[arg(long, env = "SLUICE_CLUSTER")]
    cluster: Option<String>,
    /// The scheduler prunes attempts (their tasks, logs' records and empty
    /// sessions) that finished more than this many days ago. Unset: kept.
    #[arg(long, env = "SLUICE_RETENTION_DAYS")]
    retention_days: Option<f64>,
}

pub fn parse_params(items: &[String]) -> Result<Params> {
    let mut params = Params::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("-p {item}: expected name=value"))?;
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.into()));
        params.insert(k.trim().to_string(), value);
    }
    Ok(params)
}

fn log_sink(url: Option<&str>) -> Result<Option<sluice_server::LogSink>> {
    match url.filter(|u| !u.is_empty()) {
        Some(url) => Ok(Some(
            sluice_server::LogSink::new(url).map_err(anyhow::Error::msg)?,
        )),
        None => Ok(None),
    }
}

fn secret_key() -> Result<Option<SecretKey>> {
    match std::env::var("SLUICE_SECRET_KEY") {
        Ok(k) if !k.is_empty() => Ok(Some(SecretKey::parse(&k)?)),
        _ => Ok(None),
    }
}

fn required_key() -> Result<SecretKey> {
    secret_key()?.context(
        "SLUICE_SECRET_KEY is not set: secrets are encrypted with it (make one with \
         `openssl rand -hex 32` and give every server the same)",
    )
}

/// Ctrl-C and SIGTERM turn the returned flag true.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = tx.send(true);
    });
    rx
}

/// Everything commands share.
pub struct Ctx {
    pub store: Store,
    pub runtime: Arc<sluice_runtime::Runtime>,
    pub plugins: sluice_pipeline::PluginDirs,
    pub state_dir: PathBuf,
}

impl Ctx {
    fn executor(&self, allow_sh: bool) -> Arc<Executor> {
        Arc::new(Executor::new(
            self.store.clone(),
            self.runtime.clone(),
            self.plugins.clone(),
            allow_sh,
        ))
    }
}

pub async fn workflow(ctx: &Ctx, command: &WorkflowCommand) -> Result<()> {
    match command {
        WorkflowCommand::Run {
            file,
            session,
            params,
            slots,
            allow_sh,
        } => {
            let (dir, name) = locate(file)?;
            let project = project_name(&dir);
            let launch = Launch {
                project: project.clone(),
                workflow: name,
                session: SessionTime::parse(session).map_err(anyhow::Error::msg)?,
                params: parse_params(params)?,
                resume_from: None,
                only_new_session: false,
                full_refresh: false,
            };
            let place = InPlace {
                dir,
                slots: *slots,
                log_dir: Some(ctx.state_dir.join("logs")),
                log_sink: log_sink(std::env::var("SLUICE_LOG_URL").ok().as_deref())?,
                work_dir: ctx.state_dir.join("work"),
                secret_key: secret_key()?,
            };
            let (attempt, _) = run_in_place(
                &ctx.store,
                ctx.executor(*allow_sh),
                &launch,
                &place,
                shutdown_signal(),
            )
            .await?;
            let tasks = ctx.store.tasks(attempt.id).await?;
            output::print_tasks(&views(tasks));
            println!(
                "workflow {} (project {project}), session {}: attempt {} {}",
                attempt.workflow,
                format_time(attempt.session_time, "UTC"),
                attempt.id,
                attempt.status.as_str()
            );
            match attempt.status {
                AttemptStatus::Succeeded => Ok(()),
                status => bail!(
                    "attempt {} {}; see `sluice tasks {}` and `sluice logs {}`",
                    attempt.id,
                    status.as_str(),
                    attempt.id,
                    attempt.id
                ),
            }
        }
        WorkflowCommand::Check {
            file,
            session,
            params,
        } => {
            let (dir, name) = locate(file)?;
            let files = sluice_server::ProjectFiles::Dir(dir);
            let (path, mut wf) = files.workflow(&name)?;
            for (k, v) in parse_params(params)? {
                wf.params.insert(k, v);
            }
            let time = SessionTime::parse(session)
                .map_err(anyhow::Error::msg)?
                .resolve(wf.timezone());
            let mut p = sluice_workflow::session_params(time, None, wf.timezone());
            p.insert("project".into(), Value::String("check".into()));
            let expansion = sluice_workflow::expand(&wf, &path, p, &|f| files.read(f))?;
            for task in &expansion.plan.tasks {
                println!("{:<10} {}", task.kind, task.name);
            }
            if let Some(spec) = &wf.schedule {
                let schedule = Schedule::parse(spec).map_err(anyhow::Error::msg)?;
                if let Some(next) = schedule.next_after(now_ms()) {
                    println!("next run: {}", format_time(next, wf.timezone()));
                }
            }
            println!("ok: {} tasks", expansion.plan.tasks.len());
            Ok(())
        }
    }
}

/// The workflow file's directory and the workflow's name.
fn locate(file: &Path) -> Result<(PathBuf, String)> {
    let wf = sluice_workflow::Workflow::load(file)?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}", dir.display()))?;
    Ok((dir, wf.name().to_string()))
}

pub fn project_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".into())
}

pub async fn push(
    ctx: &Ctx,
    dir: &Path,
    project: Option<&str>,
    revision: Option<&str>,
) -> Result<()> {
    let files = read_dir(dir)?;
    let project = project
        .map(str::to_string)
        .unwrap_or_else(|| project_name(&dir.canonicalize().unwrap_or(dir.to_path_buf())));
    let revision = revision
        .map(str::to_string)
        .unwrap_or_else(|| chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string());
    let count = files.len();
    let (id, workflows) = push_project(&ctx.store, &project, &revision, files, now_ms()).await?;
    println!(
        "pushed {count} files as project {project}, revision {revision} (id {id}); workflows: {}",
        workflows.join(", ")
    );
    Ok(())
}

pub async fn start(
    ctx: &Ctx,
    project: &str,
    workflow: &str,
    session: &str,
    params: &[String],
    full_refresh: bool,
) -> Result<()> {
    let attempt = sluice_server::start_latest(
        &ctx.store,
        project,
        workflow,
        session,
        parse_params(params)?,
        full_refresh,
    )
    .await?;
    println!(
        "started attempt {} of {project}/{workflow} (revision {}), session {}",
        attempt.id,
        attempt.revision_id.unwrap_or_default(),
        format_time(attempt.session_time, "UTC")
    );
    Ok(())
}

pub async fn retry(ctx: &Ctx, attempt: i64, resume: bool, full_refresh: bool) -> Result<()> {
    let new = sluice_server::retry_attempt(&ctx.store, attempt, resume, full_refresh).await?;
    println!(
        "attempt {} retries attempt {attempt}{}",
        new.id,
        if resume {
            " from its failed tasks"
        } else {
            " from scratch"
        }
    );
    Ok(())
}

pub async fn logs(ctx: &Ctx, attempt: i64, task: Option<&str>) -> Result<()> {
    let logs = ctx.store.task_logs(attempt).await?;
    if logs.is_empty() {
        println!("no logs for attempt {attempt}");
    }
    for (_, name, lease, location) in logs {
        if task.is_some_and(|t| !name.contains(t)) {
            continue;
        }
        println!("== {name} (lease {lease}) {location}");
        let where_ = location.clone();
        let text = tokio::task::spawn_blocking(move || sluice_server::read_log(&where_)).await?;
        match text {
            Ok(text) => print!("{text}"),
            Err(e) => println!("(cannot read {location}: {e}; it is on the worker that ran it)"),
        }
    }
    Ok(())
}

pub async fn secrets(ctx: &Ctx, command: &SecretsCommand) -> Result<()> {
    match command {
        SecretsCommand::Set {
            project,
            name,
            value,
        } => {
            let key = required_key()?;
            let value = secret_value(value.as_deref())?;
            ctx.store.set_secret(&key, project, name, &value).await?;
            println!("secret {name} set for project {project}");
        }
        SecretsCommand::List { project } => {
            for (name, updated) in ctx.store.secret_names(project, None, i64::MAX).await? {
                println!("{name}\t(updated {})", format_time(updated, "UTC"));
            }
        }
        SecretsCommand::Delete { project, name } => {
            if !ctx.store.delete_secret(project, name).await? {
                bail!("project {project} has no secret {name}");
            }
            println!("secret {name} deleted from project {project}");
        }
    }
    Ok(())
}

/// A secret's value: the argument, or else stdin (so it stays out of the
/// shell's history).
pub fn secret_value(given: Option<&str>) -> Result<String> {
    Ok(match given {
        Some(v) => v.to_string(),
        None => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
    })
}

pub async fn schedule(ctx: &Ctx, command: &ScheduleCommand) -> Result<()> {
    let store = &ctx.store;
    match command {
        ScheduleCommand::List => {
            let all = store.schedules(None).await?;
            output::print_schedules(&views(all));
        }
        ScheduleCommand::Enable { project, workflow } => {
            sluice_server::set_schedule_enabled(store, project, workflow, true).await?;
            println!("{project}/{workflow} enabled");
        }
        ScheduleCommand::Disable { project, workflow } => {
            sluice_server::set_schedule_enabled(store, project, workflow, false).await?;
            println!("{project}/{workflow} disabled");
        }
        ScheduleCommand::Backfill {
            project,
            workflow,
            from,
            to,
        } => {
            let (_, _, spec) = sluice_server::schedule_of(store, project, workflow).await?;
            let done = sluice_server::backfill(store, project, workflow, from, to).await?;
            for (id, time) in &done.started {
                println!("attempt {id} for {}", format_time(*time, &spec.timezone));
            }
            println!(
                "backfill: {} sessions started, {} had run already",
                done.started.len(),
                done.existed
            );
        }
        ScheduleCommand::Skip {
            project,
            workflow,
            until,
        } => {
            let (_, _, spec) = sluice_server::schedule_of(store, project, workflow).await?;
            let next = sluice_server::skip_schedule(store, project, workflow, until).await?;
            println!(
                "{project}/{workflow}: next run {}",
                format_time(next, &spec.timezone)
            );
        }
    }
    Ok(())
}

pub async fn server(ctx: &Ctx, args: &ServerArgs) -> Result<()> {
    let roles: Vec<String> = args.roles.iter().map(|r| r.trim().to_lowercase()).collect();
    for role in &roles {
        if !["api", "scheduler", "worker"].contains(&role.as_str()) {
            bail!("--roles: unknown role {role:?} (api, scheduler, worker)");
        }
    }
    let shutdown = shutdown_signal();
    let secs = Duration::from_secs_f64;
    let mut tasks = tokio::task::JoinSet::new();
    if roles.iter().any(|r| r == "worker") {
        let worker = Worker::new(
            ctx.store.clone().with_max_running(args.max_running),
            ctx.executor(args.allow_sh),
            WorkerConfig {
                id: worker_id(),
                slots: args.slots,
                lease_ttl: secs(args.lease_seconds),
                poll: secs(args.poll_seconds),
                grace: secs(args.grace_seconds),
                max_lease_expiries: args.max_lease_expiries,
                only_attempt: None,
                local_root: None,
                work_dir: args
                    .work_dir
                    .clone()
                    .unwrap_or_else(|| ctx.state_dir.join("work")),
                log_dir: Some(
                    args.log_dir
                        .clone()
                        .unwrap_or_else(|| ctx.state_dir.join("logs")),
                ),
                log_sink: log_sink(args.log_url.as_deref())?,
                secret_key: secret_key()?,
                roles: roles.join(","),
            },
        );
        let rx = shutdown.clone();
        tasks.spawn(async move {
            worker
                .run(rx)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        });
    }
    if roles.iter().any(|r| r == "scheduler") {
        let scheduler = Scheduler::new(ctx.store.clone(), secs(args.scheduler_tick_seconds));
        let rx = shutdown.clone();
        tasks.spawn(async move { scheduler.run(rx).await.map_err(anyhow::Error::from) });
        if let Some(days) = args.retention_days {
            let (store, rx) = (ctx.store.clone(), shutdown.clone());
            let keep = secs(days.max(0.0) * 86_400.0);
            tasks.spawn(async move {
                sluice_server::enforce_retention(store, keep, Duration::from_secs(3600), rx).await;
                Ok(())
            });
        }
        if args.queue_metrics.is_some() {
            let (store, rx) = (ctx.store.clone(), shutdown.clone());
            let every = secs(args.queue_metrics_seconds.max(1.0));
            let cluster = args.cluster.clone();
            tasks.spawn(async move {
                sluice_server::publish_emf(store, every, cluster, rx).await;
                Ok(())
            });
        }
    }
    if roles.iter().any(|r| r == "api") {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("--listen {}", args.listen))?;
        crate::admin::bootstrap_admin(&ctx.store).await?;
        let config = sluice_api::ApiConfig {
            anonymous: args.anonymous_role,
            session_ttl: secs(args.session_hours * 3600.0),
            secure_cookies: args.cookie_secure,
            metrics_public: args.metrics_public,
        };
        let state = sluice_api::ApiState::new(ctx.store.clone(), config, secret_key()?)
            .with_plugins(plugin_lister(ctx));
        state.warm_plugins();
        let rx = shutdown.clone();
        tracing::info!(listen = %args.listen, "api listening");
        tasks.spawn(async move {
            sluice_api::serve(listener, state, rx)
                .await
                .context("the api role stopped")
        });
    }
    tracing::info!(roles = %roles.join(","), store = %ctx.store.location(), "server started");
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// What `GET /api/plugins` lists: each plugin file in the plugin
/// directories, loaded (from the compiled cache when it is there).
fn plugin_lister(ctx: &Ctx) -> sluice_api::PluginLister {
    let (runtime, dirs) = (ctx.runtime.clone(), ctx.plugins.clone());
    Arc::new(move || {
        let mut files = dirs.all_files();
        files.sort();
        files
            .into_iter()
            .map(|file| {
                let mut view = sluice_api::PluginView {
                    file: file.display().to_string(),
                    name: None,
                    version: None,
                    kind: None,
                    description: None,
                    capabilities: Vec::new(),
                    wit_version: None,
                    config_schema: None,
                    error: None,
                };
                match runtime.load(&file) {
                    Ok(plugin) => {
                        let info = plugin.info();
                        view.name = Some(info.name.clone());
                        view.version = Some(info.version.clone());
                        view.kind = Some(info.kind.as_str().to_string());
                        view.description = Some(info.description.clone());
                        view.capabilities = info.capabilities.clone();
                        view.wit_version = Some(plugin.wit_version().to_string());
                        view.config_schema = Some(info.config_schema.clone());
                    }
                    Err(e) => view.error = Some(e.to_string()),
                }
                view
            })
            .collect()
    })
}

/// Listings.
pub async fn attempts(
    ctx: &Ctx,
    project: Option<&str>,
    workflow: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<()> {
    // One more than asked says whether there is a next page, as in the API.
    let list = ctx
        .store
        .attempts(project, workflow, None, before, limit.saturating_add(1))
        .await?;
    let page = Page::from_fetched(views(list), limit, |a: &AttemptView| a.id.to_string());
    output::print_attempts(&page.items, page.next_cursor.as_deref());
    Ok(())
}

/// Store records as the API serves them, for the printers both share.
fn views<R, V: From<R>>(records: Vec<R>) -> Vec<V> {
    records.into_iter().map(V::from).collect()
}

pub async fn tasks(ctx: &Ctx, attempt: i64) -> Result<()> {
    let a = ctx.store.attempt(attempt).await?;
    let tasks = ctx.store.tasks(attempt).await?;
    output::print_tasks(&views(tasks));
    output::print_attempt_status(&a.into());
    Ok(())
}

pub async fn kill(ctx: &Ctx, attempt: i64) -> Result<()> {
    if ctx.store.kill_attempt(attempt).await? {
        println!("attempt {attempt}: kill requested; running tasks stop at their next heartbeat");
    } else {
        println!("attempt {attempt} is not running");
    }
    Ok(())
}
