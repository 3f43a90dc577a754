//! monero-operator: `run` the controllers, print the `crd`s, or `render` what
//! would be applied for the custom resources in a file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use monero_reconciler::build::{Context, Images, MonerodVersion};

mod run;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch MoneroNodeSets, MoneroNetworks and MoneroMiningNodeSets and
    /// reconcile them (uses the in-cluster config or KUBECONFIG).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Print, as a YAML stream, every object the operator would apply for the
    /// custom resources in FILE (Secrets and MoneroNodeSets in the file stand
    /// in for the cluster's). No cluster is contacted.
    Render {
        /// YAML file with MoneroNodeSet, MoneroNetwork or MoneroMiningNodeSet
        /// objects; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Also print each set's identities Secret with fresh Tor and I2P keys
        /// (as the operator makes it on first reconcile), so the rendered pods
        /// can run without a cluster. Different keys every run.
        #[arg(long)]
        identities: bool,
        #[command(flatten)]
        defaults: Defaults,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    defaults: Defaults,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "MONERO_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Run without leader election (only with a single replica).
    #[arg(long, env = "MONERO_OPERATOR_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "MONERO_OPERATOR_LEASE_NAME",
        default_value = "monero-operator"
    )]
    lease_name: String,
    /// Namespace of the Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "monero-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "monero-operator")]
    identity: String,
    /// Seconds the Lease lasts without renewal: how long another replica waits
    /// before it takes over from a leader that died.
    #[arg(long, env = "MONERO_OPERATOR_LEASE_DURATION", default_value_t = 15, value_parser = seconds())]
    lease_duration: u64,
    /// Seconds the leader goes on reconciling without a successful renewal
    /// before it stops and exits; shorter than --lease-duration, so it stops
    /// before another replica may take over.
    #[arg(long, env = "MONERO_OPERATOR_RENEW_DEADLINE", default_value_t = 10, value_parser = seconds())]
    renew_deadline: u64,
    /// Seconds between tries to renew or take the Lease; shorter than
    /// --renew-deadline, so a failed try is retried before it ends.
    #[arg(long, env = "MONERO_OPERATOR_RETRY_PERIOD", default_value_t = 2, value_parser = seconds())]
    retry_period: u64,
    /// Seconds between status refreshes of a set with replicas.
    #[arg(long, env = "MONERO_OPERATOR_STATUS_INTERVAL", default_value_t = 30)]
    status_interval: u64,
    /// Log format.
    #[arg(long, env = "MONERO_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The Lease's `leaseDurationSeconds` is an int32.
const MAX_SECONDS: u64 = 2_147_483_647;

/// At least one second: zero would renew in a busy loop, or never.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=MAX_SECONDS)
}

/// The timing of leader election, as client-go's leaderelection has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Election {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl RunArgs {
    /// Refuses timings under which a leader that cannot reach the API server
    /// could still be reconciling when another replica takes the Lease over.
    fn election(&self) -> Result<Election> {
        if self.renew_deadline >= self.lease_duration {
            bail!(
                "--renew-deadline ({}s) must be shorter than --lease-duration ({}s): a leader \
                 that cannot renew must stop before another replica may take the Lease",
                self.renew_deadline,
                self.lease_duration
            );
        }
        if self.retry_period >= self.renew_deadline {
            bail!(
                "--retry-period ({}s) must be shorter than --renew-deadline ({}s): the leader \
                 must get to retry a failed renewal before the deadline",
                self.retry_period,
                self.renew_deadline
            );
        }
        Ok(Election {
            lease_duration: Duration::from_secs(self.lease_duration),
            renew_deadline: Duration::from_secs(self.renew_deadline),
            retry_period: Duration::from_secs(self.retry_period),
        })
    }
}

