//! A real browser: headless Chromium from Debian's packages, driven over
//! the W3C WebDriver protocol by chromedriver (plain HTTP, so no client
//! crate). `cargo xtask test` installs both when they are missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{free_port, http};

/// A browser session; the browser and its driver stop when it drops.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Browser {
    /// Start chromedriver and a headless Chromium. Screenshots go to
    /// `shots` (kept as test artifacts).
    pub fn start(shots: PathBuf) -> Browser {
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .expect("chromedriver is not installed: `cargo xtask test` installs chromium-driver");
        let chromium = find(&["/usr/bin/chromium", "/usr/lib/chromium/chromium"])
            .expect("chromium is not installed: `cargo xtask test` installs it");
        std::fs::create_dir_all(&shots).unwrap();
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while http(port, "GET", "/status", &[], None).map_or(0, |r| r.status) != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1366,900", format!("--user-data-dir={}", profile.display())],
            },
            "unhandledPromptBehavior": "accept",
        }}});
        let reply = http(
            port,
            "POST",
            "/session",
            &[],
            Some(&capabilities.to_string()),
        )
        .unwrap();
        assert_eq!(reply.status, 200, "no WebDriver session: {}", reply.body);
        let session = reply.json()["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {}", reply.body))
            .to_string();
        Browser {
            driver,
            port,
            session,
            shots,
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command_on_live_element(method, path, body)
            .unwrap_or_else(|| panic!("WebDriver {method} {path}: the element went stale"))
    }

    /// A command on an element the page may re-render at any moment: `None`
    /// when the element is stale (the caller finds it again), a panic on any
    /// other error.
    fn command_on_live_element(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let path = format!("/session/{}{path}", self.session);
        let body = body.map(|b| b.to_string());
        let reply = http(self.port, method, &path, &[], body.as_deref()).unwrap();
        let value = reply.json()["value"].clone();
        if reply.status == 404 && value["error"] == "stale element reference" {
            return None;
        }
        assert!(
            reply.status == 200,
            "WebDriver {method} {path}: {} {value}",
            reply.status
        );
        Some(value)
    }

    pub fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})));
    }

    /// The element matching `css` once it is there and shown; panics after
    /// `wait`, with a screenshot.
    pub fn element(&self, css: &str, wait: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let path = format!("/session/{}/element", self.session);
            let body = json!({"using": "css selector", "value": css}).to_string();
            let reply = http(self.port, "POST", &path, &[], Some(&body)).unwrap();
            if reply.status == 200 {
                let value = reply.json()["value"].clone();
                let id = value
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_string();
                let displayed =
                    self.command_on_live_element("GET", &format!("/element/{id}/displayed"), None);
                if displayed == Some(json!(true)) {
                    return id;
                }
            }
            if t0.elapsed() > wait {
                self.screenshot("timeout");
                panic!(
                    "no visible {css} after {wait:?}; page text:\n{}",
                    self.text("body")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        self.on_element(css, "click", json!({}));
    }

    /// Sends `action` to the element matching `css`, finding it again when
    /// the page re-rendered it in between.
    fn on_element(&self, css: &str, action: &str, body: Value) {
        let t0 = Instant::now();
        loop {
            let id = self.element(css, Duration::from_secs(20));
            let path = format!("/element/{id}/{action}");
            if self
                .command_on_live_element("POST", &path, Some(body.clone()))
                .is_some()
            {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{css} kept going stale"
            );
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "value", json!({"text": text}));
    }

    pub fn text(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let body = json!({"using": "css selector", "value": css}).to_string();
        let reply = http(self.port, "POST", &path, &[], Some(&body)).unwrap();
        if reply.status != 200 {
            return String::new();
        }
        let Some(id) = reply.json()["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return String::new();
        };
        // A stale element reads as no text: `wait_text` asks again.
        self.command_on_live_element("GET", &format!("/element/{id}/text"), None)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Wait until the text of `css` satisfies `want`.
    pub fn wait_text(&self, css: &str, wait: Duration, want: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let text = self.text(css);
            if want(&text) {
                return text;
            }
            if t0.elapsed() > wait {
                self.screenshot("timeout");
                panic!(
                    "{css} is {text:?} after {wait:?}; page text:\n{}",
                    self.text("body")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The page's current URL.
    pub fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Save a PNG screenshot as `<name>.png`.
    pub fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let path = format!("/session/{}/screenshot", self.session);
        if let Ok(reply) = http(self.port, "GET", &path, &[], None)
            && let Some(data) = reply.json()["value"].as_str()
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(data)
        {
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
        }
    }
}
