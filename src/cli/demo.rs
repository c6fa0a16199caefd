//! `ivault demo`: the whole job on a sample database, and the generator tools behind it.

use super::exit;
use clap::{Args, Subcommand};
use invoice_vault::engine::demo::{self, mib};
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct DemoArgs {
    #[command(subcommand)]
    tool: Option<DemoTool>,
    /// Where the demo puts its database, key, repository and state.
    #[arg(long, default_value = "ivault-demo")]
    dir: PathBuf,
    /// Size of the sample database in MiB.
    #[arg(long, default_value_t = 64)]
    size_mb: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum DemoTool {
    /// Generate a sample invoice database.
    Generate {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        size_mb: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// wal or delete (rollback journal).
        #[arg(long, default_value = "wal")]
        journal: String,
    },
    /// Apply a day of business (1% of invoices updated, 0.3% added) to a database.
    Business {
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        #[arg(long, default_value_t = 43)]
        seed: u64,
    },
}

pub(super) fn demo_cmd(args: DemoArgs) -> Result<i32> {
    match args.tool {
        None => {
            let opts = demo::DemoOptions {
                dir: args.dir,
                size_mb: args.size_mb,
                seed: args.seed,
            };
            demo::run(&opts, &mut std::io::stdout())?;
        }
        Some(DemoTool::Generate {
            out,
            size_mb,
            seed,
            journal,
        }) => {
            let s = demo::generate_sample(&out, size_mb, seed, &journal)?;
            println!(
                "{}: {} invoices, {} lines, {} uploads, {}",
                out.display(),
                s.invoices,
                s.items,
                s.uploads,
                mib(s.bytes)
            );
        }
        Some(DemoTool::Business { db, seed }) => {
            let s = demo::business_day(&db, seed)?;
            println!(
                "{}: {} invoices updated, {} added",
                db.display(),
                s.updated,
                s.added
            );
        }
    }
    Ok(exit::OK)
}
