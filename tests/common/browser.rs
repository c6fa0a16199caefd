//! The headless browser the HTML reports are tested in: Debian's `chromium-headless-shell`
//! (installed by scripts/test), or `chromium`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser, or `None` (the test then returns) only when IVAULT_SKIP_BROWSER=1 says a
/// machine without one may skip; otherwise a missing browser fails the test.
pub fn required() -> Option<PathBuf> {
    if let Some(b) = browser() {
        return Some(b);
    }
    if std::env::var("IVAULT_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("skipped: no headless Chromium and IVAULT_SKIP_BROWSER=1");
        return None;
    }
    panic!(
        "no headless browser found (chromium-headless-shell or chromium): run ./scripts/test, \
         which installs it, or set IVAULT_SKIP_BROWSER=1 to skip this test"
    );
}

/// The headless browser: Debian's `chromium-headless-shell`, or `chromium`.
pub fn browser() -> Option<PathBuf> {
    for name in ["chromium-headless-shell", "chromium"] {
        for dir in std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
        {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs the browser on `page` with `args`, returning stdout; gives up after two minutes.
pub fn run_browser(browser: &Path, profile: &Path, args: &[String], page: &Path) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} could not start: {e}", browser.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not finish within two minutes", browser.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        browser.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The opening tag and the text (tags stripped) of the element with `id`, from a DOM dump.
pub fn element<'a>(dom: &'a str, tag: &str, id: &str) -> (&'a str, String) {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let start = dom[..at].rfind('<').unwrap();
    let open_end = at + dom[at..].find('>').unwrap() + 1;
    let close = open_end + dom[open_end..].find(&format!("</{tag}>")).unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[open_end..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    (&dom[start..open_end], text)
}
