//! Errors of the reconciler.

/// A custom resource the builders cannot turn into objects. The message names
/// the object and the field, since it reaches users as a condition, an Event
/// and `monero-operator render`'s exit message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {field}: {message}")]
pub struct InvalidSpec {
    /// Kind of the object.
    pub kind: String,
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Path of the offending field, such as `spec.monerod.args`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object is invalid; retrying will not help until it is edited.
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
    /// The API server refused or failed a request.
    #[error("{action}: {source}")]
    Kube {
        /// What the operator was doing.
        action: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// An object could not be serialized (a bug, reported rather than panicking).
    #[error("serializing {what}: {message}")]
    Serialize {
        /// The object.
        what: String,
        /// The serializer's message.
        message: String,
    },
    /// A cache of the owned kinds stopped before its first list: the
    /// controllers cannot start without it.
    #[error("the cache of owned objects stopped: {0}")]
    CacheStopped(String),
}

impl Error {
    /// Wraps an API error with what was being done.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            action: action.into(),
            source: Box::new(source),
        }
    }

    /// The error as a condition message: what was being done and the API
    /// server's own message, without the debug dump the Display of a kube
    /// error carries (a condition is read by people, in `kubectl describe`).
    pub fn condition_message(&self) -> String {
        match self {
            Error::Kube { action, source } => match source.as_ref() {
                kube::Error::Api(s) => format!("{action}: {} ({} {})", s.message, s.code, s.reason),
                other => format!("{action}: {other}"),
            },
            other => other.to_string(),
        }
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_spec",
            Error::Kube { .. } => "kube_api",
            Error::Serialize { .. } => "serialize",
            Error::CacheStopped(_) => "cache",
        }
    }
}
