//! `sluice plugin …`: what a connector author and an operator do with
//! plugins: scaffold, build, test, sign, publish, install, list.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use sluice_registry::{Lock, Locked, Registry, Release, SecretKey, Trust, parse_spec};
use sluice_runtime::{Runtime, wit_compatible};

use crate::output;

mod build;
mod embedded;
mod js;
mod new;
mod python;
mod tools;

/// `sluice plugin …`
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Plugins found in the plugin directories and in sluice.lock.
    List,
    /// Start a plugin crate: a working example, a unit test, a README.
    New {
        /// The plugin's name (lowercase letters, digits, '-', '_').
        name: String,
        /// What it is.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// The sluice-sdk to depend on: a path to its source, or a version
        /// (Rust only; Python and JavaScript plugins build with the SDK
        /// inside sluice).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Build a plugin to a wasm component: a Rust crate (Cargo.toml), a
    /// Python project (pyproject.toml with [tool.sluice]), or a JavaScript
    /// or TypeScript project (package.json with "sluice").
    Build {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to put the component (default: DIR/target/sluice/NAME.wasm).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the conformance suite on a built plugin.
    Test {
        /// The component.
        file: PathBuf,
        /// A config that works (JSON), for the checks that read or write data.
        #[arg(long)]
        config: Option<String>,
        /// A directory to grant as `blob` (a sink gets a scratch one otherwise).
        #[arg(long)]
        blob_dir: Option<PathBuf>,
        /// Seconds any one call into the plugin may take, waiting included.
        #[arg(long, default_value_t = 60.0)]
        call_timeout: f64,
    },
    /// Make a key pair for signing releases; prints the public key.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Publish a built plugin to a registry (a directory, s3:// or gs:// prefix).
    Publish {
        /// The component.
        file: PathBuf,
        /// The registry.
        #[arg(long, env = "SLUICE_REGISTRY")]
        registry: String,
        /// The secret key to sign with (see `sluice plugin keygen`).
        #[arg(long, env = "SLUICE_SIGNING_KEY_FILE")]
        key: Option<PathBuf>,
        /// Publish without a signature (installs then need --allow-unsigned).
        #[arg(long, conflicts_with = "key")]
        unsigned: bool,
    },
    /// Install plugins (`name@^0.2`) and pin them in sluice.lock; with no
    /// names, bring back exactly what sluice.lock lists.
    Install {
        /// What to install: `name` or `name@requirement`; every kind
        /// published under the name (a `file` source and sink) unless --kind.
        specs: Vec<String>,
        /// Only this kind.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// The registry (a directory, http(s)://, s3:// or gs://).
        #[arg(long, env = "SLUICE_REGISTRY")]
        registry: Option<String>,
        /// Public keys whose signatures are trusted (`ed25519:…`).
        #[arg(
            long = "trusted-key",
            env = "SLUICE_TRUSTED_KEYS",
            value_delimiter = ','
        )]
        trusted_keys: Vec<String>,
        /// Accept plugins that carry no signature.
        #[arg(long)]
        allow_unsigned: bool,
        /// The lockfile (default: the nearest sluice.lock, else ./sluice.lock).
        #[arg(long)]
        lock: Option<PathBuf>,
    },
}

/// A plugin's kind, as `plugin new` takes it.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Reads streams.
    Source,
    /// Transforms batches.
    Filter,
    /// Writes streams.
    Sink,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Filter => "filter",
            Kind::Sink => "sink",
        }
    }
}

/// A language plugins are written in.
#[derive(Clone, Copy, ValueEnum)]
pub enum Lang {
    /// A crate using sluice-sdk.
    Rust,
    /// A module using the `sluice` Python package, built with componentize-py.
    Python,
    /// A TypeScript module using `@sluice/sdk`, bundled by rolldown and built
    /// with componentize-js (plain JavaScript works the same way).
    #[value(alias = "ts", alias = "typescript", alias = "javascript")]
    Js,
}

/// Run one `sluice plugin` command.
pub fn run(
    command: &PluginCommand,
    runtime: &dyn Fn() -> Result<Runtime>,
    dirs: &sluice_pipeline::PluginDirs,
) -> Result<()> {
    match command {
        PluginCommand::List => list(&runtime()?, dirs),
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
            sdk,
        } => new::new(name, *kind, *lang, dir.as_deref(), sdk.as_deref()),
        PluginCommand::Build { dir, out } => build::build(&runtime()?, dir, out.as_deref()),
        PluginCommand::Test {
            file,
            config,
            blob_dir,
            call_timeout,
        } => {
            let limits = sluice_runtime::Limits {
                call_timeout: std::time::Duration::from_secs_f64(call_timeout.max(0.01)),
                timeout_setting: "--call-timeout",
                ..sluice_runtime::Limits::default()
            };
            test(
                &runtime()?,
                file,
                config.as_deref(),
                blob_dir.clone(),
                limits,
            )
        }
        PluginCommand::Keygen { out } => keygen(out),
        PluginCommand::Publish {
            file,
            registry,
            key,
            unsigned,
        } => publish(&runtime()?, file, registry, key.as_deref(), *unsigned),
        PluginCommand::Install {
            specs,
            kind,
            registry,
            trusted_keys,
            allow_unsigned,
            lock,
        } => {
            let trust = Trust {
                keys: trusted_keys
                    .iter()
                    .map(|k| Trust::parse_keys(k))
                    .collect::<sluice_registry::Result<Vec<_>>>()
                    .context("--trusted-key / SLUICE_TRUSTED_KEYS")?
                    .into_iter()
                    .flatten()
                    .collect(),
                allow_unsigned: *allow_unsigned,
            };
            install(
                &runtime()?,
                specs,
                *kind,
                registry.as_deref(),
                &trust,
                lock.as_deref(),
            )
        }
    }
}

