//! monero-operator: `run` the controllers, print the `crd`s, or `render` what
//! would be applied for the custom resources in a file.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use monero_reconciler::build::{Context, Images};

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
    /// Seconds between status refreshes of a set with replicas.
    #[arg(long, env = "MONERO_OPERATOR_STATUS_INTERVAL", default_value_t = 30)]
    status_interval: u64,
    /// Log format.
    #[arg(long, env = "MONERO_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    fn context(&self) -> Context {
        let mut ctx = Context::new(Images {
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
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(run::run(args)),
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
