//! `duet-loadgen`: see `duet_loadgen` and docs/BENCHMARKS.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use duet_loadgen::{Options, Protocol, pattern::Trace, relay};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProtocolArg {
    Plain,
    V1,
}

/// Drives a Duet server with simulated typists and reports latency, throughput and whether
/// every client converged with no edit lost or doubled (exit status 1 when not).
#[derive(Parser, Debug)]
#[command(version, args_override_self = true)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// How many rooms.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Typists in each room.
    #[arg(long, default_value_t = 2)]
    clients_per_room: usize,
    /// Edits per second per typist.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The protocol the typists speak.
    #[arg(long, value_enum, default_value = "v1")]
    protocol: ProtocolArg,
    /// Replay this editing trace (editing-traces JSON, plain or gzipped) instead of typing.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Also run the same load against a bare relay started in this process.
    #[arg(long)]
    baseline: bool,
    /// duet.v1: one frame per message (do not ask for batched frames).
    #[arg(long)]
    no_batch: bool,
    /// Join this existing room instead of creating rooms (`--rooms` is then ignored).
    #[arg(long)]
    room: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(passed) => {
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("duet-loadgen: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> Result<bool, String> {
    let trace = match &args.trace {
        Some(path) => Some(Arc::new(Trace::load(path)?)),
        None => None,
    };
    let options = Options {
        url: args.url.trim_end_matches('/').to_owned(),
        rooms: args.rooms.max(1),
        clients_per_room: args.clients_per_room.max(1),
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        protocol: match args.protocol {
            ProtocolArg::Plain => Protocol::Plain,
            ProtocolArg::V1 => Protocol::V1,
        },
        batch: !args.no_batch,
        room: args.room.clone(),
        create_rooms: true,
        trace,
        check_convergence: true,
        progress: !args.json,
    };
    let report = duet_loadgen::run(&options).await?;
    let baseline = if args.baseline {
        let relay = relay::start().await?;
        let relay_options = Options {
            url: relay.url.clone(),
            check_convergence: false,
            create_rooms: false,
            ..options.clone()
        };
        Some(duet_loadgen::run(&relay_options).await?)
    } else {
        None
    };
    if args.json {
        let mut json = report.json();
        if let Some(baseline) = &baseline {
            json["baseline"] = baseline.json();
            json["ratio_to_baseline"] = serde_json::json!({
                "deliveries_per_sec": report.deliveries_per_sec / baseline.deliveries_per_sec.max(f64::MIN_POSITIVE),
                "arrival_p99": report.arrival.p99 / baseline.arrival.p99.max(f64::MIN_POSITIVE),
            });
        }
        println!("{json}");
    } else {
        print!("{}", report.table("duet"));
        if let Some(baseline) = &baseline {
            print!("{}", baseline.table("baseline relay"));
            println!(
                "duet / baseline: deliveries/s {:.2} · arrival p99 {:.2}×",
                report.deliveries_per_sec / baseline.deliveries_per_sec.max(f64::MIN_POSITIVE),
                report.arrival.p99 / baseline.arrival.p99.max(f64::MIN_POSITIVE)
            );
        }
    }
    Ok(report.converged && report.lost_edits == 0 && report.doubled_edits == 0)
}