fn list(runtime: &Runtime, dirs: &sluice_pipeline::PluginDirs) -> Result<()> {
    let files = dirs.all_files();
    if let Some(lock_path) = Lock::find(Path::new(".")) {
        let lock = Lock::read(&lock_path)?;
        let dir = lock_path.parent().unwrap_or(Path::new("."));
        for locked in &lock.plugins {
            println!(
                "{:<8} {:<16} {:<10} locked in {} ({})",
                locked.kind,
                locked.name,
                locked.version,
                lock_path.display(),
                if locked.path(dir).is_file() {
                    "installed"
                } else {
                    "not installed: run `sluice plugin install`"
                }
            );
        }
    } else if files.is_empty() {
        println!("no plugins in {:?}", dirs.0);
    }
    for file in files {
        match runtime.load(&file) {
            Ok(p) => output::print_plugin(&p),
            Err(e) => println!("{}: {e}", file.display()),
        }
    }
    Ok(())
}

fn test(
    runtime: &Runtime,
    file: &Path,
    config: Option<&str>,
    blob_dir: Option<PathBuf>,
    limits: sluice_runtime::Limits,
) -> Result<()> {
    let config = config
        .map(|c| {
            let text = match c.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).with_context(|| path.to_string())?,
                None => c.to_string(),
            };
            serde_json::from_str(&text).context("--config is not JSON")
        })
        .transpose()?;
    let report = sluice_conformance::run(
        runtime,
        file,
        &sluice_conformance::Options {
            config,
            blob_dir,
            limits,
        },
    );
    println!("{}", report.plugin);
    for check in &report.checks {
        let (mark, detail) = match &check.outcome {
            sluice_conformance::Outcome::Passed(d) => ("ok  ", d),
            sluice_conformance::Outcome::Failed(d) => ("FAIL", d),
            sluice_conformance::Outcome::Skipped(d) => ("skip", d),
        };
        println!("  {mark} {}: {detail}", check.name);
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, sluice_conformance::Outcome::Failed(_)))
        .count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", report.checks.len());
    }
    let skipped = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, sluice_conformance::Outcome::Skipped(_)))
        .count();
    println!(
        "{} checks passed, {skipped} skipped",
        report.checks.len() - skipped
    );
    Ok(())
}

fn keygen(out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{} exists: not overwriting a key", out.display());
    }
    let key = SecretKey::generate()?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    write_private(out, &format!("{}\n", key.to_text()))?;
    println!("{}", key.public());
    eprintln!(
        "secret key in {}: keep it out of repositories; give the line above to those who install",
        out.display()
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| path.display().to_string())?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn publish(
    runtime: &Runtime,
    file: &Path,
    registry: &str,
    key: Option<&Path>,
    unsigned: bool,
) -> Result<()> {
    let key = match (key, unsigned) {
        (Some(path), _) => Some(
            SecretKey::parse(
                &std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
            )
            .with_context(|| path.display().to_string())?,
        ),
        (None, true) => None,
        (None, false) => bail!(
            "sign the release with --key FILE (make one with `sluice plugin keygen`), or say --unsigned"
        ),
    };
    let plugin = runtime.load(file)?;
    let info = plugin.info();
    let version = semver::Version::parse(&info.version).with_context(|| {
        format!(
            "plugin {} says its version is {:?}, which is not semver",
            info.name, info.version
        )
    })?;
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    let registry = Registry::parse(registry)?;
    let release = Release {
        version,
        kind: info.kind.as_str().into(),
        wit: plugin.wit_version().into(),
        description: info.description.clone(),
        sha256: String::new(),
        size: 0,
        artifact: String::new(),
        signature: None,
        published_at: String::new(),
    };
    let release = async_runtime()?.block_on(registry.publish(
        &info.name,
        release,
        bytes,
        key.as_ref(),
        &now(),
    ))?;
    println!(
        "published {} {} ({}, sluice:plugin@{}) to {}: sha256 {}{}",
        info.name,
        release.version,
        release.kind,
        release.wit,
        registry.url(),
        release.sha256,
        match &release.signature {
            Some(s) => format!(", signed by {}", s.key),
            None => ", unsigned".into(),
        }
    );
    Ok(())
}

/// A plugin downloaded, checked and compiled, not yet in place.
struct Staged {
    locked: Locked,
    temp: PathBuf,
    path: PathBuf,
}

