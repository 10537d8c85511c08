//! A fleet for one test: its own database, `sluice server` processes
//! started and signalled, the CLI run against it, SQL on its store.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{pg, pg_url};
use crate::support::*;

pub(crate) const KEY: &str = "8f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";

pub(crate) struct Fleet {
    pub(crate) s: Scratch,
    pub(crate) url: String,
    pub(crate) workers: Vec<Child>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

pub(crate) fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Fleet {
    pub(crate) fn new(name: &str) -> Fleet {
        let db = format!("sluice_fleet_{name}");
        pg(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        pg(&format!("CREATE DATABASE {db}"));
        let base = pg_url();
        let url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
        Fleet {
            s: Scratch::new(),
            url,
            workers: Vec::new(),
        }
    }

    /// A fleet whose store is the database at `url` (made by the caller).
    pub(crate) fn on(url: String) -> Fleet {
        Fleet {
            s: Scratch::new(),
            url,
            workers: Vec::new(),
        }
    }

    pub(crate) fn env(&self) -> Vec<(&str, String)> {
        vec![
            ("SLUICE_DATABASE_URL", self.url.clone()),
            ("SLUICE_SECRET_KEY", KEY.to_string()),
            ("APP_DB_URL", pg_url()),
        ]
    }

    pub(crate) fn sluice(&self, args: &[&str]) -> Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.s.sluice_env(args, &env)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.sluice(args);
        assert!(
            out.status.success(),
            "sluice {args:?}:\n{}",
            output_text(&out)
        );
        output_text(&out)
    }

    /// A new API token with this role: what `sluice admin token create`
    /// prints on stdout (its notice goes to stderr).
    pub(crate) fn token(&self, role: &str, name: &str) -> String {
        let created = self.sluice(&["admin", "token", "create", "--role", role, "--name", name]);
        assert!(created.status.success(), "{}", output_text(&created));
        let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
        assert!(token.starts_with("sluice_"), "{token}");
        token
    }

    /// Start `sluice server` with these roles and flags; returns its index.
    pub(crate) fn server(&mut self, roles: &str, extra: &[&str]) -> usize {
        self.server_env(roles, extra, &[])
    }

    /// [`Fleet::server`] with extra environment variables.
    pub(crate) fn server_env(
        &mut self,
        roles: &str,
        extra: &[&str],
        more_env: &[(&str, &str)],
    ) -> usize {
        let mut args = vec![
            "server",
            "--roles",
            roles,
            "--allow-sh",
            "--lease-seconds",
            "2",
            "--poll-seconds",
            "1",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let env = self.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(more_env);
        let log = std::fs::File::create(self.s.path(&format!("server-{}.log", self.workers.len())))
            .unwrap();
        let child = self
            .s
            .command(&args, &env)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push(child);
        self.workers.len() - 1
    }

    /// Start `sluice server` with every role on a port of its own, the
    /// first admin (`root`, `root-password-1`) from the environment; wait
    /// until it is ready and return the port.
    pub(crate) fn api_server(&mut self) -> u16 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = self.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([
            ("SLUICE_ADMIN_USER", "root"),
            ("SLUICE_ADMIN_PASSWORD", "root-password-1"),
        ]);
        let log = self.s.path(&format!("server-{}.log", self.workers.len()));
        let args = [
            "server",
            "--roles",
            "api,scheduler,worker",
            "--allow-sh",
            "--poll-seconds",
            "1",
            "--listen",
            &listen,
        ];
        let child = self
            .s
            .command(&args, &env)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        self.workers.push(child);
        let t0 = Instant::now();
        while http(port, "GET", "/readyz", &[], None).map_or(0, |r| r.status) != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "not ready:\n{}",
                self.server_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        port
    }

    pub(crate) fn value(&self, sql: &str) -> String {
        current_thread().block_on(async {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let row = sqlx::query(&format!("SELECT ({sql})::text"))
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            row.get::<Option<String>, _>(0).unwrap_or_default()
        })
    }

    pub(crate) fn exec(&self, sql: &str) {
        current_thread().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    pub(crate) fn number(&self, sql: &str) -> i64 {
        self.value(sql).parse().unwrap_or(0)
    }

    /// Wait for an attempt to end; returns its status.
    pub(crate) fn wait_attempt(&self, id: i64, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let status = self.value(&format!("SELECT status FROM attempts WHERE id = {id}"));
            if !status.is_empty() && status != "running" {
                return status;
            }
            if started.elapsed() > limit {
                panic!(
                    "attempt {id} still {status:?} after {limit:?}; tasks:\n{}\nservers:\n{}",
                    output_text(&self.sluice(&["tasks", &id.to_string()])),
                    self.server_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn server_logs(&self) -> String {
        (0..self.workers.len())
            .map(|i| {
                std::fs::read_to_string(self.s.path(&format!("server-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    pub(crate) fn signal(&self, index: usize, signal: &str) {
        let pid = self.workers[index].id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
