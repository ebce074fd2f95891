use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) identifier.
            pub fn new() -> Self {
                $name(Uuid::new_v4())
            }
            /// Wraps an existing UUID.
            pub fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }
            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// The 16 raw bytes (the form carried in tokens).
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// From 16 raw bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = super::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map($name)
                    .map_err(|_| super::DomainError::NotAUuid(super::IdKind::$name))
            }
        }
    };
}

uuid_id!(
    /// A registered resident.
    ResidentId
);
uuid_id!(
    /// One card; a reissue makes a new one.
    CardId
);
uuid_id!(
    /// A clinic, hospital or kiosk operator that calls the API.
    ClinicId
);
uuid_id!(
    /// An administrator account.
    AdminId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_serde_as_text() {
        let id = CardId::new();
        assert_eq!(id.to_string().parse::<CardId>().unwrap(), id);
        assert_eq!(CardId::from_bytes(*id.as_bytes()), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<CardId>(&json).unwrap(), id);
        assert!("nope".parse::<ResidentId>().is_err());
    }
}

macro_rules! uuid_conversions {
    ($($name:ident),*) => {$(
        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name::from_uuid(id)
            }
        }
        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.as_uuid()
            }
        }
    )*};
}

uuid_conversions!(ResidentId, CardId, ClinicId, AdminId);