/// Removes what was staged but not put in place: a failed install leaves
/// nothing behind.
impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

fn install(
    runtime: &Runtime,
    specs: &[String],
    kind: Option<Kind>,
    registry: Option<&str>,
    trust: &Trust,
    lock_path: Option<&Path>,
) -> Result<()> {
    let lock_path = match lock_path {
        Some(p) => p.to_path_buf(),
        None => {
            Lock::find(Path::new(".")).unwrap_or_else(|| PathBuf::from(sluice_registry::LOCK_FILE))
        }
    };
    let mut lock = if lock_path.is_file() {
        Lock::read(&lock_path)?
    } else {
        Lock::default()
    };
    let lock_dir = lock_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let rt = async_runtime()?;
    let mut staged = Vec::new();
    if specs.is_empty() {
        if lock.plugins.is_empty() {
            bail!(
                "nothing to install: name plugins (`sluice plugin install name@^0.1 --registry …`), \
                 or run where a sluice.lock lists some"
            );
        }
        // Exactly what the lock lists: its digests are the trust here.
        for locked in &lock.plugins {
            let path = locked.path(&lock_dir);
            if std::fs::read(&path)
                .map(|b| sluice_registry::sha256_hex(&b) == locked.sha256)
                .unwrap_or(false)
            {
                println!("{} {} is installed", locked.name, locked.version);
                continue;
            }
            let registry = Registry::parse(&locked.registry)?;
            let bytes = rt.block_on(async {
                let exact = semver::VersionReq::parse(&format!("={}", locked.version))
                    .expect("an exact requirement parses");
                let release = registry
                    .resolve(&locked.name, &exact, Some(&locked.kind))
                    .await?
                    .remove(0);
                registry
                    .fetch_pinned(&locked.name, &release, &locked.sha256)
                    .await
            })?;
            staged.push(stage(runtime, locked.clone(), &bytes, &lock_dir)?);
        }
    } else {
        let registry = Registry::parse(registry.context(
            "which registry? give --registry (a directory, http(s)://…, s3://…, gs://…) or set SLUICE_REGISTRY",
        )?)?;
        for spec in specs {
            let (name, req) = parse_spec(spec)?;
            for release in rt.block_on(registry.resolve(&name, &req, kind.map(Kind::as_str)))? {
                if !wit_compatible(&release.wit) {
                    bail!(
                        "{name} {} was built against sluice:plugin@{}, but this sluice serves \
                     sluice:plugin@{}: pick a release built for it, or upgrade sluice",
                        release.version,
                        release.wit,
                        sluice_runtime::served_range()
                    );
                }
                let bytes = rt.block_on(registry.fetch(&name, &release, trust))?;
                let locked = Locked {
                    name: name.clone(),
                    kind: release.kind.clone(),
                    version: release.version.clone(),
                    sha256: release.sha256.clone(),
                    wit: release.wit.clone(),
                    registry: registry.url(),
                    signed_by: release.signature.as_ref().map(|s| s.key.clone()),
                };
                staged.push(stage(runtime, locked, &bytes, &lock_dir)?);
            }
        }
    }
    // Everything checked and compiled: now put it in place, then the lock.
    for s in &staged {
        std::fs::rename(&s.temp, &s.path)
            .with_context(|| format!("installing {}", s.path.display()))?;
    }
    for s in &staged {
        println!(
            "installed {} {} ({}, sluice:plugin@{}) sha256 {}",
            s.locked.name, s.locked.version, s.locked.kind, s.locked.wit, s.locked.sha256
        );
        lock.upsert(s.locked.clone());
    }
    lock.write(&lock_path)?;
    println!("pinned in {}", lock_path.display());
    Ok(())
}

/// Write `bytes` next to their final place and load them (which compiles
/// them into the cache and checks that they are the plugin the index
/// says); nothing is installed yet.
fn stage(runtime: &Runtime, locked: Locked, bytes: &[u8], lock_dir: &Path) -> Result<Staged> {
    let path = locked.path(lock_dir);
    let dir = path.parent().expect("a plugin path has a directory");
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let temp = dir.join(format!(
        ".{}-{}-{}.{}.wasm",
        locked.kind,
        locked.name,
        locked.version,
        std::process::id()
    ));
    std::fs::write(&temp, bytes).with_context(|| temp.display().to_string())?;
    let checked = runtime
        .load(&temp)
        .map_err(anyhow::Error::from)
        .and_then(|plugin| {
            let info = plugin.info();
            if info.name != locked.name
                || info.kind.as_str() != locked.kind
                || info.version != locked.version.to_string()
            {
                bail!(
                    "the registry lists it as {} {} ({}), but the plugin says it is {} {} ({})",
                    locked.name,
                    locked.version,
                    locked.kind,
                    info.name,
                    info.version,
                    info.kind.as_str()
                );
            }
            Ok(())
        });
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&temp);
        return Err(e.context(format!("{} {}", locked.name, locked.version)));
    }
    Ok(Staged { locked, temp, path })
}
