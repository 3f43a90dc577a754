//! Which monerod a pod runs, and what that release's command line accepts.
//!
//! monerod refuses a flag it does not know and exits, so a flag rendered for
//! the wrong release is a crash loop. Each release since the proposal's 0.17.2
//! differs: 0.17.2 has no `--proxy`; 0.18.4 added RPC connection limits
//! (CVE-2025-26819); 0.18.5 refuses a ZMQ RPC bind beyond loopback unless
//! `--confirm-zmq-rpc-external-bind` is given, a flag 0.18.4 does not know.
//! These were read off the real daemons' `--help` and start-up (Debian's
//! bullseye, bookworm, trixie and sid packages), and the version tests run each
//! rendered command line on each of them.

use std::fmt;

use monero_crd::MonerodSpec;

/// A monerod release, `major.minor.patch.build` (0.18.4.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonerodVersion(pub [u16; 4]);

impl MonerodVersion {
    /// 0.17.2.0, the release of the proposal's example image.
    pub const V0_17_2: MonerodVersion = MonerodVersion([0, 17, 2, 0]);
    /// 0.18.0.0: `--proxy`.
    pub const V0_18_0: MonerodVersion = MonerodVersion([0, 18, 0, 0]);
    /// 0.18.4.0: RPC connection limits.
    pub const V0_18_4: MonerodVersion = MonerodVersion([0, 18, 4, 0]);
    /// 0.18.5.0: `--confirm-zmq-rpc-external-bind`.
    pub const V0_18_5: MonerodVersion = MonerodVersion([0, 18, 5, 0]);

    /// Parses `0.18.4.0`, `v0.18.4`, `0.18.5.3-release` or `v0.17.2.0-alpine`:
    /// two to four numbers, an optional leading `v`, anything after a `-`
    /// ignored (what `get_info` reports, and how image tags are written).
    pub fn parse(s: &str) -> Option<MonerodVersion> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let numbers = s.split_once(['-', '+', '_']).map_or(s, |(v, _)| v);
        let parts: Vec<u16> = numbers
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if !(2..=4).contains(&parts.len()) {
            return None;
        }
        let mut v = [0u16; 4];
        v[..parts.len()].copy_from_slice(&parts);
        Some(MonerodVersion(v))
    }

    /// The version an image reference's tag names, if it names one:
    /// `utxobr/monerod:v0.17.2.0`, `registry:5000/monerod:0.18.4.0`. Not a
    /// digest, not `latest`, not the registry's port, and not a tag that is
    /// some other project's version (`0.1.0`, `1.2`): monerod releases are
    /// 0.x with x at least 10.
    pub fn from_image(image: &str) -> Option<MonerodVersion> {
        let without_digest = image.split('@').next().unwrap_or(image);
        let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let (_, tag) = last.split_once(':')?;
        MonerodVersion::parse(tag).filter(|v| v.0[0] == 0 && v.0[1] >= 10)
    }
}

impl fmt::Display for MonerodVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// Where the operator learned a set's monerod version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `monerod.version`.
    Spec,
    /// The tag of `monerod.image`.
    ImageTag,
    /// The operator's own default image, whose version it knows.
    OperatorDefault,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Spec => "from monerod.version",
            Source::ImageTag => "from the image tag",
            Source::OperatorDefault => "of the operator's default image",
        }
    }
}

/// A set's monerod version, when the operator can tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The version and where it came from; None when nothing says.
    pub known: Option<(MonerodVersion, Source)>,
    /// The image, for messages.
    pub image: String,
}

impl Resolved {
    /// `monerod.version`; else, for the operator's default image, the
    /// version the operator knows it runs (its tag is the operator's version,
    /// not monerod's); else the image tag.
    pub fn of(spec: &MonerodSpec, default_image: &str, default_version: Option<&str>) -> Resolved {
        let image = spec.image.clone().unwrap_or_else(|| default_image.into());
        let from_spec = spec
            .version
            .as_deref()
            .and_then(MonerodVersion::parse)
            .map(|v| (v, Source::Spec));
        let known = if from_spec.is_some() {
            from_spec
        } else if image == default_image {
            default_version
                .and_then(MonerodVersion::parse)
                .map(|v| (v, Source::OperatorDefault))
        } else {
            MonerodVersion::from_image(&image).map(|v| (v, Source::ImageTag))
        };
        Resolved { known, image }
    }

    /// The version, when known.
    pub fn version(&self) -> Option<MonerodVersion> {
        self.known.map(|(v, _)| v)
    }

    /// Whether the release is at least `v`. An unknown release is not: only
    /// what every release since 0.17.2 accepts is given to it.
    pub fn at_least(&self, v: MonerodVersion) -> bool {
        self.version().is_some_and(|have| have >= v)
    }

    /// For the status: "0.18.4.0 from the image tag".
    pub fn describe(&self) -> String {
        match self.known {
            Some((v, source)) => format!("{v} {}", source.describe()),
            None => format!(
                "unknown: the tag of {} names no version and monerod.version is unset",
                self.image
            ),
        }
    }

