//! `Debug` that never prints a secret: a struct holding a password, a token
//! secret or a password hash implements `Debug` with `debug_redacted!`, which
//! prints its other fields and `<redacted>` for the secret ones, so a
//! `{:?}` in a log line or a panic message cannot leak them.

/// Implements `Debug` for `$ty`, printing the fields listed first and
/// `<redacted>` for those after `redact`.
#[macro_export]
macro_rules! debug_redacted {
    ($ty:ty { $($field:ident),* $(,)? } redact { $($secret:ident),+ $(,)? }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &$crate::redact::Redacted(&self.$secret)))+
                    .finish()
            }
        }
    };
}

/// A secret field in a `Debug` output: `<redacted>` (or `None` for an empty option).
pub struct Redacted<'a, T>(pub &'a T);

impl<T: IsSet> std::fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_set() { "<redacted>" } else { "None" })
    }
}

/// Whether a secret field holds something.
pub trait IsSet {
    fn is_set(&self) -> bool;
}

impl IsSet for String {
    fn is_set(&self) -> bool {
        true
    }
}

impl<T> IsSet for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

#[cfg(test)]
mod tests {
    struct Login {
        user: String,
        password: String,
        token: Option<String>,
    }
    debug_redacted!(Login { user } redact { password, token });

    #[test]
    fn secrets_never_reach_debug_output() {
        let l = Login {
            user: "app".into(),
            password: "hunter2".into(),
            token: None,
        };
        let shown = format!("{l:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, r#"Login { user: "app", password: <redacted>, token: None }"#);
    }
}