/// A monerod release as `--monerod-version` takes it, normalised (0.18.4 → 0.18.4.0).
fn monerod_version(s: &str) -> Result<String, String> {
    MonerodVersion::parse(s)
        .map(|v| v.to_string())
        .ok_or_else(|| format!("{s:?} is not a monerod version such as 0.18.4.0"))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// What every resource gets unless it says otherwise.
#[derive(Args, Debug, Clone)]
struct Defaults {
    /// Default monerod image.
    #[arg(long, env = "MONERO_OPERATOR_MONEROD_IMAGE", default_value_t = Images::default().monerod)]
    monerod_image: String,
    /// The monerod release the default monerod image runs, which decides the
    /// flags its pods get. Defaults to the release of the operator's own image
    /// when --monerod-image is left at its default, else to the image's tag
    /// when that names a version (unknown otherwise: only flags every release
    /// since 0.17.2 accepts).
    #[arg(long, env = "MONERO_OPERATOR_MONEROD_VERSION", value_parser = monerod_version)]
    monerod_version: Option<String>,
    /// Default monero-exporter image.
    #[arg(long, env = "MONERO_OPERATOR_EXPORTER_IMAGE", default_value_t = Images::default().exporter)]
    exporter_image: String,
    /// Default xmrig image.
    #[arg(long, env = "MONERO_OPERATOR_XMRIG_IMAGE", default_value_t = Images::default().xmrig)]
    xmrig_image: String,
    /// Image of the podconfig init container (monero-anon), for Tor and I2P.
    #[arg(long, env = "MONERO_OPERATOR_PODCONFIG_IMAGE", default_value_t = Images::default().podconfig)]
    podconfig_image: String,
    /// Default tor image.
    #[arg(long, env = "MONERO_OPERATOR_TOR_IMAGE", default_value_t = Images::default().tor)]
    tor_image: String,
    /// Default i2pd image.
    #[arg(long, env = "MONERO_OPERATOR_I2PD_IMAGE", default_value_t = Images::default().i2pd)]
    i2pd_image: String,
    /// The cluster's DNS domain, for the fully qualified names of network peers.
    #[arg(
        long,
        env = "MONERO_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
}

impl Defaults {
    /// --monerod-version, else what the default image is known or tagged to run.
    fn monerod_version(&self) -> Option<String> {
        let builtin = Images::default();
        self.monerod_version.clone().or_else(|| {
            if self.monerod_image == builtin.monerod {
                builtin.monerod_version
            } else {
                MonerodVersion::from_image(&self.monerod_image).map(|v| v.to_string())
            }
        })
    }

    fn context(&self) -> Context {
        let mut ctx = Context::new(Images {
            monerod_version: self.monerod_version(),
            monerod: self.monerod_image.clone(),
            exporter: self.exporter_image.clone(),
            xmrig: self.xmrig_image.clone(),
            podconfig: self.podconfig_image.clone(),
            tor: self.tor_image.clone(),
            i2pd: self.i2pd_image.clone(),
        });
        ctx.cluster_domain = self.cluster_domain.clone();
        ctx
    }
}

fn render(file: &PathBuf, identities: bool, defaults: &Defaults) -> Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let rendered = monero_reconciler::render::render_with(
        &text,
        &defaults.context(),
        monero_reconciler::render::Options { identities },
    )
    .with_context(|| {
        if file.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            file.display().to_string()
        }
    })?;
    print!("{}", monero_reconciler::render::to_yaml(&rendered)?);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => {
            // Checked before anything starts, so a bad flag is all the output.
            let election = args.election()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(run::run(args, election))
        }
        Command::Crd => {
            print!("{}", monero_crd::crds_yaml()?);
            Ok(())
        }
        Command::Render {
            file,
            identities,
            defaults,
        } => render(file, *identities, defaults),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election(flags: &[&str]) -> Result<Election> {
        let cli = Cli::try_parse_from(["monero-operator", "run"].iter().chain(flags))?;
        match cli.command {
            Command::Run(args) => args.election(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_election_defaults_are_client_gos() {
        assert_eq!(
            election(&[]).unwrap(),
            Election {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            }
        );
        assert_eq!(
            election(&[
                "--lease-duration",
                "6",
                "--renew-deadline",
                "3",
                "--retry-period",
                "1"
            ])
            .unwrap()
            .renew_deadline,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_renew_deadline_not_shorter_than_the_lease_is_refused_naming_both_flags() {
        for deadline in ["15", "20"] {
            let err = election(&["--renew-deadline", deadline])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("--renew-deadline ({deadline}s)"))
                    && err.contains("--lease-duration (15s)"),
                "{err}"
            );
        }
        let err = election(&["--lease-duration", "8"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--renew-deadline (10s) must be shorter than --lease-duration (8s)"),
            "{err}"
        );
    }

    #[test]
    fn a_retry_period_not_shorter_than_the_renew_deadline_is_refused_naming_both_flags() {
        let err = election(&["--retry-period", "10"]).unwrap_err().to_string();
        assert!(
            err.contains("--retry-period (10s) must be shorter than --renew-deadline (10s)"),
            "{err}"
        );
    }

    #[test]
    fn zero_or_out_of_range_seconds_are_refused_by_the_parser() {
        for (flag, value) in [
            ("--retry-period", "0"),
            ("--renew-deadline", "0"),
            ("--lease-duration", "0"),
            ("--lease-duration", "2147483648"),
            ("--retry-period", "2s"),
        ] {
            let err = election(&[flag, value]).unwrap_err().to_string();
            assert!(
                err.contains(flag) && err.contains(value),
                "{flag} {value}: {err}"
            );
        }
    }
}
