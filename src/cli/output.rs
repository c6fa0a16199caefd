//! What the command line writes: data on stdout (human or `--json`), diagnostics and logs on
//! stderr, with any age secret key that reached them replaced.

/// clap's message for bad arguments, which quotes the offending value: a secret key pasted
/// into the wrong place is not repeated.
pub(super) fn print_parse_error(e: &clap::Error) {
    let text = e.render().to_string();
    if !invoice_vault::secret::holds_secret_key(&text) {
        let _ = e.print();
        return;
    }
    let text = invoice_vault::secret::redact(&text);
    if e.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

pub(super) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// Log lines go to stderr (the system journal, under a service manager) with any secret key
/// in them replaced; the formatter hands over each event in one write.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(invoice_vault::secret::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("ivault: cannot encode JSON: {e}"),
    }
}