    /// Why a feature that needs release `need` cannot be given to this one.
    pub fn lacks(&self, need: MonerodVersion, what: &str) -> Option<String> {
        if self.at_least(need) {
            return None;
        }
        Some(match self.known {
            Some((v, source)) => format!(
                "{what} needs monerod {need} or newer; this set runs {v} ({})",
                source.describe()
            ),
            None => format!(
                "{what} needs monerod {need} or newer, and the operator cannot tell which monerod {} runs: set monerod.version",
                self.image
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_the_ways_they_are_written() {
        let v = |s| MonerodVersion::parse(s).map(|v| v.to_string());
        assert_eq!(v("0.18.4.0").as_deref(), Some("0.18.4.0"));
        assert_eq!(v("v0.17.2.0").as_deref(), Some("0.17.2.0"));
        assert_eq!(v("0.18.5.3-release").as_deref(), Some("0.18.5.3"));
        assert_eq!(v("v0.18.4").as_deref(), Some("0.18.4.0"));
        assert_eq!(v("0.18").as_deref(), Some("0.18.0.0"));
        for bad in ["latest", "", "v", "0", "1.2.3.4.5", "0.18.x", "stable-0.18"] {
            assert_eq!(MonerodVersion::parse(bad), None, "{bad}");
        }
        assert!(MonerodVersion::parse("0.18.10.0") > MonerodVersion::parse("0.18.9.9"));
    }

    #[test]
    fn only_an_image_tag_names_a_version() {
        let v = |s| MonerodVersion::from_image(s).map(|v| v.to_string());
        assert_eq!(v("utxobr/monerod:v0.17.2.0").as_deref(), Some("0.17.2.0"));
        assert_eq!(
            v("registry.local:5000/monerod:0.18.4.0").as_deref(),
            Some("0.18.4.0")
        );
        assert_eq!(v("registry.local:5000/monerod"), None);
        assert_eq!(v("monerod:latest"), None);
        assert_eq!(v("monerod@sha256:abcd"), None);
        assert_eq!(v("ghcr.io/monero-operator/monerod:0.1.0"), None);
        assert_eq!(v("monerod:1.2.0"), None);
        assert_eq!(
            v("monerod:v0.18.5.3@sha256:abcd").as_deref(),
            Some("0.18.5.3")
        );
    }

    #[test]
    fn the_spec_wins_then_the_tag_then_the_operators_default() {
        let spec = |image: Option<&str>, version: Option<&str>| MonerodSpec {
            image: image.map(Into::into),
            version: version.map(Into::into),
            ..MonerodSpec::default()
        };
        let r = Resolved::of(
            &spec(Some("x/monerod:v0.17.2.0"), Some("0.18.5.3")),
            "d:1",
            Some("0.18.4.0"),
        );
        assert_eq!(r.known, Some((MonerodVersion([0, 18, 5, 3]), Source::Spec)));
        let r = Resolved::of(
            &spec(Some("x/monerod:v0.17.2.0"), None),
            "d:1",
            Some("0.18.4.0"),
        );
        assert_eq!(r.known, Some((MonerodVersion::V0_17_2, Source::ImageTag)));
        let r = Resolved::of(
            &spec(None, None),
            "ghcr.io/m/monerod:0.1.0",
            Some("0.18.4.0"),
        );
        assert_eq!(
            r.known,
            Some((MonerodVersion::V0_18_4, Source::OperatorDefault))
        );
        assert_eq!(r.describe(), "0.18.4.0 of the operator's default image");
        // Another image than the default: the default's version says nothing about it.
        let r = Resolved::of(
            &spec(Some("x/monerod:latest"), None),
            "d:1",
            Some("0.18.4.0"),
        );
        assert_eq!(r.known, None);
        assert!(!r.at_least(MonerodVersion::V0_17_2));
        assert!(
            r.describe().contains("x/monerod:latest"),
            "{}",
            r.describe()
        );
        let why = r.lacks(MonerodVersion::V0_18_5, "zmq").unwrap();
        assert!(why.contains("set monerod.version"), "{why}");
    }

    #[test]
    fn a_release_lacks_what_came_after_it() {
        let r = Resolved::of(
            &MonerodSpec {
                image: Some("utxobr/monerod:v0.17.2.0".into()),
                ..MonerodSpec::default()
            },
            "d",
            None,
        );
        assert!(r.at_least(MonerodVersion::V0_17_2));
        assert!(!r.at_least(MonerodVersion::V0_18_0));
        let why = r
            .lacks(MonerodVersion::V0_18_0, "clearnet: ThroughTor")
            .unwrap();
        assert_eq!(
            why,
            "clearnet: ThroughTor needs monerod 0.18.0.0 or newer; this set runs 0.17.2.0 (from the image tag)"
        );
        assert_eq!(r.lacks(MonerodVersion::V0_17_2, "x"), None);
    }
}
