//! The `args` escape hatch: the user's flags are appended after the operator's,
//! in order, and a user flag replaces the operator's flag of the same name.

/// One flag with its value, as written: `--name=value`, `--name value` (two
/// tokens kept together) or a bare `--name`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Flag {
    tokens: Vec<String>,
}

impl Flag {
    /// The flag's name, `--out-peers` for both `--out-peers=8` and `--out-peers 8`.
    fn name(&self) -> &str {
        let first = self.tokens.first().map(String::as_str).unwrap_or("");
        first.split_once('=').map_or(first, |(name, _)| name)
    }
}

/// Groups tokens into flags: a token that starts with `-` owns the following
/// token when that one does not start with `-` (`-o pool:3333`). A token that
/// belongs to no flag stands alone.
fn group(tokens: &[String]) -> Vec<Flag> {
    let mut out: Vec<Flag> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_flag = t.starts_with('-') && t.len() > 1;
        let takes_next = is_flag
            && !t.contains('=')
            && tokens
                .get(i + 1)
                .is_some_and(|next| !next.starts_with('-') || next == "-");
        if takes_next {
            out.push(Flag {
                tokens: vec![t.clone(), tokens[i + 1].clone()],
            });
            i += 2;
        } else {
            out.push(Flag {
                tokens: vec![t.clone()],
            });
            i += 1;
        }
    }
    out
}

/// The operator's flags with the user's appended. A user flag whose name the
/// operator also sets removes the operator's flag (never a duplicate, never a
/// reordering of the user's flags).
pub fn merge_args(defaults: &[String], user: &[String]) -> Vec<String> {
    let user = group(user);
    let overridden: Vec<&str> = user.iter().map(Flag::name).collect();
    group(defaults)
        .into_iter()
        .filter(|d| !overridden.contains(&d.name()))
        .chain(user.iter().cloned())
        .flat_map(|f| f.tokens)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn user_flags_replace_defaults_of_the_same_name_and_keep_their_order() {
        let d = s(&[
            "--data-dir=/data",
            "--out-peers=12",
            "--log-level",
            "0",
            "--no-igd",
        ]);
        let u = s(&["--public", "--log-level=2", "--out-peers", "1024"]);
        assert_eq!(
            merge_args(&d, &u),
            s(&[
                "--data-dir=/data",
                "--no-igd",
                "--public",
                "--log-level=2",
                "--out-peers",
                "1024"
            ])
        );
    }

    #[test]
    fn pairs_stay_together_and_short_flags_work() {
        let d = s(&["--config=/etc/xmrig/config.json"]);
        let u = s(&[
            "-o",
            "cryptonote.social:5556",
            "-u",
            "addr.node-$(id)",
            "--tls",
        ]);
        assert_eq!(merge_args(&d, &u), [d.clone(), u.clone()].concat());
    }

    #[test]
    fn nothing_is_duplicated_when_the_user_repeats_a_default_verbatim() {
        let d = s(&["--regtest", "--no-igd"]);
        let u = s(&["--regtest", "--fixed-difficulty=1"]);
        assert_eq!(
            merge_args(&d, &u),
            s(&["--no-igd", "--regtest", "--fixed-difficulty=1"])
        );
    }

    #[test]
    fn empty_user_args_leave_defaults_alone() {
        let d = s(&["--a", "x", "--b=1"]);
        assert_eq!(merge_args(&d, &[]), d);
    }
}
