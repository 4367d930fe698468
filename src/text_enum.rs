//! `text_enum!`: the one way a state stored as text becomes an enum. Each enum gets one
//! `as_str` (what is written) and one `parse` (what is read back); a text it does not know is
//! an error, never a silent default.

/// An enum of fixed texts: `as_str`, `parse` (an unknown text is `Error::Internal`),
/// `Display` and `Serialize` as the text.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Result<Self, $crate::error::Error> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::error::Error::Internal(anyhow::anyhow!(
                        "unknown {} {other:?}",
                        stringify!($name)
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
