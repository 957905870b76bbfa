//! Headless Chromium driven over the Chrome DevTools Protocol, for tests of pages in a
//! real browser: open a URL, evaluate JavaScript in the live page (so a test sees what
//! changes without a reload), and take a screenshot.
//!
//! A few dozen lines over a WebSocket client rather than a browser-automation crate: a
//! test needs four protocol methods, and this keeps the build small. Every wait has a
//! deadline and fails saying what it waited for and what it last saw; the browser is
//! killed when the value is dropped.

#![allow(dead_code)] // the report test uses only `chromium`

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The browser: `HAWSER_CHROMIUM` if set, else the first of Debian's and other
/// distributions' names that runs. Panics, saying what to install, when there is none:
/// a browser test fails rather than skips.
pub fn chromium() -> String {
    if let Ok(binary) = std::env::var("HAWSER_CHROMIUM") {
        return binary;
    }
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.into();
        }
    }
    panic!(
        "this test drives a real browser and found none (tried chromium, chromium-browser, \
         google-chrome): install headless Chromium (Debian: `apt-get install chromium`; \
         .ci/run does this), or set HAWSER_CHROMIUM to a Chromium or Chrome binary"
    );
}

/// One headless Chromium with one page, and the DevTools connection to that page.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start Chromium (its stderr to `log`) and connect to its first page, within 30 s.
    /// Panics, saying what to install, when there is no Chromium.
    pub fn launch(log: &Path) -> Browser {
        let binary = chromium();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {binary}: {e}"));
        let ws = connect_to_page(&mut child, profile.path(), log);
        Browser {
            child,
            ws,
            next_id: 0,
            log: log.to_owned(),
            _profile: profile,
        }
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Call a DevTools method and return its result; a protocol error fails the test.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.request(method, params)
            .unwrap_or_else(|error| panic!("DevTools {method} failed: {error}"))
    }

    /// Call a DevTools method: its result, or the protocol's error (within 30 s).
    fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(request.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let answer: Value = serde_json::from_str(text.as_str()).unwrap();
                    // Events (no id) and answers to other calls are not ours.
                    if answer["id"] != id {
                        continue;
                    }
                    return match answer.get("error") {
                        Some(error) => Err(error.clone()),
                        None => Ok(answer["result"].clone()),
                    };
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("DevTools {method}: {e}\n{}", self.log_tail()),
            }
            if Instant::now() > deadline {
                panic!(
                    "DevTools {method}: no answer within 30 s\n{}",
                    self.log_tail()
                );
            }
        }
    }

    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = result.get("errorText") {
            panic!("could not open {url}: {error}");
        }
    }

    /// Evaluate `expression` in the page (awaiting a promise) and return its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("evaluating {expression:?} in the page failed: {e}"))
    }

    /// Evaluate `expression`: its value, or why there is none (it threw, or the page was
    /// between documents).
    fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self.request(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        match result.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Evaluate `expression` every 100 ms until it gives something other than
    /// `null`/`false`, for at most `secs` seconds; fails with its last value (an error
    /// counts as "not yet": the page may still be loading).
    pub fn wait_for(&mut self, what: &str, secs: u64, expression: &str) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            last = match self.try_eval(expression) {
                Ok(Value::Null | Value::Bool(false)) => last,
                Ok(v) => return v,
                Err(e) => json!({ "error": e }),
            };
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for the page to show {what} \
                     ({expression}; last {last})\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the whole page (`width` wide, as tall as the document).
    pub fn screenshot(&mut self, width: u32) -> Vec<u8> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .ceil();
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }
}

/// The DevTools port (from the profile's `DevToolsActivePort`), then the first page
/// target's WebSocket.
fn connect_to_page(child: &mut Child, profile: &Path, log: &Path) -> WebSocket<TcpStream> {
    let port_file = profile.join("DevToolsActivePort");
    let port = wait_while_running(child, log, "Chromium to open its DevTools port", || {
        let text = std::fs::read_to_string(&port_file).ok()?;
        text.lines().next()?.trim().parse::<u16>().ok()
    });
    let debugger = format!("127.0.0.1:{port}");
    let page = wait_while_running(child, log, "Chromium's first page target", || {
        let (status, body) = crate::common::get(&debugger, "/json/list")?;
        let targets: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
        targets.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
            .as_str()
            .map(str::to_owned)
    });
    let stream = TcpStream::connect(&debugger).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (ws, _) = tungstenite::client(page.as_str(), stream)
        .unwrap_or_else(|e| panic!("DevTools WebSocket {page}: {e}"));
    // From here reads wake up twice a second, so a call's deadline is checked even when
    // the browser says nothing.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    ws
}

/// Poll `probe` every 100 ms for 30 s, failing with the browser's log if it exits or
/// the time runs out.
fn wait_while_running<T>(
    child: &mut Child,
    log: &Path,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "Chromium exited ({status}) while waiting for {what}\n{}",
                log_tail(log)
            );
        }
        if Instant::now() > deadline {
            panic!("timed out after 30 s waiting for {what}\n{}", log_tail(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- Chromium's log ({}):\n{}",
        log.display(),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
